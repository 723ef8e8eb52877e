"""Status transitions (agentlightning.store.transitions): the pure rules, table by table."""

from __future__ import annotations

import attrs
import pytest
from agentlightning.store.errors import InvalidRequestError
from agentlightning.store.transitions import (
    check_attempt_status,
    check_rollout_status,
    evolve,
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


def test_evolve_is_attrs_evolve_with_validation() -> None:
    base = attempt(heartbeat=1.0)
    # a change of unvalidated fields only: copied slot by slot
    beat = evolve(base, last_heartbeat_time=2.0)
    assert beat == attrs.evolve(base, last_heartbeat_time=2.0) and type(beat) is Attempt
    assert beat is not base and base.last_heartbeat_time == 1.0
    assert evolve(base) == base and evolve(base) is not base
    # a change of a validated field: through __init__, so the validator runs
    changed = evolve(base, last_heartbeat_time=2.0, status="succeeded")
    assert changed == attrs.evolve(base, last_heartbeat_time=2.0, status="succeeded")
    with pytest.raises(ValueError, match="status"):
        evolve(base, status="bogus")
    with pytest.raises(TypeError):
        evolve(base, no_such_field=1)
    config = RolloutConfig(max_attempts=2, retry_condition=["timeout"])
    assert evolve(config, max_attempts=3) == RolloutConfig(max_attempts=3, retry_condition=["timeout"])
    with pytest.raises(ValueError, match="max_attempts"):
        evolve(config, max_attempts=0)


def test_evolve_goes_through_init_when_the_class_computes_something() -> None:
    @attrs.define
    class Derived:
        value: int
        double: int = attrs.field(init=False)

        def __attrs_post_init__(self) -> None:
            self.double = 2 * self.value

    @attrs.define
    class Private:
        _secret: int
        plain: int = 0

    assert evolve(Derived(2), value=5).double == 10
    hidden = Private(1)
    assert evolve(hidden, secret=4) == Private(4) and evolve(hidden, plain=3) == Private(1, 3)
