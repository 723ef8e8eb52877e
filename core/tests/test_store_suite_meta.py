"""Checks of the store conformance suites themselves: what they export, that subclassing them runs them, and that
they catch broken stores (a missing method, a LIFO queue, a store that ignores its clock)."""

from __future__ import annotations

import inspect
import textwrap
from typing import Dict

import agentlightning.testing.store as suite
import agentlightning.testing.store_suite as legacy
import pytest
from agentlightning.store.base import LightningStore
from agentlightning.testing.store.stateful import ModelRollout, StoreModel, stateful_settings

pytest_plugins = ["pytester"]

PYTEST_ARGS = ("-p", "no:cacheprovider", "-q")


def test_entry_classes_are_exported_and_not_collected_by_import() -> None:
    for name in ("StoreConformance", "EngineStoreConformance", "StorageBackendConformance"):
        cls = getattr(suite, name)
        assert inspect.isclass(cls) and not name.startswith("Test")
    assert issubclass(suite.EngineStoreConformance, suite.StoreConformance)
    assert legacy.make_span is suite.make_span and legacy.StoreStateMachine is suite.StoreStateMachine


def test_no_two_parts_define_the_same_test() -> None:
    """The suites are made of mixins: a test name defined twice would silently hide one of them."""
    seen: Dict[str, str] = {}
    for part in suite.EngineStoreConformance.__mro__:
        for name in vars(part):
            if name.startswith("test_"):
                assert name not in seen, f"{name} is defined by both {seen[name]} and {part.__name__}"
                seen[name] = part.__name__
    assert len(seen) >= 90


def test_stateful_settings_follow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGL_STATEFUL_EXAMPLES", raising=False)
    monkeypatch.delenv("AGL_STATEFUL_STEPS", raising=False)
    assert stateful_settings().max_examples == 200
    monkeypatch.setenv("AGL_STATEFUL_EXAMPLES", "7")
    monkeypatch.setenv("AGL_STATEFUL_STEPS", "3")
    tuned = stateful_settings()
    assert (tuned.max_examples, tuned.stateful_step_count) == (7, 3)


def test_model_requeues_by_retry_rules() -> None:
    model = StoreModel()
    rollout = ModelRollout("ro-1", "queuing", max_attempts=2, retry_condition=("failed",))
    model.rollouts["ro-1"] = rollout
    model.push("ro-1")
    assert model.pop_claimable() is rollout
    model.new_attempt(rollout, "at-1")
    model.update_attempt(rollout, rollout.attempts[0], "failed")
    assert rollout.status == "requeuing" and model.queue == ["ro-1"]
    model.new_attempt(model.pop_claimable() or rollout, "at-2")
    model.update_attempt(rollout, rollout.attempts[1], "failed")
    assert rollout.status == "failed" and model.queue == []


def test_model_scan_marks_overdue_attempts() -> None:
    model = StoreModel(now=100.0)
    slow = ModelRollout("ro-slow", "queuing", 2, ("timeout",), timeout_seconds=3.0, unresponsive_seconds=2.0)
    quiet = ModelRollout("ro-quiet", "queuing", 1, (), unresponsive_seconds=2.0)
    for rollout in (slow, quiet):
        model.rollouts[rollout.rollout_id] = rollout
        model.new_attempt(rollout, f"at-{rollout.rollout_id}")
    model.now = 102.0
    model.scan()
    assert [slow.status, quiet.status] == ["preparing", "preparing"], "at the limit is not past it"
    model.heartbeat(quiet, quiet.attempts[0])
    model.now = 103.5
    model.scan()
    assert slow.attempts[0].status == "timeout" and slow.status == "requeuing", "timeout wins over unresponsive"
    assert quiet.attempts[0].status == "running", "a span 1.5 s ago keeps it responsive"
    model.now = 104.5
    model.scan()
    assert quiet.attempts[0].status == "unresponsive" and quiet.status == "failed"


BROKEN_STORE_MODULE = textwrap.dedent(
    """
    from typing import Any

    import pytest

    from agentlightning.store.base import LightningStore
    from agentlightning.testing.store import StoreConformance


    async def _async_refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("broken toy store")


    BrokenStore = type(
        "BrokenStore",
        (LightningStore,),
        {name: _async_refuse for name in LightningStore.__abstractmethods__},
    )


    class TestBroken(StoreConformance):
        @pytest.fixture
        def store_factory(self):
            async def make(**options: Any) -> LightningStore:
                return BrokenStore()

            return make
    """
)


def test_a_broken_store_fails_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken_store=BROKEN_STORE_MODULE)
    result = pytester.runpytest_inprocess(*PYTEST_ARGS, "-k", "asyncio and (queue or enqueue or fifo)")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 5, result.stdout.str()
    assert outcomes.get("passed", 0) == 0


SUBTLY_BROKEN_MODULE = textwrap.dedent(
    '''
    from typing import Any

    import pytest

    from agentlightning_memory import InMemoryLightningStore
    from agentlightning.testing.store import EngineStoreConformance


    class LifoStore(InMemoryLightningStore):
        """Serves the newest queued rollout first: everything else is the real store."""

        async def dequeue_rollout(self, worker_id=None):
            queued = await self.query_rollouts(status_in=["queuing", "requeuing"])
            if not queued.items:
                return await super().dequeue_rollout(worker_id=worker_id)
            return await self.start_attempt(queued.items[-1].rollout_id, worker_id=worker_id)


    class TestSubtle(EngineStoreConformance):
        @pytest.fixture
        def store_factory(self):
            async def make(**options: Any):
                return {store_class}(**options)

            return make
    '''
)


@pytest.mark.parametrize(("store_class", "must_fail"), [("InMemoryLightningStore", False), ("LifoStore", True)])
def test_suite_tells_a_subtle_bug_from_a_working_store(
    pytester: pytest.Pytester, store_class: str, must_fail: bool
) -> None:
    pytester.makepyfile(test_subtle=SUBTLY_BROKEN_MODULE.replace("{store_class}", store_class))
    result = pytester.runpytest_inprocess(*PYTEST_ARGS, "-k", "fifo or dequeue or requeue")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    if must_fail:
        assert outcomes.get("failed", 0) >= 1, result.stdout.str()
        result.stdout.fnmatch_lines(["*TestSubtle::test_fifo*trio*"])
    else:
        assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) >= 10, result.stdout.str()


CLOCK_IGNORED_MODULE = textwrap.dedent(
    """
    from typing import Any

    import pytest
    from hypothesis import Phase, settings

    from agentlightning_memory import InMemoryLightningStore
    from agentlightning.testing.store import EngineStoreConformance


    class TestClockIgnored(EngineStoreConformance):
        state_machine_settings = settings(
            max_examples=40, stateful_step_count=30, deadline=None, database=None, phases=[Phase.generate]
        )

        @pytest.fixture
        def store_factory(self):
            async def make(**options: Any):
                {drop}
                return InMemoryLightningStore(**options)

            return make
    """
)


@pytest.mark.parametrize(("drop", "must_fail"), [("pass", False), ('options.pop("clock", None)', True)])
def test_the_engine_state_machine_explores_timeouts(pytester: pytest.Pytester, drop: str, must_fail: bool) -> None:
    """A store that ignores the clock never times out; the random sequences must find that."""
    pytester.makepyfile(test_clock=CLOCK_IGNORED_MODULE.replace("{drop}", drop))
    result = pytester.runpytest_inprocess(*PYTEST_ARGS, "-k", "test_random_operation_sequences")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    if must_fail:
        assert outcomes.get("failed", 0) == 1, result.stdout.str()
    else:
        assert outcomes.get("passed", 0) == 1, result.stdout.str()


LEGACY_MODULE = textwrap.dedent(
    """
    from typing import Any

    import pytest

    from agentlightning_memory import InMemoryLightningStore
    from agentlightning.testing.store_suite import *  # noqa: F403


    @pytest.fixture
    def store_factory():
        async def make(**options: Any):
            return InMemoryLightningStore(**options)

        return make
    """
)


def test_the_old_star_import_layout_still_runs_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_legacy=LEGACY_MODULE)
    result = pytester.runpytest_inprocess(*PYTEST_ARGS, "-k", "asyncio and (fifo or enqueue)")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) >= 3, result.stdout.str()
    result.stdout.fnmatch_lines(["*passed*"])


def test_broken_toy_store_is_abstract_complete() -> None:
    """The toy store above must be instantiable, else the suite would fail for the wrong reason."""
    namespace: dict = {}
    exec(compile(BROKEN_STORE_MODULE, "<toy>", "exec"), namespace)  # noqa: S102 - the toy store's source above
    assert isinstance(namespace["BrokenStore"](), LightningStore)
