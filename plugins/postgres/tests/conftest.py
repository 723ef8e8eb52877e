"""A real PostgreSQL server for the plugin's tests: a throw-away cluster in a temporary folder.

The ``postgres_url`` fixture (one server per test session) runs ``initdb`` and ``pg_ctl start`` from the PostgreSQL
binaries (``$AGL_PG_BINDIR``, else ``pg_config --bindir``, else Debian's ``/usr/lib/postgresql/<version>/bin``) on
a free loopback port, with its unix socket in the temporary folder, and stops and removes the cluster at the end.
PostgreSQL refuses to run as root: as root the cluster is made and run as ``nobody`` (through ``runuser``), which is
given the folder. Without the binaries the tests are skipped, unless ``AGL_REQUIRE_POSTGRES=1`` (the nox session),
where that is an error.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

UNPRIVILEGED_USER = "nobody"


def find_bindir() -> Optional[str]:
    """The folder holding initdb and pg_ctl, or None."""
    candidates: List[str] = []
    if os.environ.get("AGL_PG_BINDIR"):
        candidates.append(os.environ["AGL_PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30)
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    for folder in candidates:
        if all(os.access(os.path.join(folder, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _running(process: Any) -> bool:
    import psutil

    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster in ``root`` (made by :meth:`start`, removed by :meth:`remove`)."""

    def __init__(self, bindir: str, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = free_port()
        self.as_user: List[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", UNPRIVILEGED_USER, "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [*self.as_user, os.path.join(self.bindir, tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{log}")

    def start(self) -> None:
        self.sockets.mkdir()
        if self.as_user:
            import pwd

            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def kill_server(self) -> None:
        """SIGKILL the postmaster (a crash: the next start recovers from the write-ahead log), and wait until it and
        its backends are gone. A postmaster left a zombie (no init reaping in a container) leaves its stale
        ``postmaster.pid`` and socket lock file behind, which are then removed so that :meth:`restart` can start."""
        import psutil

        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        postmaster.kill()
        # backends exit on their own once the postmaster died; a zombie (nobody reaps it here) counts as gone
        deadline = time.monotonic() + 60
        while any(_running(p) for p in processes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes outlived their postmaster: {processes}")
            time.sleep(0.05)
        # stale: their postmaster is dead (a zombie keeps its pid taken, so the next start would take them as held)
        for lock in (self.data / "postmaster.pid", self.sockets / f".s.PGSQL.{self.port}.lock"):
            if lock.exists():
                lock.unlink()

    def restart(self) -> None:
        # fsync off as at the first start: crash recovery replays the write-ahead log all the same, without first
        # syncing every file of the data directory (a minute on a busy machine once many tests made schemas)
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    bindir = find_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install Debian's postgresql package "
            "or set AGL_PG_BINDIR"
        )
        if os.environ.get("AGL_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (AGL_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)
    cluster = Cluster(bindir, Path(tempfile.mkdtemp(prefix="agl-pg-")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: Cluster) -> str:
    """A superuser URL of the session's server (database ``postgres``)."""
    return postgres_cluster.url


_schemas = itertools.count()


@pytest.fixture
def schema_url(postgres_url: str) -> str:
    """The server's URL with a schema of its own for this test."""
    return f"{postgres_url}?schema=t{os.getpid()}_{next(_schemas)}"


def new_schema_url(postgres_url: str) -> str:
    return f"{postgres_url}?schema=t{os.getpid()}_{next(_schemas)}"


TRANSACTION_MODES = {
    "local": {"inline": "on", "pipeline": "off"},
    "remote": {"inline": "off", "pipeline": "on"},
}
"""How the store runs transactions by default for a database on this host (inline when they need not wait, no
pipelines) and on another host (worker threads, pipelines)."""


@pytest.fixture(params=sorted(TRANSACTION_MODES))
def transaction_mode(request: Any) -> Dict[str, str]:
    """The store options of both ways of running transactions (the test server is local: ``remote`` forces it)."""
    return dict(TRANSACTION_MODES[request.param])


@pytest.fixture
def backend(postgres_url: str, transaction_mode: Dict[str, str]) -> Iterator[Any]:
    """A fresh PostgresBackend on a schema of its own (for StorageBackendConformance)."""
    from agentlightning_postgres import PostgresBackend
    from agentlightning_postgres.url import parse_url

    conninfo, options = parse_url(new_schema_url(postgres_url))
    b = PostgresBackend(conninfo, schema=options["schema"], **transaction_mode)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def store_factory(postgres_url: str, transaction_mode: Dict[str, str]) -> Iterator[Any]:
    """``await store_factory(**engine_options)`` -> a fresh PostgresLightningStore on its own schema."""
    from agentlightning_postgres import PostgresLightningStore

    created: List[PostgresLightningStore] = []

    async def factory(**options: Any) -> PostgresLightningStore:
        store = PostgresLightningStore(new_schema_url(postgres_url), **{**transaction_mode, **options})
        created.append(store)
        return store

    yield factory
    for store in created:  # the suite closes what it uses; this also covers stores a failing test left open
        if store._watchdog is not None:
            store._watchdog.stop()
        store._closed = True
        store.backend.close()
