"""The test matrix: core and its stores on Python 3.10-3.13, the other plugins on 3.10 and 3.13, plus integration,
lint, typecheck, slow and bench.

nox -l                         # list sessions
nox                            # the full suite (what CI and the README run)
nox -s "tests-sqlite-3.12"     # one cell
nox -t tests                   # every package on every Python
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
SLOW_PYTHON = "3.11"


def _add_pyenv_interpreters() -> None:
    """Put pyenv's newest release of each Python in PYTHONS on PATH when ``python3.X`` is not there already (pyenv's
    shims answer only for the versions it has activated)."""
    import shutil
    import subprocess

    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return
    try:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True).stdout.strip()
        versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    found = []
    for minor in PYTHONS:
        releases = [v for v in versions.split() if v.startswith(minor + ".") and v[len(minor) + 1 :].isdigit()]
        if releases:
            newest = max(releases, key=lambda v: int(v.rsplit(".", 1)[1]))
            found.append(str(Path(root) / "versions" / newest / "bin"))
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_add_pyenv_interpreters()
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "template-outside",
    "integration",
    "slow",
    "capture",
    "faults",
    "dashboard",
    "torch-hf",
]

TEST_DEPS = [
    "pytest>=8",
    "hypothesis>=6.100",
    "anyio[trio]>=4.3",
    "jinja2>=3",
    "openai>=1.40",
    "psutil>=5.9",
    "httpx>=0.27",  # raw HTTP requests in tests (openai itself may use httpx2)
    "pytest-timeout>=2.3",  # a hung test fails with its traceback instead of stalling the run
]

# package name -> (path, other packages of this repo its tests use). Each is tested with core and those only.
PACKAGES: dict[str, tuple[str, list[str]]] = {
    # core's end-to-end tests (tracing, runner, Trainer) use real memory, SQLite and HTTP stores
    "core": ("core", ["plugins/memory", "plugins/sqlite", "plugins/server"]),
}
for _plugin in sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()):
    PACKAGES[_plugin] = (f"plugins/{_plugin}", [])
PACKAGES["example"] = ("contrib/example-plugin", ["plugins/memory"])
PACKAGES["template"] = ("contrib/plugin-template", [])
TEST_USES = {
    "agentops": ["plugins/memory"],
    "server": ["plugins/memory", "plugins/sqlite"],
    "litellm": ["plugins/memory", "plugins/server", "plugins/sqlite"],  # LLM proxy over a server; memory, SQLite
    "apo": ["plugins/memory", "plugins/sqlite"],  # Trainer.fit with the memory and SQLite stores
    "verl": ["plugins/memory"],  # the VERL loop under Trainer.fit with the memory store
    "torch": ["plugins/sqlite", "plugins/memory"],  # the quickstart runs on SQLite; unit tests use the memory store
    "dashboard": ["plugins/server", "plugins/memory", "plugins/sqlite"],  # served by real store servers
    "postgres": ["plugins/sqlite", "plugins/memory", "plugins/server"],  # copies between stores, served stores
}
for _name, _uses in TEST_USES.items():
    if _name in PACKAGES:
        PACKAGES[_name] = (PACKAGES[_name][0], _uses)


# PyTorch: a CPU build (a plain `torch` from PyPI is a multi-GB CUDA build). AGL_TORCH_FIND_LINKS names a folder of
# local CPU wheels (.ci/run sets it where the machine has one; pip's own PIP_FIND_LINKS serves too); without either,
# torch comes from PyTorch's CPU index.
TORCH_FIND_LINKS = os.environ.get("AGL_TORCH_FIND_LINKS") or os.environ.get("PIP_FIND_LINKS")
TORCH = (
    ["--find-links", TORCH_FIND_LINKS, "torch==2.13.0+cpu"]
    if TORCH_FIND_LINKS
    else ["--index-url", "https://download.pytorch.org/whl/cpu", "torch>=2.2"]
)
TORCH_PYTHONS = ["3.11"]  # the Python the local CPU wheel is built for
# postgres: a real server, once; dashboard: its Python side is small (the browser tests are their own session)
PYTHONS_OF = {"torch": TORCH_PYTHONS, "postgres": [SLOW_PYTHON], "dashboard": [SLOW_PYTHON]}
# Core and the stores it ships (memory, SQLite, the HTTP server) run on every Python: asyncio, threads, sqlite3 and
# the stdlib differ between versions there. The plugins that only wrap another library run on the oldest and the
# newest Python, which keeps CI inside its time budget and still catches a syntax or dependency break at either end.
EVERY_PYTHON = {"core", "memory", "sqlite", "server"}
ENDS = [PYTHONS[0], PYTHONS[-1]]


def _install(session: nox.Session, *paths: str) -> None:
    args: list[str] = []
    for path in paths:
        args += ["-e", f"{path}[testing]" if path == "core" else path]  # core's testing kit and what its tests use
    if "plugins/torch" in paths:
        session.install(*TORCH)  # first and on its own: an --index-url applies to the whole install command
    session.install(*args, *TEST_DEPS)


def _pytest(session: nox.Session, *args: str) -> None:
    # exit code 5 (no tests collected) is a failure: every package must ship tests
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *session.posargs)


def _make_tests(path: str, uses: list[str]):  # type: ignore[no-untyped-def]
    def tests(session: nox.Session) -> None:
        """Run one package's own tests (slow ones excluded: see the `slow` session)."""
        _install(session, "core", *([] if path == "core" else [path]), *uses)
        # The store state machine runs its full 200 examples on the main Python, fewer on the others.
        if session.python != SLOW_PYTHON:
            session.env.setdefault("AGL_STATEFUL_EXAMPLES", "50")
        if path == "plugins/postgres":  # missing PostgreSQL binaries fail the session instead of skipping
            session.env["AGL_REQUIRE_POSTGRES"] = "1"
        _pytest(session, f"{path}/tests", "-m", "not slow")

    return tests


for _name in PACKAGES:
    PYTHONS_OF.setdefault(_name, PYTHONS if _name in EVERY_PYTHON else ENDS)
for _name, (_path, _uses) in PACKAGES.items():
    nox.session(name=f"tests-{_name}", python=PYTHONS_OF[_name], tags=["tests"])(_make_tests(_path, _uses))


@nox.session(python=PYTHONS[0])
def tests(session: nox.Session) -> None:
    """Run the matrix of tests-* sessions (every package on its Pythons)."""
    for name in PACKAGES:
        for python in PYTHONS_OF[name]:
            session.notify(f"tests-{name}-{python}")


def _all_paths() -> list[str]:
    return [path for path, _ in PACKAGES.values()]


@nox.session(name="template-outside", python=SLOW_PYTHON)
def template_outside(session: nox.Session) -> None:
    """The plugin template as a third party uses it: copied to a folder outside the checkout, installed as its README
    says (`pip install -e '.[test]'`) next to core from this checkout, and tested from there with its own pytest
    settings. (tests-template-* run the same tests inside the checkout on every Python.)"""
    import shutil
    import tempfile

    outside = Path(tempfile.mkdtemp(prefix="agl-template-")) / "agentlightning-myplugin"
    try:
        template = ROOT / "contrib" / "plugin-template"
        shutil.copytree(
            template, outside, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".*cache", ".hypothesis")
        )
        session.install(f"{ROOT / 'core'}[testing]", "-e", f"{outside}[test]")
        session.chdir(outside)
        where = str(session.run("python", "-c", "import agentlightning_myplugin as m; print(m.__file__)", silent=True))
        if outside.resolve() not in Path(where.strip()).resolve().parents:
            session.error(f"the template was imported from {where.strip()}, not from the copy in {outside}")
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
    finally:
        shutil.rmtree(outside.parent, ignore_errors=True)


@nox.session(python=SLOW_PYTHON)
def integration(session: nox.Session) -> None:
    """Everything installed together: entry points, cross-plugin flows, the plugin story end to end."""
    _install(session, *_all_paths())
    session.install("uv")
    _pytest(session, "tests/integration", "-m", "not slow")


# Every agent stack whose LLM calls the default tracer captures (tests/capture). Heavy: its own session, run once.
CAPTURE_STACKS = [
    "openai>=1.66",  # the Responses API
    "anthropic>=0.40",
    "litellm>=1.110.2,<1.111",  # as the litellm plugin pins it
    "langchain-openai>=0.3",
    "langgraph>=0.3",
    "openai-agents>=0.2",
    "autogen-agentchat>=0.6",
    "autogen-ext[openai]>=0.6",
    "google-genai>=1.0",
]


@nox.session(python=SLOW_PYTHON)
def capture(session: nox.Session) -> None:
    """Zero-code capture of each agent stack (openai chat and Responses, anthropic, litellm, LangGraph, OpenAI Agents
    SDK, AutoGen, google-genai) with the real packages, against the local test server."""
    _install(session, "core", "plugins/memory")
    session.install(*CAPTURE_STACKS)
    session.env["AGL_CAPTURE_REQUIRE_STACKS"] = "1"  # a stack that failed to install fails instead of skipping
    _pytest(session, "tests/capture")


@nox.session(python=SLOW_PYTHON)
def dashboard(session: nox.Session) -> None:
    """The dashboard in headless Chromium (Debian's chromium and chromium-driver; missing is a failure here) against
    `agl store serve` over a store from real Trainer.dev runs. Screenshots of each view go to
    $AGL_DASHBOARD_SCREENSHOTS (default: .nox/dashboard-screenshots)."""
    _install(session, "core", "plugins/server", "plugins/memory", "plugins/sqlite", "plugins/dashboard")
    session.install("selenium>=4.20")  # drives the system's chromedriver; downloads no browser
    session.env["AGL_REQUIRE_BROWSER"] = "1"
    session.env.setdefault("AGL_DASHBOARD_SCREENSHOTS", str(ROOT / ".nox" / "dashboard-screenshots"))
    _pytest(session, "plugins/dashboard/browser_tests")


@nox.session(python=SLOW_PYTHON)
def slow(session: nox.Session) -> None:
    """Multi-process, crash and long tests of every package, once, on one Python."""
    _install(session, *_all_paths())
    # one pytest run per package: test modules of different packages may share names
    for path in [f"{p}/tests" for p in _all_paths()] + ["tests/integration"]:
        session.run(
            "python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "slow",
            path,
            *session.posargs,
            success_codes=[0, 5],
        )


@nox.session(python=SLOW_PYTHON)
def faults(session: nox.Session) -> None:
    """Fault suite (tests/faults, slow tests included): runner processes, the store server and the trainer killed at
    random points of real runs on SQLite; about 3 minutes on 2 cores. AGL_FAULT_SEED=<n> replays one run's faults,
    AGL_FAULT_COUNT and AGL_FAULT_TASKS size it, AGL_FAULT_REPORT=<file> collects the figures (docs/reliability.md)."""
    _install(session, "core", "plugins/memory", "plugins/sqlite", "plugins/server")
    _pytest(session, "tests/faults")


@nox.session(python=SLOW_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole tree."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=SLOW_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy, strict on core and every plugin; then the typing checks under tests/typecheck."""
    _install(session, *_all_paths())
    session.install("mypy>=1.10,<2", "types-PyYAML")
    plugins = sorted(str(src.relative_to(ROOT)) for src in ROOT.glob("*/*/src/agentlightning_*") if src.is_dir())
    session.run("mypy", "core/src/agentlightning", *plugins)
    # --warn-unused-ignores (in --strict): each expected error there is an ignore that must be used
    session.run("mypy", "--strict", "tests/typecheck")


@nox.session(name="torch-hf", python=TORCH_PYTHONS[0])
def torch_hf(session: nox.Session) -> None:
    """SFT of a Hugging Face causal LM (whole and LoRA) on a tiny random model, and the datasets export helper: the
    tests that skip without transformers, peft and datasets (CPU torch as the torch session installs it; about 25 s
    with the packages cached)."""
    _install(session, "core", "plugins/sqlite", "plugins/memory", "plugins/server", "plugins/torch")
    session.install("transformers>=4.40", "peft>=0.10", "datasets>=2.16")  # the torch plugin's lora extra + datasets
    _pytest(session, "plugins/torch/tests/test_sft_hf.py")
    _pytest(session, "core/tests/test_training_export.py", "-k", "hf_dataset")


@nox.session(name="quickstart-seeds", python=TORCH_PYTHONS[0])
def quickstart_seeds(session: nox.Session) -> None:
    """`agl quickstart` once per seed (default 0,0,0,1,...,7): a table of seconds and steps to held-out 0.9.

    Not part of the default run (minutes). `nox -s quickstart-seeds -- --seeds 0,1,2` picks the seeds."""
    _install(session, "core", "plugins/sqlite", "plugins/torch")
    session.run("python", "plugins/torch/benchmarks/quickstart_seeds.py", *session.posargs)


@nox.session(python=SLOW_PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of the default run): writes results under results/."""
    _install(session, *_all_paths())
    session.install("uv", "matplotlib")  # uv builds upstream's venv; matplotlib draws the chart
    session.run("python", "tests/benchmarks/run_all.py", *session.posargs)


@nox.session(python=SLOW_PYTHON)
def compat(session: nox.Session) -> None:
    """Upstream v0.3.0's own test suite, unchanged, against our packages (not part of the default run).

    `nox -s compat -- PATH/TO/agent-lightning` (a checkout at tag v0.3.0). Prints passed / valid per folder; the valid
    tests (those passing on agentlightning==0.3.0 from PyPI) are computed once and cached under
    ~/.cache/agentlightning-compat/. Then runs upstream's CPU examples, unchanged, against a local OpenAI-compatible
    server."""
    if not session.posargs:
        session.error("give the path of an agent-lightning checkout: nox -s compat -- PATH [--folders store,...]")
    _install(session, *_all_paths())
    sys_path_entry = str(ROOT / "tests" / "compat")
    import sys

    sys.path.insert(0, sys_path_entry)
    try:
        from run_upstream_suite import OURS_TEST_DEPS  # what upstream's tests import on top of our packages
    finally:
        sys.path.remove(sys_path_entry)
    session.install("uv", *OURS_TEST_DEPS)
    session.run("python", "tests/compat/run_upstream_suite.py", *session.posargs)
    # upstream's CPU examples, unchanged, against a local OpenAI-compatible server (and what they import besides ours)
    session.install("rich", "python-dotenv", "aiohttp", "portpicker", "prometheus_client", "pydantic")
    session.run("python", "tests/compat/run_upstream_examples.py", "--upstream", session.posargs[0])
