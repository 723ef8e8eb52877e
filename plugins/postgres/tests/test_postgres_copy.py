"""``agl store copy``: a run from SQLite to PostgreSQL and back, resumed after an interruption, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import anyio
import pytest

pytest.importorskip("agentlightning_sqlite")


async def _fill(store: Any) -> None:
    """A small finished-and-unfinished run: resources, rollouts in several statuses, retried attempts, spans."""
    from agentlightning.testing.store_suite import make_span
    from agentlightning.types.resources import PromptTemplate

    await store.add_resources({"prompt": PromptTemplate(template="v1 {x}", engine="f-string")})
    await store.add_resources({"prompt": PromptTemplate(template="v2 {x}", engine="f-string")})
    for n in range(7):
        started = await store.start_rollout({"n": n, "text": "é" * n})
        rid, aid = started.rollout_id, started.attempt.attempt_id
        await store.add_many_spans([make_span(rid, aid, seq, name=f"s{n}-{seq}") for seq in (1, 2, 3)])
        if n % 3 == 0:  # a retried attempt
            await store.update_attempt(rid, aid, status="failed")
            again = await store.start_attempt(rid)
            await store.add_span(make_span(rid, again.attempt.attempt_id, 4, name="retry"))
            aid = again.attempt.attempt_id
        await store.update_attempt(rid, aid, status="succeeded" if n % 2 else "failed")
    await store.enqueue_rollout({"n": "queued"})


def _sqlite(path: Path) -> Any:
    from agentlightning_sqlite import SqliteLightningStore

    return SqliteLightningStore(str(path), watchdog_interval=None)


def _postgres(url: str) -> Any:
    from agentlightning_postgres import PostgresLightningStore

    return PostgresLightningStore(url, watchdog_interval=None)


def test_copy_sqlite_to_postgres_resumes_and_back(
    tmp_path: Path, schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentlightning.store.copy import copy_store, digest_store
    from agentlightning.training import export

    async def run() -> None:
        source, target, back = _sqlite(tmp_path / "a.db"), _postgres(schema_url), _sqlite(tmp_path / "b.db")
        try:
            await _fill(source)
            # the first copy stops after its first batch of 3 rollouts (a crash, a Ctrl-C)
            real = export._import_exact
            calls: List[int] = []

            async def interrupted(*args: Any) -> None:
                calls.append(1)
                if len(calls) == 2:
                    raise KeyboardInterrupt
                await real(*args)

            monkeypatch.setattr(export, "_import_exact", interrupted)
            with pytest.raises(KeyboardInterrupt):
                await copy_store(source, target, batch_size=3)
            monkeypatch.setattr(export, "_import_exact", real)
            assert (await target.query_rollouts()).total == 3

            resumed = await copy_store(source, target, batch_size=3)
            assert (resumed.written.rollouts_imported, resumed.written.rollouts_skipped) == (5, 3)
            assert resumed.written.resources_skipped == 2 and resumed.verified
            assert resumed.source.counts == {"rollouts": 8, "attempts": 10, "spans": 24, "resources": 2}

            again = await copy_store(source, target)  # nothing left to copy, nothing written twice
            assert again.written.rollouts_imported == 0 and again.written.rollouts_skipped == 8 and again.verified

            home = await copy_store(target, back)
            assert home.verified and home.target.checksum == resumed.source.checksum
            assert (await back.get_latest_resources()) == (await source.get_latest_resources())
            queued = await back.dequeue_rollout()  # the copied queue works
            assert queued is not None and queued.input == {"n": "queued"}
            assert (await digest_store(back)).checksum != home.source.checksum  # and a change shows
        finally:
            for store in (source, target, back):
                await store.close()

    anyio.run(run)


def test_copy_into_memory_and_refusals(tmp_path: Path) -> None:
    from agentlightning.store.copy import copy_store

    pytest.importorskip("agentlightning_memory")

    async def run() -> None:
        from agentlightning_memory import InMemoryLightningStore

        source = _sqlite(tmp_path / "a.db")
        memory = InMemoryLightningStore(watchdog_interval=None)
        try:
            await _fill(source)
            stats = await copy_store(source, memory)
            assert stats.verified and stats.target.counts["rollouts"] == 8
            with pytest.raises(ValueError, match="batch_size"):
                await copy_store(source, memory, batch_size=0)
        finally:
            await source.close()
            await memory.close()

    anyio.run(run)


def test_agl_store_copy_command(tmp_path: Path, schema_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("agentlightning_server")
    from agentlightning.cli.store import main

    async def fill() -> None:
        store = _sqlite(tmp_path / "a.db")
        try:
            await _fill(store)
        finally:
            await store.close()

    anyio.run(fill)
    source = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["copy", source, schema_url, "--no-progress"]) == 0
    assert "verified: counts and checksums match" in capsys.readouterr().err
    assert main(["copy", source, schema_url, "--no-progress"]) == 0
    assert "skipped 8 rollouts" in capsys.readouterr().err
    assert main(["copy", source, "http://127.0.0.1:9", "--no-progress"]) == 2
    assert "must be a database store" in capsys.readouterr().err
