"""Checks of the store conformance suite itself: it imports, exports what plugins need, and catches broken stores."""

from __future__ import annotations

import inspect
import textwrap

import agentlightning.testing.store_suite as suite
import pytest
from agentlightning.store.base import LightningStore
from agentlightning.testing.store_stateful import StoreModel, StoreStateMachine, stateful_settings

pytest_plugins = ["pytester"]

PLUGIN_ARGS = ("-p", "agentlightning.testing.pytest_plugin", "-p", "no:cacheprovider", "-q")


def test_exports_test_classes_and_fixtures() -> None:
    exported = set(suite.__all__)
    classes = [name for name in exported if name.startswith("Test")]
    assert len(classes) >= 10
    for name in classes:
        assert inspect.isclass(getattr(suite, name)), name
    assert {"store", "make_store", "StoreStateMachine", "TestStoreStateMachine"} <= exported
    assert suite.StoreStateMachine is StoreStateMachine


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
    from agentlightning.testing.store_stateful import ModelRollout

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


BROKEN_STORE_MODULE = textwrap.dedent(
    """
    from typing import Any

    import pytest

    from agentlightning.store.base import LightningStore
    from agentlightning.testing.store_suite import *  # noqa: F403


    def _refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("broken toy store")


    async def _async_refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("broken toy store")


    BrokenStore = type(
        "BrokenStore",
        (LightningStore,),
        {name: _async_refuse for name in LightningStore.__abstractmethods__},
    )


    @pytest.fixture
    def store_factory():
        async def make(**options: Any) -> LightningStore:
            return BrokenStore()

        return make
    """
)


def test_a_broken_store_fails_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken_store=BROKEN_STORE_MODULE)
    result = pytester.runpytest_inprocess(*PLUGIN_ARGS, "-k", "asyncio and (TestStoreQueue or TestStoreRollouts)")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 5, result.stdout.str()
    assert outcomes.get("passed", 0) == 0


SUBTLY_BROKEN_MODULE = textwrap.dedent(
    '''
    from typing import Any

    import pytest

    from agentlightning_memory import InMemoryLightningStore
    from agentlightning.testing.store_suite import *  # noqa: F403


    class LifoStore(InMemoryLightningStore):
        """Serves the newest queued rollout first: everything else is the real store."""

        async def dequeue_rollout(self, worker_id=None):
            queued = await self.query_rollouts(status_in=["queuing", "requeuing"])
            if not queued.items:
                return await super().dequeue_rollout(worker_id=worker_id)
            return await self.start_attempt(queued.items[-1].rollout_id, worker_id=worker_id)


    @pytest.fixture
    def store_factory():
        async def make(**options: Any):
            return {store_class}(**options)

        return make
    '''
)


@pytest.mark.parametrize(("store_class", "must_fail"), [("InMemoryLightningStore", False), ("LifoStore", True)])
def test_suite_tells_a_subtle_bug_from_a_working_store(
    pytester: pytest.Pytester, store_class: str, must_fail: bool
) -> None:
    pytest.importorskip("agentlightning_memory")
    pytester.makepyfile(test_subtle=SUBTLY_BROKEN_MODULE.replace("{store_class}", store_class))
    result = pytester.runpytest_inprocess(*PLUGIN_ARGS, "-k", "asyncio and TestStoreQueue")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    if must_fail:
        assert outcomes.get("failed", 0) >= 1, result.stdout.str()
        result.stdout.fnmatch_lines(["*TestStoreQueue::test_fifo*"])
    else:
        assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) >= 5, result.stdout.str()


def test_broken_toy_store_is_abstract_complete() -> None:
    """The toy store above must be instantiable, else the suite would fail for the wrong reason."""
    namespace: dict = {}
    exec(compile(BROKEN_STORE_MODULE, "<toy>", "exec"), namespace)  # noqa: S102 - the toy store's source above
    assert isinstance(namespace["BrokenStore"](), LightningStore)
