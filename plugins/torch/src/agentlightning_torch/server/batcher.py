"""Collects concurrent chat requests into one batched ``Policy.generate`` call, then records them in one go while
the next batch generates."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .spans import ServedCall

__all__ = ["Batcher", "Pending"]

logger = logging.getLogger(__name__)


class Pending:
    """One request waiting for its answers."""

    __slots__ = ("attempt_id", "future", "messages", "model", "params", "prompt_ids", "rollout_id", "start")

    def __init__(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        prompt_ids: List[int],
        params: Dict[str, Any],
        model: str,
        rollout_id: Optional[str],
        attempt_id: Optional[str],
        future: asyncio.Future[Tuple[ServedCall, int]],
    ) -> None:
        self.messages = messages
        self.prompt_ids = prompt_ids
        self.params = params
        self.model = model
        self.rollout_id = rollout_id
        self.attempt_id = attempt_id
        self.future = future
        self.start = time.time()


# records a batch of calls and returns their sequence ids (0 for calls outside any rollout)
Recorder = Callable[[List[Tuple[ServedCall, Optional[str], Optional[str]]]], Awaitable[List[int]]]


class Batcher:
    """Runs in the server's event loop: waits ``wait_s`` after the first request for more, up to ``max_batch``."""

    def __init__(
        self,
        policy: Any,
        recorder: Optional[Recorder],
        *,
        version: Callable[[], int],
        max_batch: int = 256,
        wait_s: float = 0.003,
    ) -> None:
        self.policy = policy
        self.recorder = recorder
        self.version = version
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.batches = 0
        self.requests = 0
        self.generate_seconds = 0.0  # in Policy.generate (the forward passes)
        self.record_seconds = 0.0  # writing the calls' spans to the store

    async def submit(self, item: Pending) -> Tuple[ServedCall, int]:
        await self.queue.put(item)
        return await item.future

    async def run(self) -> None:
        """Collect a batch, generate, and hand its recording to a task, so that the next batch generates while this
        one's spans are written. Each request is answered once its span is in the store (the runner then finishes
        the rollout, and the algorithm reads the span); batches are recorded one at a time, in order."""
        recording: Optional[asyncio.Future[None]] = None
        try:
            while True:
                batch = await self._collect()
                try:
                    calls = await self._generate(batch)
                except Exception as exc:  # answer every waiter, keep serving
                    logger.exception("policy server: batch of %d requests failed", len(batch))
                    self._fail(batch, exc)
                    continue
                if recording is not None:
                    await recording
                recording = asyncio.ensure_future(self._record_and_answer(batch, calls))
        finally:
            if recording is not None and not recording.done():
                recording.cancel()

    async def _collect(self) -> List[Pending]:
        first = await self.queue.get()
        batch = [first]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                while len(batch) < self.max_batch and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), timeout))
            except asyncio.TimeoutError:
                break
        return batch

    @staticmethod
    def _fail(batch: List[Pending], exc: BaseException) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    async def _generate(self, batch: List[Pending]) -> List[Tuple[Pending, ServedCall]]:
        groups: Dict[Tuple[int, float, float, int], List[Pending]] = {}
        for item in batch:
            p = item.params
            key = (int(p["max_tokens"]), float(p["temperature"]), float(p["top_p"]), int(p["n"]))
            groups.setdefault(key, []).append(item)
        calls: List[Tuple[Pending, ServedCall]] = []
        for (max_tokens, temperature, top_p, n), items in groups.items():
            version = self.version()
            began = time.perf_counter()
            results = await asyncio.to_thread(
                self.policy.generate,
                [i.prompt_ids for i in items],
                n=n,
                max_new_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
            )
            self.generate_seconds += time.perf_counter() - began
            now = time.time()
            for item, samples in zip(items, results, strict=True):
                choices = [
                    {
                        "index": j,
                        "text": self.policy.decode(s.token_ids),
                        "token_ids": s.token_ids,
                        "finish_reason": s.finish_reason,
                    }
                    for j, s in enumerate(samples)
                ]
                call = ServedCall(
                    response_id=f"chatcmpl-{uuid.uuid4().hex}",
                    model=item.model,
                    messages=item.messages,
                    params=item.params,
                    prompt_token_ids=item.prompt_ids,
                    choices=choices,
                    policy_version=version,
                    start_time=item.start,
                    end_time=now,
                )
                calls.append((item, call))
        self.batches += 1
        self.requests += len(batch)
        return calls

    async def _record_and_answer(self, batch: List[Pending], calls: List[Tuple[Pending, ServedCall]]) -> None:
        try:
            seqs = [0] * len(calls)
            if self.recorder is not None:
                began = time.perf_counter()
                seqs = await self.recorder([(call, item.rollout_id, item.attempt_id) for item, call in calls])
                self.record_seconds += time.perf_counter() - began
        except Exception as exc:  # the spans are not stored: fail the requests rather than leave rollouts without them
            logger.exception("policy server: recording a batch of %d calls failed", len(calls))
            self._fail(batch, exc)
            return
        for (item, call), seq in zip(calls, seqs, strict=True):
            if not item.future.done():
                item.future.set_result((call, seq))
