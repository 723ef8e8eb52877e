"""SqliteLightningStore as users meet it: URLs and registration, sharing one file, retention, resuming a run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Sequence, Set

import agentlightning as agl
import anyio
import pytest
from agentlightning.plugins import PluginManager
from agentlightning.store import open_store, waiting
from agentlightning.store.errors import SpansEvictedError, StoreClosedError
from agentlightning.testing.store_suite import make_span
from agentlightning.types.core import EnqueueRolloutRequest, RolloutConfig
from agentlightning_sqlite import SqliteLightningStore, hooks
from agentlightning_sqlite.url import parse_url

pytestmark = pytest.mark.anyio


# -- URLs and registration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "options"),
    [
        ("sqlite:///run.db", "run.db", {}),
        ("sqlite:///sub/dir/run.db", "sub/dir/run.db", {}),
        ("sqlite:////abs/path/run.db", "/abs/path/run.db", {}),
        ("SQLITE:///a%20b.db?synchronous=FULL&max_spans=10", "a b.db", {"synchronous": "FULL", "max_spans": 10}),
        (
            "sqlite:///x.db?busy_timeout=0.5&watchdog_interval=2",
            "x.db",
            {"busy_timeout": 0.5, "watchdog_interval": 2.0},
        ),
    ],
)
def test_parse_url(url: str, path: str, options: dict) -> None:  # type: ignore[type-arg]
    assert parse_url(url) == (path, options)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://", "sqlite://"),
        ("sqlite://host/run.db", "names a host"),
        ("sqlite:///", "names no file"),
        ("sqlite:///run.db?colour=blue", "unknown option 'colour'"),
        ("sqlite:///run.db?max_spans=many", "max_spans='many' is not a valid int"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)


async def test_open_store_by_url_relative_and_absolute(
    plugin_manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_manager.register(hooks, "sqlite")
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel.db?synchronous=FULL")
    assert isinstance(relative, SqliteLightningStore)
    assert os.path.abspath(relative.path) == str(tmp_path / "rel.db")
    assert relative.backend.synchronous == "FULL"
    await relative.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    assert absolute.path == f"{tmp_path}/abs.db" and (tmp_path / "abs.db").exists()
    await absolute.close()
    by_name = open_store("sqlite", path=tmp_path / "named.db")
    assert isinstance(by_name, SqliteLightningStore)
    await by_name.close()


def test_export_and_capabilities(plugin_manager: PluginManager, tmp_path: Path) -> None:
    plugin_manager.register(hooks, "sqlite")
    assert agl.SqliteLightningStore is SqliteLightningStore
    store = SqliteLightningStore(tmp_path / "c.db", watchdog_interval=None)
    assert store.capabilities == {"thread_safe": True, "async_safe": True, "zero_copy": True, "otlp_traces": False}
    assert repr(store) == f"SqliteLightningStore({str(tmp_path / 'c.db')!r})"
    store.backend.close()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs a path"):
        SqliteLightningStore()
    with pytest.raises(TypeError, match="not both"):
        SqliteLightningStore(tmp_path / "a.db", url="sqlite:///b.db")
    with pytest.raises(TypeError, match="unexpected options: colour"):
        SqliteLightningStore(tmp_path / "a.db", colour="blue")
    with pytest.raises(ValueError, match="max_spans"):
        SqliteLightningStore(tmp_path / "a.db", max_spans=-1)


async def test_a_store_dropped_without_close_closes_its_connections(tmp_path: Path) -> None:
    import gc
    import sqlite3

    store = SqliteLightningStore(tmp_path / "dropped.db", watchdog_interval=None)
    await store.enqueue_rollout("x")
    connections = [conn for _, conn in store.backend._conns]
    assert connections
    del store
    gc.collect()
    for conn in connections:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")


# -- one file, several store objects (as several processes would have) -----------------------------------------


async def test_two_stores_on_one_file_share_everything(tmp_path: Path, anyio_backend: str) -> None:
    path = tmp_path / "shared.db"
    algorithm = SqliteLightningStore(path, watchdog_interval=None)
    runner = SqliteLightningStore(path, watchdog_interval=None)
    try:
        queued = [await algorithm.enqueue_rollout({"i": i}) for i in range(3)]
        claimed = await runner.dequeue_rollout(worker_id="w1")
        assert claimed is not None and claimed.rollout_id == queued[0].rollout_id
        assert (await algorithm.get_rollout_by_id(claimed.rollout_id)).status == "preparing"  # type: ignore[union-attr]

        async def finish_later() -> None:
            await anyio.sleep(0.2)
            await runner.add_span(make_span(claimed.rollout_id, claimed.attempt.attempt_id, 1))
            await runner.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_later)
            done = await algorithm.wait_for_rollouts(rollout_ids=[claimed.rollout_id], timeout=10)
        assert [r.rollout_id for r in done] == [claimed.rollout_id]
        assert time.monotonic() - started < 5  # woken by the other store's commit, well before the timeout
        assert len(await algorithm.query_spans(claimed.rollout_id)) == 1
    finally:
        await algorithm.close()
        await runner.close()


async def test_a_waiter_on_many_rollouts_paces_its_rereads_of_another_stores_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another store's every commit would have the waiter re-read all its pending ids every 50 ms; paced, the
    re-reads take a bounded share of the wait, and the finishes are still all seen."""
    monkeypatch.setattr(waiting, "RECHECK_SHARE", 0.05)
    path = tmp_path / "paced.db"
    algorithm = SqliteLightningStore(path, watchdog_interval=None)
    runner = SqliteLightningStore(path, watchdog_interval=None)
    rereads: List[int] = []
    finished_among = algorithm._finished_among

    async def slow_finished_among(ids: Sequence[str], *, scan: bool = False, known: bool = False) -> Set[str]:
        if known and len(ids) >= waiting.PACED_FROM_IDS:
            rereads.append(len(ids))
            await anyio.sleep(0.02)  # a re-read of many ids is not free
        return await finished_among(ids, scan=scan, known=known)

    monkeypatch.setattr(algorithm, "_finished_among", slow_finished_among)
    try:
        queued = await algorithm.enqueue_many_rollouts([EnqueueRolloutRequest(input=i) for i in range(150)])
        ids = [r.rollout_id for r in queued]

        async def keep_writing(seconds: float) -> None:
            with anyio.move_on_after(seconds):
                while True:
                    await runner.add_resources({"r": agl.PromptTemplate(template="t", engine="f-string")})
                    await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_writing, 1.5)
            assert await algorithm.wait_for_rollouts(rollout_ids=ids, timeout=1.5) == []
        # each re-read takes >= 20 ms, so the next waits >= 19 x 20 ms: at most 1 + 1.5 / 0.38 re-reads, not ~20
        assert 1 <= len(rereads) <= 5

        async def finish_all() -> None:
            while (claimed := await runner.dequeue_rollout(worker_id="w")) is not None:
                await runner.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="succeeded")

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_all)
            done = await algorithm.wait_for_rollouts(rollout_ids=ids, timeout=60)
        assert [r.rollout_id for r in done] == ids and {r.status for r in done} == {"succeeded"}
    finally:
        await algorithm.close()
        await runner.close()


async def test_closed_store_refuses(tmp_path: Path) -> None:
    store = SqliteLightningStore(tmp_path / "x.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.enqueue_rollout({"a": 1})
    with pytest.raises(StoreClosedError):
        await store.compact()


async def test_full_synchronous_store_works(tmp_path: Path) -> None:
    store = SqliteLightningStore(tmp_path / "full.db", synchronous="FULL", watchdog_interval=None)
    rollout = await store.enqueue_rollout({"a": 1})
    assert (await store.dequeue_rollout()).rollout_id == rollout.rollout_id  # type: ignore[union-attr]
    await store.close()


# -- retention ---------------------------------------------------------------------------------------------------


async def _finished_with_spans(store: SqliteLightningStore, spans: int, status: str = "succeeded") -> str:
    attempted = await store.start_rollout({"x": 1})
    await store.add_many_spans(
        [make_span(attempted.rollout_id, attempted.attempt.attempt_id, i + 1) for i in range(spans)]
    )
    await store.update_attempt(attempted.rollout_id, attempted.attempt.attempt_id, status=status)  # type: ignore[arg-type]
    return attempted.rollout_id


async def test_retention_evicts_oldest_finished_rollouts(tmp_path: Path) -> None:
    store = SqliteLightningStore(tmp_path / "r.db", max_spans=10, watchdog_interval=None)
    try:
        first = await _finished_with_spans(store, 4)
        second = await _finished_with_spans(store, 4, status="failed")
        running = await store.start_rollout({"x": 2})
        await store.add_many_spans([make_span(running.rollout_id, running.attempt.attempt_id, i + 1) for i in range(5)])
        # 13 spans: the oldest finished rollout goes; the running one is never touched
        with pytest.raises(SpansEvictedError, match=first):
            await store.query_spans(first)
        assert len(await store.query_spans(second)) == 4
        assert len(await store.query_spans(running.rollout_id)) == 5
        third = await _finished_with_spans(store, 3)  # 12 spans again: the next oldest finished goes
        with pytest.raises(SpansEvictedError):
            await store.query_spans(second, attempt_id="latest")
        assert len(await store.query_spans(third)) == 3
        stats = await store.statistics()
        assert stats["total_spans"] == 8
        assert stats["evicted_rollouts"] == 2 and stats["evicted_spans"] == 8
        assert stats["file_size_bytes"] > 0 and stats["total_span_bytes"] > 0
        # the rollouts themselves stay
        assert (await store.get_rollout_by_id(first)).status == "succeeded"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_retention_by_bytes_and_explicit_compaction(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    unlimited = SqliteLightningStore(path, watchdog_interval=None)
    ids = [await _finished_with_spans(unlimited, 5) for _ in range(4)]
    per_rollout = (await unlimited.statistics())["total_span_bytes"] // 4
    assert await unlimited.compact() == (0, 0)  # no limits: nothing to do
    await unlimited.close()

    limited = SqliteLightningStore(path, max_span_bytes=per_rollout * 2, watchdog_interval=None)
    try:
        assert await limited.compact() == (2, 10)
        for rollout_id in ids[:2]:
            with pytest.raises(SpansEvictedError):
                await limited.query_spans(rollout_id)
        for rollout_id in ids[2:]:
            assert len(await limited.query_spans(rollout_id)) == 5
        assert (await limited.statistics())["total_span_bytes"] <= per_rollout * 2
    finally:
        await limited.close()


# -- resuming a run whose process died ---------------------------------------------------------------------------


async def test_reopened_store_times_out_attempts_of_a_dead_process(tmp_path: Path) -> None:
    path = tmp_path / "resume.db"
    first = SqliteLightningStore(path, watchdog_interval=None)
    retried = await first.enqueue_rollout(
        {"q": 1}, config=RolloutConfig(timeout_seconds=0.2, max_attempts=2, retry_condition=["timeout"])
    )
    given_up = await first.enqueue_rollout({"q": 2}, config=RolloutConfig(unresponsive_seconds=0.2))
    for _ in range(2):
        claimed = await first.dequeue_rollout(worker_id="dead-worker")
        await first.update_attempt(claimed.rollout_id, claimed.attempt.attempt_id, status="running")  # type: ignore[union-attr]
    first.backend.close()  # the process is gone: no clean shutdown of the engine, nothing finishes its attempts

    second = SqliteLightningStore(path, watchdog_interval=0.05)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            a = await second.get_rollout_by_id(retried.rollout_id)
            b = await second.get_rollout_by_id(given_up.rollout_id)
            if a.status == "requeuing" and b.status == "failed":  # type: ignore[union-attr]
                break
            await anyio.sleep(0.05)
        assert a.status == "requeuing" and a.attempt.status == "timeout"  # type: ignore[union-attr]
        assert b.status == "failed" and b.attempt.status == "unresponsive"  # type: ignore[union-attr]
        again = await second.dequeue_rollout(worker_id="new-worker")
        assert again is not None and again.rollout_id == retried.rollout_id and again.attempt.sequence_id == 2
    finally:
        await second.close()


async def test_damaged_file_is_a_store_corrupt_error(tmp_path: Path) -> None:
    from agentlightning.store.errors import StoreCorruptError

    path = tmp_path / "damaged.db"
    store = SqliteLightningStore(path, watchdog_interval=None)
    for i in range(50):
        await store.enqueue_rollout({"i": i, "pad": "x" * 500})
    await store.close()
    with open(path, "r+b") as handle:  # keep the header page, scramble the rest
        handle.seek(8192)
        handle.write(bytes(range(256)) * ((os.path.getsize(path) - 8192) // 256))
    reopened = SqliteLightningStore(path, watchdog_interval=None)
    try:
        with pytest.raises(StoreCorruptError, match="damaged"):
            await reopened.query_rollouts()
    finally:
        reopened.backend.close()
