"""Run upstream Agent Lightning v0.3.0's own test suite, unchanged, against the installed packages.

Usage (from any Python that has our packages installed; ``nox -s compat -- PATH`` does it for you)::

    python tests/compat/run_upstream_suite.py CHECKOUT [--folders store,tracer] [--json out.json]

``CHECKOUT`` is a checkout of microsoft/agent-lightning (tag ``v0.3.0``). Its ``tests/`` folder is copied to a temporary
directory at run time (nothing of upstream is ever written into this repository) and run twice:

* **valid**: once in a virtualenv with ``agentlightning==0.3.0`` from PyPI (and upstream's test dependencies). The
  tests that pass there are the *valid* ones. This baseline is cached under ``~/.cache/agentlightning-compat/``,
  keyed by a hash of the checkout's ``tests/`` folder, so it runs once per checkout.
* **ours**: with the interpreter given by ``--python`` (default: this one), i.e. against our installed packages.

It prints, per top-level test folder, ``passed / valid`` and the same restricted to the tests that use only upstream's
public API. A test counts as *private* when it (its body, or a fixture it requests from its own file) uses an upstream
internal: a name with a leading underscore imported from ``agentlightning`` (``_item_matches_filters``), a module
whose dotted path has such a segment, an attribute with a leading underscore read on any object
(``store._rollouts``), a ``monkeypatch``/``patch`` target string inside an ``agentlightning`` module (it replaces
a collaborator to watch upstream's internal wiring: ``"agentlightning.runner.agent.system_snapshot"``), one of
upstream's helper modules that are not part of its documented API (``PRIVATE_MODULES`` below), a patch of the HTTP
library upstream's client is built on or its error classes (``TRANSPORT_LIBRARIES``: injecting failures into
``aiohttp.ClientSession``, expecting ``aiohttp.ClientResponseError`` from the client),
or a name upstream's own reference lists as internal API (``INTERNAL_NAMES``). The rule is static (an AST scan), so
it is the same for every run.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

UPSTREAM_VERSION = "0.3.0"
# What upstream's own dev dependency group brings for its tests (pytest plugins, the Prometheus client, POML for APO).
BASELINE_DEPS = [
    f"agentlightning=={UPSTREAM_VERSION}",
    "pytest>=8",
    "pytest-asyncio",
    "pytest-rerunfailures",
    "pytest-timeout",
    "prometheus-client",
    "poml",
]
# What our side needs on top of our packages to run upstream's tests (the nox session installs these).
OURS_TEST_DEPS = [
    *("pytest>=8", "pytest-asyncio", "pytest-rerunfailures", "pytest-timeout"),
    *("prometheus-client", "portpicker", "fastapi", "aiohttp"),  # upstream's tests import these themselves
    *("gunicorn", "uvicorn-worker"),  # upstream's launcher tests serve several workers with gunicorn's uvicorn worker
]

# Upstream modules that are implementation helpers rather than documented API: a test importing them exercises
# internals (upstream's docs reference lists neither).
PRIVATE_MODULES = (
    "agentlightning.store.collection",
    "agentlightning.store.collection_based",
    "agentlightning.store.utils",
    "agentlightning.utils.system_snapshot",
    "agentlightning.instrumentation.agentops_langchain",
)

# What upstream's own reference lists under "Internal API References" ("very likely to change"), outside its
# "Deprecated APIs" section (those are public here: the v0.1 API works): a test importing one of these tests internals.
INTERNAL_NAMES = frozenset(
    {
        *("OpenAIMessages", "TraceTree", "Transition", "RewardMatchPolicy", "FunctionalAlgorithm"),
        *("FunctionalLitAgent", "llm_rollout", "prompt_rollout", "OperationContext"),
        *("ModelConfig", "LightningSpanExporter", "LightningOpenTelemetry", "AddReturnTokenIds"),
        *("StreamConversionMiddleware", "MessageInspectionMiddleware", "RolloutAttemptMiddleware"),
        *("UNSET", "rollout_status_from_attempt", "scan_unhealthy_rollouts", "LightningSpanProcessor"),
    }
)

# HTTP libraries upstream's store client happens to be built on: a test that patches their classes to inject failures
# (``monkeypatch.setattr(aiohttp.ClientSession, "post", ...)``) tests that transport, not the client's API.
TRANSPORT_LIBRARIES = ("aiohttp",)

PYTEST_INI = """[pytest]
markers =
    openai: tests that require OpenAI API
    gpu: tests that require GPU
    agentops: tests that require AgentOps
    weave: tests that require Weave
    llmproxy: tests that require LiteLLM
    mongo: tests that require MongoDB
    store: tests for agentlightning.store module
    prometheus: tests that require Prometheus
    utils: tests for utility functions
    langchain: tests that require LangChain
asyncio_mode = strict
"""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentlightning-compat"


def tests_hash(tests_dir: Path) -> str:
    """A hash of every file under ``tests_dir`` (names and contents), with the upstream version and pinned deps."""
    digest = hashlib.sha256()
    digest.update(json.dumps(BASELINE_DEPS).encode())
    for path in sorted(p for p in tests_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(tests_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- private classification


def _is_private_segment(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_private_module(module: str) -> bool:
    if not module.startswith("agentlightning"):
        return False
    if any(_is_private_segment(part) for part in module.split(".")):
        return True
    return any(module == m or module.startswith(m + ".") for m in PRIVATE_MODULES)


class _Uses(ast.NodeVisitor):
    """Collects the names a node reads and whether it touches a private attribute or target string."""

    def __init__(self) -> None:
        self.names: Set[str] = set()
        self.private_attr = False
        self.private_string = False

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_private_segment(node.attr):
            self.private_attr = True
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and value.startswith("agentlightning.") and " " not in value:
            if _is_private_module(value):
                self.private_string = True

    def visit_Call(self, node: ast.Call) -> None:
        # getattr(obj, "_x") / setattr(obj, "_x", ...) / monkeypatch.setattr(obj, "_x", ...)
        for arg in node.args[1:2]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _is_private_segment(arg.value):
                self.private_attr = True
        # monkeypatch.setattr("agentlightning.runner.agent.system_snapshot", ...) / patch("agentlightning...."):
        # replaces a collaborator inside an upstream module to watch how that module calls it (internal wiring)
        func_name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if func_name in ("setattr", "patch") and node.args:
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                if target.value.startswith("agentlightning."):
                    self.private_string = True
        # monkeypatch.setattr(aiohttp.ClientSession, "post", ...): replaces the HTTP library upstream's client uses
        if isinstance(node.func, ast.Attribute) and node.func.attr == "setattr" and node.args:
            root = node.args[0]
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in TRANSPORT_LIBRARIES:
                self.private_attr = True
        self.generic_visit(node)


def _uses(node: ast.AST) -> _Uses:
    visitor = _Uses()
    visitor.visit(node)
    return visitor


def _private_imports(tree: ast.Module) -> Set[str]:
    """Local names bound (anywhere in the file) to an upstream private name or a private/helper module."""
    private: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                local = alias.asname or alias.name
                if _is_private_module(node.module) or (
                    node.module.startswith("agentlightning")
                    and (_is_private_segment(alias.name) or alias.name in INTERNAL_NAMES)
                ):
                    private.add(local)
                elif _is_private_module(f"{node.module}.{alias.name}"):
                    private.add(local)
                elif node.module.split(".")[0] in TRANSPORT_LIBRARIES and alias.name.endswith("Error"):
                    private.add(local)  # the HTTP library's own errors: what upstream's client happens to raise
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_private_module(alias.name):
                    private.add(alias.asname or alias.name.split(".")[0])
    return private


def _file_has_toplevel_private(tree: ast.Module) -> bool:
    """Whether module-level statements (outside functions and classes) use an upstream private directly."""
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
            if _is_private_module(stmt.module):
                return True
            if stmt.module.startswith("agentlightning") and any(_is_private_segment(a.name) for a in stmt.names):
                return True
        if isinstance(stmt, ast.Import) and any(_is_private_module(a.name) for a in stmt.names):
            return True
    return False


@dataclass
class FileInfo:
    private_tests: Set[str] = field(default_factory=set)  # "test_x" or "TestClass::test_x"
    all_private: bool = False


def _function_private(
    func: ast.FunctionDef | ast.AsyncFunctionDef,
    private_names: Set[str],
    fixtures: Dict[str, ast.AST],
    helpers: Dict[str, ast.AST],
    seen: Optional[Set[str]] = None,
) -> bool:
    seen = set() if seen is None else seen
    uses = _uses(func)
    if uses.private_attr or uses.private_string or (uses.names & private_names):
        return True
    requested = [a.arg for a in func.args.args + func.args.kwonlyargs]
    for name in list(requested) + sorted(uses.names & set(helpers)):
        target = fixtures.get(name) if name in requested else helpers.get(name)
        if target is None or name in seen:
            continue
        seen.add(name)
        if isinstance(target, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _function_private(target, private_names, fixtures, helpers, seen):
                return True
        else:
            sub = _uses(target)
            if sub.private_attr or sub.private_string or (sub.names & private_names):
                return True
    return False


def _is_fixture(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for dec in func.decorator_list:
        text = ast.unparse(dec)
        if "fixture" in text:
            return True
    return False


def classify_file(path: Path, conftest_fixtures: Dict[str, ast.AST]) -> FileInfo:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    info = FileInfo()
    private_names = _private_imports(tree)
    fixtures: Dict[str, ast.AST] = dict(conftest_fixtures)
    helpers: Dict[str, ast.AST] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            (fixtures if _is_fixture(stmt) else helpers)[stmt.name] = stmt
        elif isinstance(stmt, ast.ClassDef) and not stmt.name.startswith("Test"):
            helpers[stmt.name] = stmt
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith("test"):
            if _function_private(stmt, private_names, fixtures, helpers):
                info.private_tests.add(stmt.name)
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            class_fixtures = dict(fixtures)
            for item in stmt.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(item):
                    class_fixtures[item.name] = item
            for item in stmt.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    if _function_private(item, private_names, class_fixtures, helpers):
                        info.private_tests.add(f"{stmt.name}::{item.name}")
    return info


def _conftest_fixtures(tests_dir: Path, test_file: Path) -> Dict[str, ast.AST]:
    fixtures: Dict[str, ast.AST] = {}
    folder = test_file.parent
    chain: List[Path] = []
    while True:
        chain.append(folder)
        if folder == tests_dir or tests_dir not in folder.parents:
            break
        folder = folder.parent
    for directory in reversed(chain):
        conftest = directory / "conftest.py"
        if conftest.exists():
            tree = ast.parse(conftest.read_text(encoding="utf-8"))
            private_names = _private_imports(tree)
            for stmt in tree.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(stmt):
                    uses = _uses(stmt)
                    # a conftest fixture that touches internals taints the tests requesting it
                    if uses.private_attr or uses.private_string or (uses.names & private_names):
                        fixtures[stmt.name] = ast.parse("_conftest_private_fixture._x").body[0]
                    else:
                        fixtures[stmt.name] = stmt
    return fixtures


def classify(tests_dir: Path) -> Dict[str, FileInfo]:
    """Map each test file (relative to the checkout, ``tests/a/test_b.py``) to its private tests."""
    result: Dict[str, FileInfo] = {}
    for path in sorted(tests_dir.rglob("test_*.py")):
        rel = "tests/" + str(path.relative_to(tests_dir)).replace(os.sep, "/")
        result[rel] = classify_file(path, _conftest_fixtures(tests_dir, path))
    return result


def is_private(nodeid: str, files: Dict[str, FileInfo]) -> bool:
    file_part, _, rest = nodeid.partition("::")
    info = files.get(file_part)
    if info is None:
        return False
    if info.all_private:
        return True
    test = rest.split("[", 1)[0]
    return test in info.private_tests


# ------------------------------------------------------------------------------------------------------------ running


def _run(cmd: List[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def ensure_baseline_venv(cache: Path, python: str) -> Path:
    venv = cache / f"venv-agentlightning-{UPSTREAM_VERSION}"
    marker = venv / ".agl-compat-ready"
    deps_key = json.dumps(BASELINE_DEPS)
    if marker.exists() and marker.read_text() == deps_key:
        return venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "-q", "-p", python, str(venv)])
        _run([uv, "pip", "install", "-q", "-p", str(venv / "bin" / "python"), *BASELINE_DEPS])
    else:
        _run([python, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *BASELINE_DEPS])
    marker.write_text(deps_key)
    return venv / "bin" / "python"


def run_suite(
    python: str, checkout: Path, folders: Optional[List[str]], timeout: int, extra: List[str]
) -> Dict[str, str]:
    """Copy ``checkout/tests`` to a temporary directory, run it with ``python``, return nodeid -> outcome.

    Each top-level folder runs in its own pytest process, so a test that takes the whole process down (an escaped
    KeyboardInterrupt, a crash) costs only the rest of its folder: those tests count as not run."""
    with tempfile.TemporaryDirectory(prefix="agl-upstream-tests-") as tmp:
        root = Path(tmp)
        shutil.copytree(checkout / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (root / "pytest.ini").write_text(PYTEST_INI)
        if folders:
            targets = [[f"tests/{f}"] for f in folders]
        else:
            subdirs = sorted(p.name for p in (root / "tests").iterdir() if p.is_dir() and p.name != "benchmark")
            top = sorted(str(p.relative_to(root)) for p in (root / "tests").glob("test_*.py"))
            targets = [[f"tests/{d}"] for d in subdirs if any((root / "tests" / d).rglob("test_*.py"))] + [top]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at LiteLLM import
        outcomes: Dict[str, str] = {}
        for i, target in enumerate(t for t in targets if t):
            report = root / f"report-{i}.xml"
            cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(root / "pytest.ini")]
            cmd += ["--rootdir", str(root), f"--junitxml={report}", "-o", "junit_family=xunit1"]
            cmd += ["--timeout", str(timeout), "--ignore=tests/benchmark", "--continue-on-collection-errors"]
            cmd += [*extra, *target]
            print("+", " ".join(cmd), f"(in {root})", flush=True)
            returncode = subprocess.run(cmd, cwd=root, env=env, check=False).returncode
            if not report.exists():
                print(f"warning: {' '.join(target)} wrote no report (pytest exit code {returncode})", flush=True)
                continue
            if returncode not in (0, 1):
                print(f"warning: {' '.join(target)} stopped early (pytest exit code {returncode})", flush=True)
            outcomes.update(parse_junit(report))
        if not outcomes:
            raise SystemExit(f"upstream's suite did not run with {python}")
        return outcomes


def parse_junit(report: Path) -> Dict[str, str]:
    outcomes: Dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (the report pytest just wrote)
        file = case.get("file") or ""
        classname = case.get("classname") or ""
        name = case.get("name") or ""
        if not file:
            file = classname.replace(".", "/") + ".py"
        parts = classname.split(".")
        # classname is "tests.store.test_x" or "tests.store.test_x.TestClass"
        module_parts = file[: -len(".py")].split("/") if file.endswith(".py") else parts
        cls = parts[len(module_parts) :]
        nodeid = "::".join([file, *cls, name])
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        # a test that passed but errored at teardown appears twice: the worse outcome wins
        if outcomes.get(nodeid) != "failed":
            outcomes[nodeid] = outcome
    return outcomes


def folder_of(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 else "(top level)"


def table(
    baseline: Dict[str, str], ours: Dict[str, str], files: Dict[str, FileInfo]
) -> Tuple[List[Tuple[str, int, int, int, int]], Tuple[int, int, int, int]]:
    rows: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for nodeid, outcome in baseline.items():
        if outcome != "passed":
            continue
        row = rows[folder_of(nodeid)]
        passed = ours.get(nodeid) == "passed"
        row[0] += 1
        row[1] += passed
        if not is_private(nodeid, files):
            row[2] += 1
            row[3] += passed
    out = [(name, *values) for name, values in sorted(rows.items())]
    totals = tuple(sum(r[i] for r in rows.values()) for i in range(4))
    return out, totals  # type: ignore[return-value]


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.0f}%" if b else "-"


def render(rows: Iterable[Tuple[str, int, int, int, int]], totals: Tuple[int, int, int, int]) -> str:
    lines = [
        "| folder | passed / valid | public API: passed / valid | public % |",
        "|---|---|---|---|",
    ]
    for name, valid, passed, pvalid, ppassed in rows:
        lines.append(f"| {name} | {passed} / {valid} | {ppassed} / {pvalid} | {_pct(ppassed, pvalid)} |")
    valid, passed, pvalid, ppassed = totals
    lines.append(f"| **total** | **{passed} / {valid}** | **{ppassed} / {pvalid}** | **{_pct(ppassed, pvalid)}** |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of microsoft/agent-lightning at tag v0.3.0")
    parser.add_argument("--python", default=sys.executable, help="the interpreter with our packages (default: this)")
    parser.add_argument("--baseline-python", default=f"{sys.version_info[0]}.{sys.version_info[1]}",
                        help="the Python for the agentlightning==0.3.0 virtualenv")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--refresh-baseline", action="store_true", help="rerun upstream's suite on 0.3.0")
    parser.add_argument("--folders", default="", help="comma-separated test folders to run (default: all)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per test (pytest-timeout)")
    parser.add_argument("--json", type=Path, help="write every valid test's outcome here")
    parser.add_argument("--show-failures", action="store_true", help="list the valid tests that did not pass")
    args = parser.parse_args(argv)

    checkout: Path = args.checkout.resolve()
    if not (checkout / "tests").is_dir() or not (checkout / "agentlightning").is_dir():
        parser.error(f"{checkout} is not an agent-lightning checkout (no tests/ and agentlightning/ folders)")
    folders = [f for f in args.folders.split(",") if f] or None
    key = tests_hash(checkout / "tests")
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    baseline_file = cache / f"baseline-{key}.json"
    if baseline_file.exists() and not args.refresh_baseline:
        baseline: Dict[str, str] = json.loads(baseline_file.read_text())
        print(f"valid tests: cached baseline {baseline_file}")
    else:
        upstream_python = ensure_baseline_venv(cache, args.baseline_python)
        baseline = run_suite(str(upstream_python), checkout, None, args.timeout, [])
        baseline_file.write_text(json.dumps(baseline, indent=0, sort_keys=True))
    if folders:
        baseline = {k: v for k, v in baseline.items() if folder_of(k) in folders or any(
            k.startswith(f"tests/{f}") for f in folders)}  # fmt: skip

    ours = run_suite(args.python, checkout, folders, args.timeout, [])
    files = classify(checkout / "tests")
    rows, totals = table(baseline, ours, files)
    print()
    print(render(rows, totals))
    valid = {k for k, v in baseline.items() if v == "passed"}
    if args.show_failures:
        for nodeid in sorted(valid):
            if ours.get(nodeid) != "passed":
                tag = "private" if is_private(nodeid, files) else "public"
                print(f"  {ours.get(nodeid, 'not run')}\t{tag}\t{nodeid}")
    if args.json:
        detail = {k: {"ours": ours.get(k, "not run"), "private": is_private(k, files)} for k in sorted(valid)}
        args.json.write_text(json.dumps({"rows": rows, "totals": totals, "tests": detail}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
