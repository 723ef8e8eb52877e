"""``agentlightning.training.export``: traces out of a real store (memory, SQLite file) and back into a fresh one.

The round trip must give back identical rollouts, attempts, spans (token ids and rewards included) and resources;
a second import changes nothing; the training formats carry the token ids, rewards and chat messages of each call.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import anyio
import attrs
import pytest
from agentlightning.cli import main as agl_main
from agentlightning.store.engine import EngineLightningStore
from agentlightning.testing.store import make_span
from agentlightning.training import (
    ExportFilter,
    RolloutTrace,
    export_traces,
    import_traces,
    iter_rollout_traces,
    trace_records,
)
from agentlightning.types.core import Rollout
from agentlightning.types.resources import LLM, PromptTemplate
from agentlightning.types.tracer import Span
from agentlightning_memory.backend import MemoryBackend
from agentlightning_sqlite import SqliteBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BACKENDS = ("memory", "sqlite")


def _store(kind: str, directory: Path, name: str = "store.db") -> EngineLightningStore:
    backend = MemoryBackend() if kind == "memory" else SqliteBackend(directory / name)
    return EngineLightningStore(backend, watchdog_interval=None, scan_debounce_seconds=3600)


def llm_span(rid: str, aid: str, seq: int, prompt: List[int], response: List[int], question: str, answer: str) -> Span:
    return make_span(
        rid,
        aid,
        seq,
        name="openai.chat.completion",
        attributes={
            "gen_ai.request.model": "m",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": question,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": answer,
            "prompt_token_ids": prompt,
            "response_token_ids": response,
        },
    )


def reward_span(rid: str, aid: str, seq: int, value: float) -> Span:
    span = make_span(
        rid,
        aid,
        seq,
        name="agentlightning.annotation",
        attributes={"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": value},
    )
    return attrs.evolve(span, start_time=span.end_time + 1, end_time=span.end_time + 1)  # after the LLM call


async def populate(store: EngineLightningStore, rewards: List[Optional[float]]) -> List[str]:
    """One rollout per reward: an LLM call with token ids, then the reward (None: none). Rollout 1 has a failed
    first attempt with its own spans; the last one stays queued."""
    first = await store.add_resources({"main_llm": LLM(endpoint="http://x/v1", model="m")})
    await store.add_resources({"prompt": PromptTemplate(template="Q: {q}", engine="f-string")})
    await store.update_resources(first.resources_id, {"main_llm": LLM(endpoint="http://y/v1", model="m2")})
    ids = []
    for index, value in enumerate(rewards):
        started = await store.start_rollout({"q": index, "nested": {"k": [1, 2]}}, mode="train", metadata={"i": index})
        rid, aid = started.rollout_id, started.attempt.attempt_id
        if index == 1:  # a failed attempt, then a retry
            await store.add_many_spans([llm_span(rid, aid, 1, [9, 9], [8], "old", "no")])
            await store.update_attempt(rid, aid, status="failed")
            aid = (await store.start_attempt(rid)).attempt.attempt_id
        seq = await store.get_next_span_sequence_id(rid, aid)
        spans = [llm_span(rid, aid, seq, [1, 2, index], [3, index, 4], f"q{index}", f"a{index}")]
        if value is not None:
            spans.append(reward_span(rid, aid, seq + 1, value))
        await store.add_many_spans(spans)
        await store.update_attempt(rid, aid, status="succeeded" if index % 3 else "failed")
        ids.append(rid)
    await store.enqueue_rollout({"q": "queued"})
    return ids


def fill_sqlite(path: Path, rewards: List[Optional[float]]) -> None:
    """A SQLite store file holding :func:`populate`'s rollouts."""

    async def fill() -> None:
        store = _store("sqlite", path.parent, path.name)
        try:
            await populate(store, rewards)
        finally:
            await store.close()

    anyio.run(fill)


async def snapshot(store: EngineLightningStore) -> Dict[str, Any]:
    """Everything a round trip must keep, as comparable values."""
    out: Dict[str, Any] = {"rollouts": [], "resources": [], "latest": None}
    for rollout in await store.query_rollouts():
        attempts = list(await store.query_attempts(rollout.rollout_id))
        spans = list(await store.query_spans(rollout.rollout_id))
        out["rollouts"].append((rollout, attempts, spans))
    out["resources"] = list(await store.query_resources())
    latest = await store.get_latest_resources()
    out["latest"] = latest.resources_id if latest else None
    return out


@pytest.mark.parametrize("target", BACKENDS)
@pytest.mark.parametrize("source", BACKENDS)
def test_traces_round_trip_gives_identical_records_and_is_idempotent(source: str, target: str, tmp_path: Path) -> None:
    async def main() -> None:
        path = str(tmp_path / "traces.jsonl.gz")
        src = _store(source, tmp_path, "src.db")
        dst = _store(target, tmp_path, "dst.db")
        try:
            await populate(src, [0.5, 1.0, None, 0.0, 0.25])
            stats = await export_traces(src, path, format="traces", page_size=2)
            assert (stats.rollouts_exported, stats.rollouts_matched) == (6, 6)
            first = await import_traces(dst, path, batch_size=4)
            assert (first.rollouts_imported, first.rollouts_skipped, first.resources_imported) == (6, 0, 2)
            assert first.spans_imported == stats.spans == 5 * 1 + 4 + 1  # 5 calls, 4 rewards, 1 failed attempt
            want, got = await snapshot(src), await snapshot(dst)
            assert got == want
            # spans came back with their token ids and rewards, sequence counters continue after them
            rollout, attempts, spans = got["rollouts"][1]
            assert [a.status for a in attempts] == ["failed", "succeeded"]
            assert spans[-2].attributes["response_token_ids"] == [3, 1, 4]
            assert spans[-1].attributes["agentlightning.reward.0.value"] == 1.0
            assert await dst.get_next_span_sequence_id(rollout.rollout_id, attempts[-1].attempt_id) == 4
            # the queued rollout is still dequeued from the new store
            claimed = await dst.dequeue_rollout()
            assert claimed is not None and claimed.input == {"q": "queued"}
            # a second import is a no-op
            again = await import_traces(dst, path)
            assert (again.rollouts_imported, again.rollouts_skipped, again.resources_skipped) == (0, 6, 2)
            assert len((await snapshot(dst))["rollouts"]) == 6
        finally:
            await src.close()
            await dst.close()

    anyio.run(main)


def test_api_replay_keeps_contents_under_new_ids_and_is_idempotent(tmp_path: Path) -> None:
    """Stores without a storage backend (HTTP clients) are replayed through the public store methods."""

    async def main() -> None:
        path = str(tmp_path / "traces.jsonl")
        src, dst = _store("memory", tmp_path), _store("sqlite", tmp_path)
        try:
            ids = await populate(src, [0.5, 1.0])
            await export_traces(src, path)
            stats = await import_traces(dst, path, exact=False)
            assert (stats.rollouts_imported, stats.exact) == (3, False)
            again = await import_traces(dst, path, exact=False)
            assert (again.rollouts_imported, again.rollouts_skipped) == (0, 3)
            for original_id in ids:
                original = await src.get_rollout_by_id(original_id)
                [copy] = [r for r in await dst.query_rollouts() if r.metadata["imported_from"] == original_id]
                assert original is not None and copy.rollout_id != original_id
                assert (copy.input, copy.status, copy.mode) == (original.input, original.status, original.mode)

                def content(spans: Any) -> List[Tuple[Any, ...]]:
                    return [(s.sequence_id, s.span_id, s.name, s.attributes) for s in spans]

                assert content(await dst.query_spans(copy.rollout_id)) == content(await src.query_spans(original_id))
        finally:
            await src.close()
            await dst.close()

    anyio.run(main)


@pytest.mark.parametrize("kind", BACKENDS)
def test_filters_select_rollouts(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        store = _store(kind, tmp_path)
        try:
            ids = await populate(store, [0.5, 1.0, None, 0.0, 0.25])

            async def exported(selection: ExportFilter) -> List[str]:
                return [t.rollout.rollout_id async for t in iter_rollout_traces(store, selection, page_size=2)]

            # statuses: rollouts 0 and 3 failed (index % 3 == 0)
            assert await exported(ExportFilter(status_in=["succeeded"])) == [ids[1], ids[2], ids[4]]
            assert await exported(ExportFilter(min_reward=0.25)) == [ids[0], ids[1], ids[4]]
            assert await exported(ExportFilter(min_reward=0.25, status_in=["failed"])) == [ids[0]]
            assert await exported(ExportFilter(rollout_ids=[ids[3], ids[2]])) == [ids[2], ids[3]]
            assert await exported(ExportFilter(rollout_ids=[])) == []
            third = await store.get_rollout_by_id(ids[3])
            assert third is not None
            later = [r.rollout_id for r in await store.query_rollouts() if r.start_time >= third.start_time]
            assert await exported(ExportFilter(since=third.start_time)) == later
        finally:
            await store.close()

    anyio.run(main)


def test_training_formats_carry_token_ids_rewards_and_messages(tmp_path: Path) -> None:
    async def main() -> Dict[str, List[Dict[str, Any]]]:
        store = _store("memory", tmp_path)
        out: Dict[str, List[Dict[str, Any]]] = {}
        try:
            await populate(store, [0.5, 1.0])
            for fmt in ("triplets", "messages", "openai-chat"):
                path = tmp_path / f"{fmt}.jsonl"
                await export_traces(store, str(path), format=fmt, filter=ExportFilter(status_in=["succeeded"]))
                out[fmt] = [json.loads(line) for line in path.read_text().splitlines()]
        finally:
            await store.close()
        return out

    out = anyio.run(main)
    [triplets] = out["triplets"]  # only rollout 1 succeeded; its latest attempt, not the failed one
    assert triplets["reward"] == 1.0 and triplets["input"] == {"q": 1, "nested": {"k": [1, 2]}}
    [t] = triplets["triplets"]
    assert (t["prompt"]["token_ids"], t["response"]["token_ids"], t["reward"]) == ([1, 2, 1], [3, 1, 4], 1.0)
    [messages] = out["messages"]
    assert messages["reward"] == 1.0 and messages["rollout_id"] == triplets["rollout_id"]
    assert messages["messages"] == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    assert out["openai-chat"] == [{"messages": messages["messages"]}]


def test_tool_calls_reach_the_chat_formats(tmp_path: Path) -> None:
    async def main() -> List[Dict[str, Any]]:
        store = _store("memory", tmp_path)
        try:
            started = await store.start_rollout({"q": "weather"})
            rid, aid = started.rollout_id, started.attempt.attempt_id
            span = make_span(
                rid,
                aid,
                1,
                name="openai.chat.completion",
                attributes={
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": "Weather in Paris?",
                    "gen_ai.request.functions.0.name": "get_weather",
                    "gen_ai.request.functions.0.parameters": '{"type": "object"}',
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.tool_calls.0.id": "call-1",
                    "gen_ai.completion.0.tool_calls.0.name": "get_weather",
                    "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
                },
            )
            await store.add_many_spans([span])
            path = tmp_path / "chat.jsonl"
            await export_traces(store, str(path), format="openai-chat")
            return [json.loads(line) for line in path.read_text().splitlines()]
        finally:
            await store.close()

    [record] = anyio.run(main)
    assert record["tools"][0]["function"]["name"] == "get_weather"
    answer = record["messages"][-1]
    assert answer["role"] == "assistant"
    assert answer["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rewards=st.lists(st.one_of(st.none(), st.floats(-10, 10, allow_nan=False)), min_size=0, max_size=7),
    page_size=st.integers(1, 4),
    threshold=st.one_of(st.none(), st.floats(-10, 10, allow_nan=False)),
)
def test_min_reward_matches_reference_semantics(
    rewards: List[Optional[float]], page_size: int, threshold: Optional[float], tmp_path: Path
) -> None:
    async def main() -> Tuple[List[Optional[float]], List[Optional[float]]]:
        store = _store("memory", tmp_path)
        try:
            await populate(store, rewards)
            got = [
                t.reward
                async for t in iter_rollout_traces(store, ExportFilter(min_reward=threshold), page_size=page_size)
            ]
            everything = [t.reward async for t in iter_rollout_traces(store, page_size=page_size)]
            return got, everything
        finally:
            await store.close()

    got, everything = anyio.run(main)
    assert everything == [*rewards, None]  # the queued rollout has no reward
    expected = everything if threshold is None else [r for r in everything if r is not None and r >= threshold]
    assert got == expected


def test_unknown_format_is_an_error(tmp_path: Path) -> None:
    async def main() -> None:
        store = _store("memory", tmp_path)
        try:
            with pytest.raises(ValueError, match="format must be one of traces, triplets"):
                await export_traces(store, str(tmp_path / "x"), format="csv")
            with pytest.raises(ValueError, match="format must be one of"):
                trace_records(RolloutTrace(rollout=Rollout(rollout_id="r", input=1, start_time=0.0), attempts=[],
                                           spans=[], reward=None), "parquet")  # fmt: skip
        finally:
            await store.close()

    anyio.run(main)


def test_import_rejects_files_that_are_not_traces_exports(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text('{"messages": []}\n')

    async def main() -> None:
        store = _store("memory", tmp_path)
        try:
            with pytest.raises(ValueError, match="not a traces export"):
                await import_traces(store, str(path))
        finally:
            await store.close()

    anyio.run(main)


def test_cli_export_and_import_round_trip(tmp_path: Path, capsys: Any, plugin_manager: Any) -> None:
    import agentlightning_memory.hooks
    import agentlightning_sqlite.hooks

    plugin_manager.register(agentlightning_sqlite.hooks)
    plugin_manager.register(agentlightning_memory.hooks)
    source, target = tmp_path / "src.db", tmp_path / "dst.db"

    fill_sqlite(tmp_path / "src.db", [0.5, 1.0, 0.75])
    out = tmp_path / "t.jsonl.gz"
    for argv in (
        ["export", "--store", f"sqlite:///{source}", "-o", str(out), "--no-progress"],
        ["import", str(out), "--store", f"sqlite:///{target}", "--no-progress"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            agl_main(argv)
        assert exit_info.value.code == 0
    assert "imported 4 rollouts" in capsys.readouterr().err
    with gzip.open(out, "rt") as f:
        assert len(f.read().splitlines()) == 1 + 2 + 4  # header, resources, rollouts

    async def compare() -> None:
        a, b = _store("sqlite", tmp_path, "src.db"), _store("sqlite", tmp_path, "dst.db")
        try:
            assert await snapshot(a) == await snapshot(b)
        finally:
            await a.close()
            await b.close()

    anyio.run(compare)
    chat = tmp_path / "chat.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        agl_main(
            ["export", "--store", f"sqlite:///{source}", "--format", "openai-chat", "--status", "succeeded",
             "--min-reward", "0.6", "-o", str(chat), "--no-progress"]
        )  # fmt: skip
    assert exit_info.value.code == 0
    assert [json.loads(line)["messages"][0]["content"] for line in chat.read_text().splitlines()] == ["q1", "q2"]
    with pytest.raises(SystemExit) as exit_info:
        agl_main(["export", "--store", f"sqlite:///{source}", "--status", "done", "-o", str(chat)])
    assert exit_info.value.code == 2
    assert "unknown status 'done'" in capsys.readouterr().err


def test_parquet_loads_with_pyarrow(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")

    async def main() -> None:
        store = _store("memory", tmp_path)
        try:
            await populate(store, [0.5, 1.0, 0.25])
            stats = await export_traces(store, str(tmp_path / "t.parquet"), format="parquet")
            assert stats.records == 3
        finally:
            await store.close()

    anyio.run(main)
    table = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [row["prompt_ids"] for row in table] == [[1, 2, 0], [1, 2, 1], [1, 2, 2]]
    assert [row["rollout_reward"] for row in table] == [0.5, 1.0, 0.25]
    assert json.loads(table[1]["messages"])[-1] == {"role": "assistant", "content": "a1"}


def test_hf_dataset_helper_streams_a_store_into_a_dataset(tmp_path: Path, plugin_manager: Any) -> None:
    pytest.importorskip("datasets")
    import agentlightning_sqlite.hooks
    from agentlightning.training import to_hf_dataset

    plugin_manager.register(agentlightning_sqlite.hooks)

    fill_sqlite(tmp_path / "src.db", [0.5, 1.0, 0.75])
    url = f"sqlite:///{tmp_path / 'src.db'}"
    cache = str(tmp_path / "cache")
    chat = to_hf_dataset(url, format="messages", filter=ExportFilter(min_reward=0.6), cache_dir=cache)
    assert chat["reward"] == [1.0, 0.75]
    assert chat[0]["messages"] == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    rows = to_hf_dataset(url, format="parquet", cache_dir=cache)
    assert rows["prompt_ids"] == [[1, 2, 0], [1, 2, 1], [1, 2, 2]]
    assert chat["tools"] == [None, None]  # a column in every row, though no call offered tools


def test_hf_dataset_load_dataset_reads_a_parquet_export(tmp_path: Path, plugin_manager: Any) -> None:
    """``agl export --format parquet`` output is what ``datasets.load_dataset("parquet", data_files=...)`` reads."""
    datasets = pytest.importorskip("datasets")
    import agentlightning_sqlite.hooks

    plugin_manager.register(agentlightning_sqlite.hooks)
    fill_sqlite(tmp_path / "src.db", [0.5, 1.0, 0.75])
    out = tmp_path / "rows.parquet"
    with pytest.raises(SystemExit) as exit_info:
        agl_main(["export", "--store", f"sqlite:///{tmp_path / 'src.db'}", "--format", "parquet", "-o", str(out),
                  "--no-progress"])  # fmt: skip
    assert exit_info.value.code == 0
    rows = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert rows["prompt_ids"] == [[1, 2, 0], [1, 2, 1], [1, 2, 2]]
    assert rows["response_ids"] == [[3, 0, 4], [3, 1, 4], [3, 2, 4]]
    assert rows["rollout_reward"] == [0.5, 1.0, 0.75]
    assert json.loads(rows[1]["messages"]) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
    ]


def test_http_stores_export_and_replay_through_the_store_api(tmp_path: Path, plugin_manager: Any) -> None:
    """An HTTP store client has no storage backend: export reads it like any store, import replays through its
    methods (new ids, originals in metadata), and a second import is a no-op."""
    import agentlightning_server.hooks
    import agentlightning_sqlite.hooks
    from agentlightning.store import open_store
    from agentlightning_server.server import LightningStoreServer

    plugin_manager.register(agentlightning_sqlite.hooks)
    plugin_manager.register(agentlightning_server.hooks)
    fill_sqlite(tmp_path / "src.db", [0.5, 1.0, None])
    path = str(tmp_path / "traces.jsonl")

    async def main(source_url: str, target_url: str) -> None:
        async with open_store(source_url) as source, open_store(target_url) as target:
            stats = await export_traces(source, path)
            assert stats.rollouts_exported == 4
            first = await import_traces(target, path)
            assert (first.exact, first.rollouts_imported, first.resources_imported) == (False, 4, 2)
            again = await import_traces(target, path)
            assert (again.rollouts_imported, again.rollouts_skipped, again.resources_skipped) == (0, 4, 2)
            copies = {r.metadata["imported_from"]: r for r in await target.query_rollouts()}
            for original in await source.query_rollouts():
                copy = copies[original.rollout_id]
                assert (copy.input, copy.status, copy.resources_id) == (
                    original.input, original.status, original.resources_id
                )  # fmt: skip
                want = [(s.sequence_id, s.name, s.attributes) for s in await source.query_spans(original.rollout_id)]
                got = [(s.sequence_id, s.name, s.attributes) for s in await target.query_spans(copy.rollout_id)]
                assert got == want

    with (
        LightningStoreServer(f"sqlite:///{tmp_path / 'src.db'}", port=0) as source_server,
        LightningStoreServer(f"sqlite:///{tmp_path / 'dst.db'}", port=0) as target_server,
    ):
        anyio.run(main, source_server.endpoint, target_server.endpoint)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    async def main(stream: io.StringIO) -> None:
        store = _store("memory", tmp_path)
        try:
            await populate(store, [0.5, 1.0, 0.25])
            await export_traces(store, str(tmp_path / "t.jsonl"), page_size=2, progress=True, progress_stream=stream)
        finally:
            await store.close()

    terminal, pipe = _Terminal(), io.StringIO()
    anyio.run(main, terminal)
    anyio.run(main, pipe)
    drawn = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", terminal.getvalue())  # plain, or styled by rich when installed
    assert "export [########################] 4/4" in drawn and drawn.endswith("\n")
    assert pipe.getvalue() == ""


def test_import_names_the_file_and_changes_nothing_for_every_other_export(tmp_path: Path) -> None:
    """Every format but ``traces`` (parquet's binary data included), an empty file and a broken gzip file are refused
    with a message naming the file, before anything is written."""
    pytest.importorskip("pyarrow")

    async def main() -> None:
        source, target = _store("memory", tmp_path), _store("sqlite", tmp_path, "target.db")
        try:
            await populate(source, [0.5, 1.0])
            refused = {}
            for fmt in ("triplets", "messages", "openai-chat", "parquet"):
                path = tmp_path / f"export.{fmt}"
                await export_traces(source, str(path), format=fmt)
                refused[path] = "not a traces export"
            (tmp_path / "empty.jsonl").write_text("\n")
            refused[tmp_path / "empty.jsonl"] = "empty file, not a traces export"
            (tmp_path / "plain.jsonl.gz").write_text('{"agentlightning_traces": 1}\n')  # not gzip data
            refused[tmp_path / "plain.jsonl.gz"] = "not a readable gzip file"
            for path, message in refused.items():
                with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: {message}"):
                    await import_traces(target, str(path))
            assert list(await target.query_rollouts()) == [] and list(await target.query_resources()) == []
        finally:
            await source.close()
            await target.close()

    anyio.run(main)


@pytest.mark.parametrize("kind", BACKENDS)
def test_import_is_idempotent_across_compression_and_after_an_interrupted_import(kind: str, tmp_path: Path) -> None:
    """The same export plain and gzipped, and a file cut short (an interrupted copy): importing them in any order
    leaves the store equal to the source, each rollout once."""

    async def main() -> None:
        source, target = _store("memory", tmp_path), _store(kind, tmp_path, "target.db")
        try:
            await populate(source, [0.5, 1.0, None, 0.25])
            plain, packed, cut = tmp_path / "t.jsonl", tmp_path / "t.jsonl.gz", tmp_path / "cut.jsonl"
            await export_traces(source, str(plain))
            await export_traces(source, str(packed))
            lines = plain.read_text().splitlines(keepends=True)
            cut.write_text("".join(lines[:-2]))  # header, resources and all but the last two rollouts
            first = await import_traces(target, str(cut), batch_size=2)
            assert first.rollouts_imported == 3
            again = await import_traces(target, str(packed), batch_size=2)
            assert (again.rollouts_imported, again.rollouts_skipped, again.resources_imported) == (2, 3, 0)
            last = await import_traces(target, str(plain))
            assert (last.rollouts_imported, last.rollouts_skipped, last.resources_skipped) == (0, 5, 2)
            assert await snapshot(target) == await snapshot(source)
        finally:
            await source.close()
            await target.close()

    anyio.run(main)


def test_since_takes_unix_times_iso_dates_and_durations() -> None:
    import time

    from agentlightning.cli.dev import CommandError
    from agentlightning.cli.transfer import parse_since

    assert parse_since(None) is None
    assert parse_since("1700000000.5") == 1700000000.5
    assert parse_since("2026-12-01") == 1796083200.0  # no zone: UTC
    assert parse_since("2026-12-01T10:00:00+02:00") == 1796112000.0
    before = time.time()
    assert before - 7200 - 1 <= (parse_since("2h") or 0) <= time.time() - 7200
    assert abs((parse_since("1.5d") or 0) - (time.time() - 1.5 * 86400)) < 5
    for text in ("soon", "2h ago", "-5m", "nan", "inf", "2026-13-01", ""):
        with pytest.raises(
            CommandError,
            match=rf"--since must be a Unix time, an ISO date/time or a duration .*{re.escape(repr(text))}",
        ):
            parse_since(text)


def test_cli_reports_a_bad_since_and_a_file_it_cannot_import(tmp_path: Path, capsys: Any, plugin_manager: Any) -> None:
    import agentlightning_sqlite.hooks

    plugin_manager.register(agentlightning_sqlite.hooks)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    for argv, message in (
        (["export", "--store", store, "--since", "yesterday", "-o", str(tmp_path / "x")], "--since must be"),
        (["import", str(chat), "--store", store], f"{chat}: not a traces export"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            agl_main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
