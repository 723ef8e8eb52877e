"""The policy server's batcher: the next batch generates while the last one's spans are written, and no request is
answered before its span is recorded."""

from __future__ import annotations

import asyncio
from typing import Any, List, Tuple

import pytest
from agentlightning_torch.policy import build_policy
from agentlightning_torch.server.batcher import Batcher, Pending


@pytest.fixture(scope="module")
def policy() -> Any:
    return build_policy(alphabet="abcdAB", d_model=16, n_layers=1, n_heads=2, max_len=32, seed=3)


def _request(policy: Any, text: str, rollout_id: str) -> Pending:
    params = {"max_tokens": 3, "temperature": 1.0, "top_p": 1.0, "n": 1}
    messages = [{"role": "user", "content": text}]
    return Pending(
        messages=messages,
        prompt_ids=policy.encode_chat(messages),
        params=params,
        model="m",
        rollout_id=rollout_id,
        attempt_id="at-1",
        future=asyncio.get_running_loop().create_future(),
    )


async def _until(condition: Any, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not reached in {timeout} s")


def test_the_next_batch_generates_while_the_last_is_recorded_and_answers_wait_for_their_spans(policy: Any) -> None:
    asyncio.run(_overlap(policy))


async def _overlap(policy: Any) -> None:
    release = asyncio.Event()
    recorded: List[List[str]] = []

    async def recorder(entries: List[Tuple[Any, Any, Any]]) -> List[int]:
        recorded.append([rollout_id for _, rollout_id, _ in entries])
        if len(recorded) == 1:
            await release.wait()  # the first batch's store write is slow
        return [len(recorded)] * len(entries)

    batcher = Batcher(policy, recorder, version=lambda: 7, wait_s=0.0)
    serving = asyncio.ensure_future(batcher.run())
    try:
        first = asyncio.ensure_future(batcher.submit(_request(policy, "ab", "ro-1")))
        await _until(lambda: recorded == [["ro-1"]])
        second = asyncio.ensure_future(batcher.submit(_request(policy, "cd", "ro-2")))
        await _until(lambda: batcher.batches == 2)  # generated while the first batch is still being recorded
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()  # neither answered before its span is stored
        assert recorded == [["ro-1"]]  # batches are recorded one at a time, in order
        release.set()
        call, seq = await first
        assert (seq, call.policy_version) == (1, 7)
        assert (await second)[1] == 2
        assert recorded == [["ro-1"], ["ro-2"]]
    finally:
        serving.cancel()


def test_a_failed_recording_fails_its_requests_and_serving_goes_on(policy: Any) -> None:
    asyncio.run(_failed_recording(policy))


async def _failed_recording(policy: Any) -> None:
    calls = 0

    async def recorder(entries: List[Tuple[Any, Any, Any]]) -> List[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return [1] * len(entries)

    batcher = Batcher(policy, recorder, version=lambda: 1, wait_s=0.0)
    serving = asyncio.ensure_future(batcher.run())
    try:
        with pytest.raises(OSError, match="disk full"):
            await batcher.submit(_request(policy, "ab", "ro-1"))
        assert (await batcher.submit(_request(policy, "ab", "ro-2")))[1] == 1
    finally:
        serving.cancel()
