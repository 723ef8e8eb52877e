"""Traces out of a store and back in: ``agl export`` / ``agl import`` as functions.

Export streams rollouts page by page (``query_rollouts`` by start time, each page starting at the last start time
read: a keyset, no offset; on SQLite only the page is decoded), reads each rollout's attempts and spans
(``query_spans`` scoped to the rollout, pushed down to the backend), turns it into records and writes them as it
goes, so memory stays bounded by one page whatever the store holds. Formats:

- ``traces``: everything needed to rebuild the store's records (rollout, attempts, spans; resources first), one JSON
  object per line. The only format :func:`import_traces` reads; export -> import gives identical records.
- ``triplets``: one line per rollout: its final reward and the token-id triplets of its latest attempt.
- ``messages``: one line per LLM call: ``{"messages", "tools"}`` (OpenAI chat, tool calls included, each with an
  id: one recorded without gets a deterministic ``call_<hex>``; ``tools`` only when the call offered some) plus the
  rollout id, attempt id, call index and the rollout's reward.
- ``openai-chat``: the same calls as bare OpenAI fine-tuning JSONL (only ``messages`` and ``tools``).
- ``parquet``: one row per LLM call (ids, ``prompt_ids``, ``response_ids``, rewards, ``messages`` as JSON), needs
  ``pyarrow``; ``datasets.load_dataset("parquet", data_files=...)`` reads it.

Nothing here imports torch; ``pyarrow`` and ``datasets`` are imported only by the functions that need them.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import sys
import time
import zlib
from typing import (
    IO,
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Set,
    TextIO,
    Tuple,
    cast,
)

import attrs

from agentlightning.types.core import Attempt, Rollout, Triplet
from agentlightning.types.resources import ResourcesUpdate
from agentlightning.types.tracer import Span

from .call_ids import with_call_ids

__all__ = [
    "EXPORT_FORMATS",
    "TRACES_FORMAT_VERSION",
    "ExportFilter",
    "ExportStats",
    "ImportStats",
    "RolloutTrace",
    "iter_rollout_traces",
    "trace_triplets",
    "trace_records",
    "export_traces",
    "import_traces",
    "read_trace_file",
    "load_sft_dataset",
    "to_hf_dataset",
]

EXPORT_FORMATS: Tuple[str, ...] = ("traces", "triplets", "messages", "openai-chat", "parquet")
TRACES_FORMAT_VERSION = 1
_HEADER_KEY = "agentlightning_traces"


def _optional_tuple(values: Optional[Iterable[str]]) -> Optional[Tuple[str, ...]]:
    return None if values is None else tuple(values)


@attrs.frozen(kw_only=True)
class ExportFilter:
    """Which rollouts to export. ``None`` means no restriction.

    ``status_in``, ``rollout_ids`` and ``since`` (rollouts started at or after this Unix time) are answered by the
    store; ``min_reward`` (final reward of the latest attempt at least this; rollouts without a reward are left
    out) are checked per rollout while streaming.
    """

    status_in: Optional[Tuple[str, ...]] = attrs.field(default=None, converter=_optional_tuple)
    rollout_ids: Optional[Tuple[str, ...]] = attrs.field(default=None, converter=_optional_tuple)
    since: Optional[float] = None
    min_reward: Optional[float] = None


@attrs.define(kw_only=True)
class RolloutTrace:
    """One rollout as exported: the rollout (without its attempt), its attempts, its spans (all attempts, by
    sequence id) and the final reward of its latest attempt."""

    rollout: Rollout
    attempts: List[Attempt]
    spans: List[Span]
    reward: Optional[float]

    @property
    def latest_attempt(self) -> Optional[Attempt]:
        return max(self.attempts, key=lambda a: a.sequence_id) if self.attempts else None

    def latest_spans(self) -> List[Span]:
        latest = self.latest_attempt
        return [s for s in self.spans if latest is not None and s.attempt_id == latest.attempt_id]


@attrs.define(kw_only=True)
class ExportStats:
    """What an export did."""

    format: str
    rollouts_matched: int = 0  # what the store's filters matched
    rollouts_exported: int = 0
    records: int = 0  # lines (JSONL) or rows (parquet) written
    spans: int = 0
    seconds: float = 0.0

    @property
    def rollouts_per_second(self) -> float:
        return self.rollouts_exported / self.seconds if self.seconds > 0 else 0.0


@attrs.define(kw_only=True)
class ImportStats:
    """What an import did. A rollout or resources id already in the store is skipped (import is idempotent)."""

    rollouts_imported: int = 0
    rollouts_skipped: int = 0
    spans_imported: int = 0
    resources_imported: int = 0
    resources_skipped: int = 0
    exact: bool = True  # ids kept (engine stores); False: new ids, the original in metadata["imported_from"]


# -- reading a store -----------------------------------------------------------------------------------------------


def _plain_rollout(rollout: Rollout) -> Rollout:
    """A query result (maybe an ``AttemptedRollout``) as a plain :class:`Rollout`."""
    if type(rollout) is Rollout:
        return rollout
    return Rollout(**{f.name: getattr(rollout, f.name) for f in attrs.fields(Rollout)})


async def iter_rollout_traces(
    store: Any,
    filter: ExportFilter = ExportFilter(),
    *,
    page_size: int = 500,
    all_attempts: bool = True,
    on_total: Optional[Callable[[int], None]] = None,
    on_rollout: Optional[Callable[[int], None]] = None,
) -> AsyncIterator[RolloutTrace]:
    """Stream the matching rollouts of ``store`` by start time (ties in insertion order), one page of rollouts in
    memory at a time.

    Pages are read by key, not by offset (see :func:`_rollout_pages`), so each costs the same wherever it is in the
    store; a rollout that matches all along is read exactly once even while others are added or change status.
    ``all_attempts=False`` reads only the latest attempt and its spans (enough for training formats).
    ``on_total(n)`` is called once with the count the store's filters matched; ``on_rollout(1)`` after each rollout
    read (exported or filtered out), for progress bars.
    """
    from agentlightning.emitter.reward import find_final_reward

    async for item in _rollout_pages(store, filter, page_size, on_total):
        rollout = _plain_rollout(item)
        latest: Optional[Attempt] = getattr(item, "attempt", None)
        if all_attempts:
            attempts = list(await store.query_attempts(rollout.rollout_id))
            spans = list(await store.query_spans(rollout.rollout_id))
        else:
            attempts = [latest] if latest is not None else []
            spans = list(await store.query_spans(rollout.rollout_id, latest.attempt_id)) if latest else []
        newest = max(attempts, key=lambda a: a.sequence_id) if attempts else None
        reward = find_final_reward([s for s in spans if newest is not None and s.attempt_id == newest.attempt_id])
        if on_rollout is not None:
            on_rollout(1)
        if filter.min_reward is not None and (reward is None or reward < filter.min_reward):
            continue
        yield RolloutTrace(rollout=rollout, attempts=attempts, spans=spans, reward=reward)


async def _rollout_pages(
    store: Any, filter: ExportFilter, page_size: int, on_total: Optional[Callable[[int], None]]
) -> AsyncIterator[Any]:
    """The rollouts ``filter``'s store-side parts match, by ``start_time`` then insertion order, read a page at a time
    by key: each page asks for the rollouts started at or after the last start time read (``start_time_from``,
    ``sort_by="start_time"``) and skips those of that very start time already read, so no page walks past the rollouts
    before it. Memory holds one page and the ids sharing the last start time read. A store that ignores
    ``start_time_from`` (upstream's server) is read by offset instead (:func:`_pages_by_offset`)."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    status_in = list(filter.status_in) if filter.status_in is not None else None
    rollout_ids = list(filter.rollout_ids) if filter.rollout_ids is not None else None
    if rollout_ids is not None and not rollout_ids:
        if on_total is not None:
            on_total(0)
        return
    query = functools.partial(
        store.query_rollouts, status_in=status_in, rollout_id_in=rollout_ids, sort_by="start_time"
    )
    cursor = filter.since
    seen: Set[str] = set()  # rollouts read whose start time is ``cursor``
    read = 0
    first = True
    while True:
        limit = page_size + len(seen)
        page = await query(start_time_from=cursor, limit=limit)
        if first and on_total is not None:
            on_total(int(page.total))
        first = False
        items = list(page.items)
        if cursor is not None and any(r.start_time < cursor for r in items):  # start_time_from was ignored
            async for item in _pages_by_offset(query, filter.since, page_size, read):
                yield item
            return
        fresh = [r for r in items if r.start_time != cursor or r.rollout_id not in seen]
        for item in fresh:
            yield item
        read += len(fresh)
        if len(items) < limit:
            return
        last = items[-1].start_time
        if last != cursor:
            cursor, seen = last, set()
        seen.update(r.rollout_id for r in fresh if r.start_time == cursor)


async def _pages_by_offset(
    query: Callable[..., Any], since: Optional[float], page_size: int, offset: int
) -> AsyncIterator[Any]:
    """The rest of the rollouts, by start time, from a store that ignored ``start_time_from`` (and so answered every
    page read by key from its first rollout on): pages by offset from the ``offset`` rollouts read so far, ``since``
    tested here."""
    while True:
        items = list((await query(limit=page_size, offset=offset)).items)
        for item in items:
            if since is None or item.start_time >= since:
                yield item
        offset += len(items)
        if len(items) < page_size:
            return


# -- records --------------------------------------------------------------------------------------------------------


def trace_triplets(spans: Sequence[Span], adapter: Any = None) -> List[Triplet]:
    """Token-id triplets of one attempt's spans: by ``adapter`` when given, else client-side LLM spans
    (:class:`~agentlightning.adapter.TracerTraceToTriplet`), backed up by the LLM proxy's spans
    (:class:`~agentlightning.adapter.LlmProxyTraceToTriplet`) when those give no token ids."""
    from agentlightning.adapter import LlmProxyTraceToTriplet, TracerTraceToTriplet

    if not spans:
        return []
    if adapter is not None:
        return list(adapter.adapt(list(spans)))
    triplets = list(TracerTraceToTriplet().adapt(list(spans)))
    if not any(_token_ids(t.prompt) for t in triplets):
        proxy = list(LlmProxyTraceToTriplet().adapt(list(spans)))
        if any(_token_ids(t.prompt) for t in proxy):
            return proxy
    return triplets


def _token_ids(part: Any) -> List[int]:
    ids = part.get("token_ids") if isinstance(part, dict) else getattr(part, "token_ids", None)
    return list(ids) if ids else []


def _chat_records(trace: RolloutTrace) -> List[Dict[str, Any]]:
    """The latest attempt's LLM calls as chat records, each tool call with an id (see :mod:`.call_ids`)."""
    from agentlightning.adapter import TraceToMessages

    latest = trace.latest_attempt
    attempt_id = latest.attempt_id if latest is not None else None
    return [
        {**r, "messages": with_call_ids(r["messages"], trace.rollout.rollout_id, attempt_id)}
        for r in TraceToMessages().adapt(trace.latest_spans())
    ]


def _openai_chat(record: Dict[str, Any]) -> Dict[str, Any]:
    """One call as an OpenAI chat fine-tuning record: ``messages``, and ``tools`` only when the call offered some."""
    line: Dict[str, Any] = {"messages": record["messages"]}
    if record["tools"]:
        line["tools"] = record["tools"]
    return line


def _triplet_dict(triplet: Triplet) -> Dict[str, Any]:
    from agentlightning.types.serialization import to_dict

    out: Dict[str, Any] = to_dict(triplet)
    return out


def trace_records(trace: RolloutTrace, format: str, *, adapter: Any = None) -> List[Dict[str, Any]]:
    """The JSON records (lines) of one rollout in ``format`` (any of :data:`EXPORT_FORMATS` but ``parquet``, whose
    rows are :func:`_parquet_rows`)."""
    from agentlightning.types.serialization import to_dict

    latest = trace.latest_attempt
    attempt_id = latest.attempt_id if latest is not None else None
    if format == "traces":
        return [
            {
                "rollout": to_dict(trace.rollout),
                "attempts": [to_dict(a) for a in trace.attempts],
                "spans": [to_dict(s) for s in trace.spans],
            }
        ]
    if format == "triplets":
        triplets = trace_triplets(trace.latest_spans(), adapter)
        return [
            {
                "rollout_id": trace.rollout.rollout_id,
                "attempt_id": attempt_id,
                "status": trace.rollout.status,
                "input": trace.rollout.input,
                "reward": trace.reward,
                "triplets": [_triplet_dict(t) for t in triplets],
            }
        ]
    if format == "messages":
        return [
            {
                "rollout_id": trace.rollout.rollout_id,
                "attempt_id": attempt_id,
                "index": index,
                "reward": trace.reward,
                **_openai_chat(record),
            }
            for index, record in enumerate(_chat_records(trace))
        ]
    if format == "openai-chat":
        return [_openai_chat(record) for record in _chat_records(trace)]
    raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")


_PARQUET_COLUMNS = (
    "rollout_id", "attempt_id", "index", "status", "input", "prompt_ids", "response_ids", "reward", "rollout_reward",
    "messages", "tools",
)  # fmt: skip


def _parquet_rows(trace: RolloutTrace, adapter: Any = None) -> List[Dict[str, Any]]:
    latest = trace.latest_attempt
    triplets = trace_triplets(trace.latest_spans(), adapter)
    chats = _chat_records(trace)
    rows = []
    for index in range(max(len(triplets), len(chats))):
        triplet = triplets[index] if index < len(triplets) else None
        chat = chats[index] if index < len(chats) and len(chats) == len(triplets) else None
        rows.append(
            {
                "rollout_id": trace.rollout.rollout_id,
                "attempt_id": latest.attempt_id if latest is not None else None,
                "index": index,
                "status": trace.rollout.status,
                "input": json.dumps(trace.rollout.input),
                "prompt_ids": _token_ids(triplet.prompt) if triplet is not None else [],
                "response_ids": _token_ids(triplet.response) if triplet is not None else [],
                "reward": triplet.reward if triplet is not None else None,
                "rollout_reward": trace.reward,
                "messages": json.dumps(chat["messages"]) if chat is not None else None,
                "tools": json.dumps(chat["tools"]) if chat is not None and chat["tools"] else None,
            }
        )
    return rows


# -- writing ------------------------------------------------------------------------------------------------------


class _Progress:
    """A progress bar on a terminal (one redrawn line, at most five times a second); silent elsewhere."""

    def __init__(self, label: str, stream: Optional[TextIO], enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.total: Optional[int] = None
        self.done = 0
        self.started = time.perf_counter()
        self._last = 0.0
        self._line: Any = None
        if enabled:
            from agentlightning.trainer.progress import ProgressLine

            self._line = ProgressLine(stream if stream is not None else sys.stderr, log=False)

    def set_total(self, total: int) -> None:
        self.total = total

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self._line is not None and (now - self._last >= 0.2 or self.done == self.total):
            self._last = now
            self._render(final=False)

    def _render(self, *, final: bool) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        total = self.total if self.total is not None else "?"
        width = 24
        filled = width if not self.total else min(width, int(width * self.done / self.total))
        bar = "#" * filled + "." * (width - filled)
        if self._line.tty:  # elsewhere the caller reports the totals
            self._line.render(
                [
                    (self.label, f"[{bar}] {self.done}/{total}"),
                    ("rate", f"{self.done / elapsed:.0f}/s"),
                    ("time", f"{elapsed:.1f} s"),
                ],
                final=final,
            )

    def close(self) -> None:
        if self._line is not None:
            self._render(final=True)
            self._line.close()


def _open_text(path: str, mode: str) -> IO[str]:
    if path == "-":
        return sys.stdout if "w" in mode else sys.stdin
    if path.endswith(".gz"):
        return cast(IO[str], gzip.open(path, mode, encoding="utf-8"))
    return open(path, mode, encoding="utf-8")


def _json_line(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


async def export_traces(
    store: Any,
    output: str,
    *,
    format: str = "traces",
    filter: ExportFilter = ExportFilter(),
    adapter: Any = None,
    page_size: int = 500,
    progress: bool = False,
    progress_stream: Optional[TextIO] = None,
) -> ExportStats:
    """Write the matching rollouts of ``store`` (a :class:`~agentlightning.store.base.LightningStore`) to ``output``
    (a path; ``-`` is stdout for JSONL; ``.gz`` compresses JSONL) in ``format``; returns counts and time.

    ``adapter`` turns spans into triplets for ``triplets``/``parquet`` (default: :func:`trace_triplets`'s choice).
    ``progress`` draws a progress bar on ``progress_stream`` (default stderr) when it is a terminal.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    stats = ExportStats(format=format)
    bar = _Progress("export", progress_stream, progress)
    began = time.perf_counter()

    def on_total(n: int) -> None:
        stats.rollouts_matched = n
        bar.set_total(n)

    traces = iter_rollout_traces(
        store,
        filter,
        page_size=page_size,
        all_attempts=format == "traces",
        on_total=on_total,
        on_rollout=bar.advance,
    )
    try:
        if format == "parquet":
            await _write_parquet(traces, output, stats, adapter, page_size)
        else:
            await _write_jsonl(store, traces, output, format, stats, adapter)
    finally:
        bar.close()
    stats.seconds = time.perf_counter() - began
    return stats


async def _write_jsonl(
    store: Any, traces: AsyncIterator[RolloutTrace], output: str, format: str, stats: ExportStats, adapter: Any
) -> None:
    from agentlightning.types.serialization import to_dict

    out = _open_text(output, "wt")
    try:
        if format == "traces":
            latest = await store.get_latest_resources()
            header = {
                _HEADER_KEY: TRACES_FORMAT_VERSION,
                "latest_resources_id": latest.resources_id if latest is not None else None,
            }
            out.write(_json_line(header))
            offset = 0
            while True:  # resources are few, but page them like rollouts anyway
                page = await store.query_resources(limit=200, offset=offset)
                for update in page.items:
                    out.write(_json_line({"resources": to_dict(update)}))
                offset += len(page.items)
                if len(page.items) < 200:
                    break
        async for trace in traces:
            for record in trace_records(trace, format, adapter=adapter):
                out.write(_json_line(record))
                stats.records += 1
            stats.rollouts_exported += 1
            stats.spans += len(trace.spans)
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()


async def _write_parquet(
    traces: AsyncIterator[RolloutTrace], output: str, stats: ExportStats, adapter: Any, page_size: int
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("the parquet format needs pyarrow: pip install pyarrow") from exc
    if output == "-":
        raise ValueError("the parquet format needs a file path, not '-'")
    schema = pa.schema(
        [
            ("rollout_id", pa.string()),
            ("attempt_id", pa.string()),
            ("index", pa.int32()),
            ("status", pa.string()),
            ("input", pa.string()),
            ("prompt_ids", pa.list_(pa.int64())),
            ("response_ids", pa.list_(pa.int64())),
            ("reward", pa.float64()),
            ("rollout_reward", pa.float64()),
            ("messages", pa.string()),
            ("tools", pa.string()),
        ]
    )
    buffer: List[Dict[str, Any]] = []
    with pq.ParquetWriter(output, schema) as writer:

        def flush() -> None:
            if buffer:
                columns = {name: [row[name] for row in buffer] for name in _PARQUET_COLUMNS}
                writer.write_table(pa.table(columns, schema=schema))
                buffer.clear()

        async for trace in traces:
            rows = _parquet_rows(trace, adapter)
            buffer.extend(rows)
            stats.records += len(rows)
            stats.rollouts_exported += 1
            stats.spans += len(trace.spans)
            if len(buffer) >= max(page_size, 1000):
                flush()
        flush()


# -- reading an export and importing it -----------------------------------------------------------------------------


def read_trace_file(path: str) -> Iterator[Dict[str, Any]]:
    """The records of a ``traces`` export (resources and rollouts, after checking the header), one at a time. Any
    other file (another format, binary data such as a parquet export, a broken gzip file) is a ``ValueError`` that
    names the file."""
    f = _open_text(path, "rt")
    try:
        yield from _trace_lines(path, f)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not a traces export (agl export --format traces): binary data, not JSON lines; only that "
            "format can be imported (a parquet export cannot)"
        ) from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc
    finally:
        if f is not sys.stdin:
            f.close()


def _trace_lines(path: str, f: IO[str]) -> Iterator[Dict[str, Any]]:
    first = f.readline()
    if not first.strip():
        raise ValueError(f"{path}: empty file, not a traces export")
    try:
        header = json.loads(first)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not a traces export (agl export --format traces): line 1 is not JSON ({exc.msg})"
        ) from exc
    if not isinstance(header, dict) or _HEADER_KEY not in header:
        raise ValueError(f"{path}: not a traces export (agl export --format traces); only that format can be imported")
    if header[_HEADER_KEY] != TRACES_FORMAT_VERSION:
        raise ValueError(f"{path}: traces format version {header[_HEADER_KEY]} is not supported")
    yield header
    for number, line in enumerate(f, 2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict) or not ({"rollout", "resources"} & set(record)):
            raise ValueError(f"{path}:{number}: expected a rollout or resources record")
        record["_line"] = number
        yield record


@attrs.define
class _RolloutRecord:
    rollout: Rollout
    attempts: List[Attempt]
    spans: List[Span]


def _decode_rollout(record: Dict[str, Any], where: str) -> _RolloutRecord:
    from agentlightning.types.serialization import ValidationError, from_dict, rollout_from_dict

    try:
        rollout = _plain_rollout(rollout_from_dict(record["rollout"]))
        attempts = [from_dict(a, Attempt) for a in record.get("attempts") or []]
        spans = [from_dict(s, Span) for s in record.get("spans") or []]
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where}: invalid rollout record: {exc}") from exc
    for other in {a.rollout_id for a in attempts} | {s.rollout_id for s in spans}:
        if other != rollout.rollout_id:
            raise ValueError(f"{where}: record of rollout {rollout.rollout_id} holds data of {other}")
    return _RolloutRecord(rollout, attempts, spans)


async def import_traces(
    store: Any,
    path: str,
    *,
    batch_size: int = 200,
    exact: Optional[bool] = None,
    progress: bool = False,
    progress_stream: Optional[TextIO] = None,
) -> ImportStats:
    """Replay a ``traces`` export into ``store``. Idempotent: rollouts and resources already there are skipped.

    On engine stores (memory, SQLite: ``exact`` left ``None`` or True) records are written as they were, ids,
    statuses, times and sequence ids included, ``batch_size`` rollouts per transaction. Other stores (HTTP clients;
    ``exact=False``) are replayed through the public API: each rollout gets a new id (the original is kept in
    ``metadata["imported_from"]``, which is how a second import recognises it), its attempts new ids, its spans the
    same sequence ids and contents; statuses are set at the end; resources keep their ids.
    """
    from agentlightning.types.serialization import ValidationError, from_dict

    backend = getattr(store, "backend", None)
    can_exact = backend is not None and hasattr(backend, "run")
    if exact is None:
        exact = can_exact
    if exact and not can_exact:
        raise ValueError(f"{type(store).__name__} has no storage backend to write to; import with exact=False")
    stats = ImportStats(exact=bool(exact))
    bar = _Progress("import", progress_stream, progress)
    latest_id: Optional[str] = None
    pending: List[_RolloutRecord] = []
    imported_from: Optional[Set[str]] = None
    resources: Dict[str, ResourcesUpdate] = {}

    async def flush() -> None:
        nonlocal imported_from
        if not pending:
            return
        if exact:
            await _import_exact(backend, pending, stats)
        else:
            imported_from = imported_from if imported_from is not None else await _imported_ids(store)
            await _import_api(store, pending, stats, imported_from)
        bar.advance(len(pending))
        pending.clear()

    try:
        for record in read_trace_file(path):
            where = f"{path}:{record.get('_line', 1)}"
            if _HEADER_KEY in record:
                latest_id = record.get("latest_resources_id")
                continue
            if "resources" in record:
                try:
                    update = from_dict(record["resources"], ResourcesUpdate)
                except (ValidationError, ValueError, TypeError) as exc:
                    raise ValueError(f"{where}: invalid resources record: {exc}") from exc
                resources[update.resources_id] = update
                continue
            if resources:  # resources come first in an export: write them before the rollouts that use them
                await _import_resources(store, list(resources.values()), latest_id, bool(exact), stats)
                resources.clear()
            pending.append(_decode_rollout(record, where))
            if len(pending) >= batch_size:
                await flush()
        if resources:
            await _import_resources(store, list(resources.values()), latest_id, bool(exact), stats)
        await flush()
    finally:
        bar.close()
    return stats


async def _import_resources(
    store: Any, updates: List[ResourcesUpdate], latest_id: Optional[str], exact: bool, stats: ImportStats
) -> None:
    # written in the exported (insertion) order; the store's latest is the one written last, so the exported latest
    # is written once more at the end (a re-write keeps its position)
    if exact:

        def write(tx: Any) -> Tuple[int, int]:
            added = skipped = 0
            for update in updates:
                if tx.get_resources(update.resources_id) is not None:
                    skipped += 1
                    continue
                tx.put_resources(update)
                added += 1
            latest = next((u for u in updates if u.resources_id == latest_id), None)
            if added and latest is not None:
                tx.put_resources(latest)
            return added, skipped

        added, skipped = await store.backend.run(write, write=True)
    else:
        added = skipped = 0
        updates = sorted(updates, key=lambda u: u.resources_id == latest_id)  # the latest written last
        for update in updates:
            if await store.get_resources_by_id(update.resources_id) is not None:
                skipped += 1
                continue
            await store.update_resources(update.resources_id, update.resources)
            added += 1
    stats.resources_imported += added
    stats.resources_skipped += skipped


async def _import_exact(backend: Any, records: List[_RolloutRecord], stats: ImportStats) -> None:
    def write(tx: Any) -> Tuple[int, int, int]:
        imported = skipped = spans = 0
        for record in records:
            rollout = record.rollout
            if tx.get_rollout(rollout.rollout_id) is not None:
                skipped += 1
                continue
            tx.insert_rollouts([rollout])
            for attempt in sorted(record.attempts, key=lambda a: a.sequence_id):
                tx.insert_attempt(attempt)
            if record.spans:
                spans += sum(tx.insert_spans(record.spans))
                tx.sequence_raise(rollout.rollout_id, max(s.sequence_id for s in record.spans))
            if rollout.status in ("queuing", "requeuing"):
                tx.queue_push([rollout.rollout_id])
            imported += 1
        return imported, skipped, spans

    imported, skipped, spans = await backend.run(write, write=True)
    stats.rollouts_imported += imported
    stats.rollouts_skipped += skipped
    stats.spans_imported += spans


async def _imported_ids(store: Any) -> Set[str]:
    """Original ids of rollouts an earlier API import wrote (``metadata["imported_from"]``)."""
    seen: Set[str] = set()
    offset = 0
    while True:
        page = await store.query_rollouts(limit=1000, offset=offset)
        for rollout in page.items:
            origin = (rollout.metadata or {}).get("imported_from")
            if isinstance(origin, str):
                seen.add(origin)
        offset += len(page.items)
        if len(page.items) < 1000:
            return seen


async def _import_api(store: Any, records: List[_RolloutRecord], stats: ImportStats, seen: Set[str]) -> None:
    for record in records:
        original = record.rollout
        if original.rollout_id in seen:
            stats.rollouts_skipped += 1
            continue
        attempts = sorted(record.attempts, key=lambda a: a.sequence_id)
        metadata = dict(original.metadata or {})
        metadata["imported_from"] = original.rollout_id
        created = await store.start_rollout(
            input=original.input,
            mode=original.mode,
            resources_id=original.resources_id,
            config=original.config,
            metadata=metadata,
        )
        new_id = created.rollout_id
        attempt_ids = {}
        for index, attempt in enumerate(attempts):
            current = created.attempt if index == 0 else (await store.start_attempt(new_id)).attempt
            attempt_ids[attempt.attempt_id] = current.attempt_id
        spans = [
            attrs.evolve(s, rollout_id=new_id, attempt_id=attempt_ids[s.attempt_id])
            for s in record.spans
            if s.attempt_id in attempt_ids
        ]
        if spans:
            stats.spans_imported += len(await store.add_many_spans(spans))
        for attempt in attempts:
            await store.update_attempt(
                new_id, attempt_ids[attempt.attempt_id], status=attempt.status, metadata=attempt.metadata
            )
        await store.update_rollout(new_id, status=original.status)
        seen.add(original.rollout_id)
        stats.rollouts_imported += 1


# -- training-library helpers -------------------------------------------------------------------------------------


def load_sft_dataset(path: str) -> Iterator[Dict[str, Any]]:
    """Records of a ``triplets``/``messages``/``openai-chat`` JSONL export, one at a time."""
    f = _open_text(path, "rt")
    try:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
    finally:
        if f is not sys.stdin:
            f.close()


def to_hf_dataset(
    store: Any,
    *,
    format: str = "messages",
    filter: ExportFilter = ExportFilter(),
    adapter: Any = None,
    page_size: int = 500,
    cache_dir: Optional[str] = None,
) -> Any:
    """A ``datasets.Dataset`` of the store's records in ``format`` (``messages``, ``openai-chat``, ``triplets`` or
    ``parquet`` rows). The store is exported to a temporary file first (streaming, bounded memory), which datasets
    then converts into its Arrow cache (``cache_dir``; default the datasets cache), so the result is memory-mapped.

    In the JSONL formats ``messages`` stays a list of message objects (what chat fine-tuning libraries read); other
    nested values (``tools``, ``input``, ``triplets``) become JSON text, so every row has the same columns.
    Takes a store URL and must be called outside a running event loop (it runs its own). Needs ``datasets``.
    """
    try:
        import datasets
    except ImportError as exc:
        raise ImportError("to_hf_dataset needs the datasets package: pip install datasets") from exc
    if not isinstance(store, str):
        raise TypeError("to_hf_dataset takes a store URL (it opens the store itself)")
    if format not in EXPORT_FORMATS or format == "traces":
        raise ValueError(f"format must be messages, openai-chat, triplets or parquet, got {format!r}")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="agl-export-") as directory:
        target = os.path.join(directory, "rows.parquet" if format == "parquet" else "rows.jsonl")
        _run_export(store, target, format=format, filter=filter, adapter=adapter, page_size=page_size)
        if format == "parquet":
            return datasets.Dataset.from_parquet(target, cache_dir=cache_dir)
        return datasets.Dataset.from_generator(_jsonl_rows, gen_kwargs={"path": target}, cache_dir=cache_dir)


def _jsonl_rows(path: str) -> Iterator[Dict[str, Any]]:
    for record in load_sft_dataset(path):
        # datasets infers one schema for all rows: nested free-form parts travel as JSON text; every messages record
        # has a tools column (null when the call offered none)
        if "messages" in record:
            record.setdefault("tools", None)
        yield {k: json.dumps(v) if isinstance(v, (dict, list)) and k != "messages" else v for k, v in record.items()}


def _run_export(store_url: str, output: str, **kwargs: Any) -> ExportStats:
    import anyio

    from agentlightning.store import open_store

    async def main() -> ExportStats:
        async with open_store(store_url) as store:
            return await export_traces(store, output, **kwargs)

    return anyio.run(main)
