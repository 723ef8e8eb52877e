"""Status transitions (agentlightning.store.transitions): the pure rules, table by table."""

from __future__ import annotations

import pytest
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.transitions import (
    check_attempt_status,
    check_rollout_status,
    new_attempt_id,
    new_resources_id,
    new_rollout_id,
    rollout_status_from_attempt,
    unhealthy_status,
)
from agentlightning.types.core import Attempt, RolloutConfig


def attempt(status: str = "running", seq: int = 1, start: float = 100.0, heartbeat: float | None = None) -> Attempt:
    return Attempt(
        rollout_id="ro-1",
        attempt_id="at-1",
        sequence_id=seq,
        start_time=start,
        status=status,
        last_heartbeat_time=heartbeat,
    )


@pytest.mark.parametrize("status", ["preparing", "running", "succeeded"])
def test_progress_and_success_are_copied(status: str) -> None:
    assert (
        rollout_status_from_attempt(attempt(status), RolloutConfig(max_attempts=3, retry_condition=[status])) == status
    )


@pytest.mark.parametrize("status", ["failed", "timeout", "unresponsive"])
@pytest.mark.parametrize(
    "seq, max_attempts, in_condition, expected",
    [
        (1, 2, True, "requeuing"),
        (2, 2, True, "failed"),
        (1, 2, False, "failed"),
        (1, 1, True, "failed"),
        (4, 5, True, "requeuing"),
    ],
)
def test_retry_only_when_allowed_and_attempts_remain(
    status: str, seq: int, max_attempts: int, in_condition: bool, expected: str
) -> None:
    config = RolloutConfig(max_attempts=max_attempts, retry_condition=[status] if in_condition else [])
    assert rollout_status_from_attempt(attempt(status, seq=seq), config) == expected


def test_unknown_attempt_status_is_refused() -> None:
    bogus = attempt()
    object.__setattr__(bogus, "status", "exploded")
    with pytest.raises(InvalidRequestError, match="exploded"):
        rollout_status_from_attempt(bogus, RolloutConfig())


def test_timeout_wins_over_unresponsive_and_comparisons_are_strict() -> None:
    config = RolloutConfig(timeout_seconds=10, unresponsive_seconds=5)
    assert unhealthy_status(attempt(start=100), config, now=110) == "unresponsive"
    assert unhealthy_status(attempt(start=100), config, now=110.5) == "timeout"
    assert unhealthy_status(attempt(start=100), config, now=105) is None


def test_unresponsive_counts_from_the_last_heartbeat() -> None:
    config = RolloutConfig(unresponsive_seconds=5)
    assert unhealthy_status(attempt(start=100, heartbeat=108), config, now=112) is None
    assert unhealthy_status(attempt(start=100, heartbeat=108), config, now=113.5) == "unresponsive"
    assert unhealthy_status(attempt(start=100), RolloutConfig(), now=1e9) is None


def test_status_checks_name_the_bad_value() -> None:
    assert check_rollout_status("requeuing") == "requeuing"
    assert check_attempt_status("timeout") == "timeout"
    with pytest.raises(InvalidRequestError, match="'queueing'"):
        check_rollout_status("queueing")
    with pytest.raises(InvalidRequestError, match="'cancelled'"):
        check_attempt_status("cancelled")


def test_id_formats_follow_upstream() -> None:
    for make, prefix, length in [
        (new_rollout_id, "ro-", 15),
        (new_attempt_id, "at-", 11),
        (new_resources_id, "rs-", 15),
    ]:
        value = make()
        assert value.startswith(prefix) and len(value) == length
        int(value[3:], 16)
