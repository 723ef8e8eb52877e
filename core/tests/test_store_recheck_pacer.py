"""RecheckPacer: a waiter's full re-reads of its pending ids take a bounded share of its time."""

from __future__ import annotations

import pytest
from agentlightning.store import waiting
from agentlightning.store.waiting import PACED_FROM_IDS, RecheckPacer
from hypothesis import given
from hypothesis import strategies as st


def test_a_fresh_pacer_lets_the_first_reread_run() -> None:
    assert RecheckPacer().due(0.0, 10**6)


def test_small_rereads_are_never_paced() -> None:
    pacer = RecheckPacer(share=0.1)
    pacer.record(0.0, 5.0, PACED_FROM_IDS - 1)  # slow, but mostly fixed costs
    assert pacer.pause(PACED_FROM_IDS - 1) == 0.0
    assert pacer.due(5.0, PACED_FROM_IDS - 1)


def test_the_pause_follows_the_cost_per_id_and_the_ids_pending() -> None:
    pacer = RecheckPacer(share=0.1)
    pacer.record(10.0, 10.2, 20_000)  # 10 us per id
    assert pacer.pause(20_000) == pytest.approx(1.8)  # 0.2 s of reading, then 9 times as long without
    assert pacer.pause(2_000) == pytest.approx(0.18)  # fewer ids pending: a shorter pause
    assert not pacer.due(11.9, 20_000)
    assert pacer.due(12.0, 20_000)


def test_the_default_share_is_read_when_the_pacer_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "RECHECK_SHARE", 0.5)
    pacer = RecheckPacer()
    pacer.record(0.0, 1.0, 1_000)
    assert pacer.pause(1_000) == pytest.approx(1.0)


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share must be in"):
        RecheckPacer(share=share)


@given(
    share=st.floats(min_value=0.01, max_value=1.0),
    seconds_per_id=st.floats(min_value=1e-8, max_value=1e-3),
    pending=st.lists(st.integers(min_value=PACED_FROM_IDS, max_value=10**6), min_size=1, max_size=30),
)
def test_rereads_run_when_due_take_at_most_their_share(share: float, seconds_per_id: float, pending: list[int]) -> None:
    """A waiter whose pending ids only shrink, re-reading each time the pacer lets it, spends at most ``share`` of
    its time re-reading, the first read (which has nothing to learn from) aside."""
    pacer = RecheckPacer(share=share)
    now = busy = 0.0
    first = None
    for ids in sorted(pending, reverse=True):
        now += pacer.pause(ids)
        assert pacer.due(now, ids)
        duration = seconds_per_id * ids
        pacer.record(now, now + duration, ids)
        first = duration if first is None else first
        busy += duration
        now += duration
    assert first is not None
    assert busy - first <= share * now * (1 + 1e-9)
