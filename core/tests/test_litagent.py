"""LitAgent and the rollout decorators: signatures, injection, ProxyLLM handling, errors, pickling."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import agentlightning as agl
import pytest
from agentlightning.litagent import FunctionalLitAgent, LitAgent, is_v0_1_rollout_api
from agentlightning.types import LLM, Attempt, AttemptedRollout, PromptTemplate, ProxyLLM, Rollout


def attempted(rollout_id: str = "ro-1", attempt_id: str = "at-1") -> AttemptedRollout:
    return AttemptedRollout(
        rollout_id=rollout_id,
        input="x",
        start_time=0.0,
        attempt=Attempt(rollout_id=rollout_id, attempt_id=attempt_id, sequence_id=1, start_time=0.0),
    )


LLM_RES = {"main": LLM(endpoint="http://127.0.0.1:9/v1", model="m")}


def test_llm_rollout_keeps_the_function_callable_and_its_metadata() -> None:
    @agl.llm_rollout
    def solve(task: str, llm: LLM) -> float:
        """Solve it."""
        return 0.5

    assert isinstance(solve, FunctionalLitAgent)
    assert solve("t", LLM_RES["main"]) == 0.5
    assert solve.__name__ == "solve"
    assert solve.__doc__ == "Solve it."
    assert list(inspect.signature(solve).parameters) == ["task", "llm"]
    assert not solve.is_async()
    assert solve.training_rollout("t", LLM_RES, attempted()) == 0.5
    assert solve.validation_rollout("t", LLM_RES, attempted()) == 0.5


def test_async_agent_uses_rollout_async_and_refuses_the_sync_path() -> None:
    import anyio

    @agl.rollout
    async def solve(task: str, llm: LLM, rollout: Rollout) -> str:
        return f"{task}:{rollout.rollout_id}:{llm.model}"

    assert solve.is_async()
    assert anyio.run(solve.rollout_async, "t", LLM_RES, attempted()) == "t:ro-1:m"
    with pytest.raises(RuntimeError, match="is asynchronous. Use rollout_async instead"):
        solve.rollout("t", LLM_RES, attempted())


def test_sync_agent_refuses_rollout_async() -> None:
    import anyio

    @agl.rollout
    def solve(task: str, llm: LLM) -> None:
        return None

    with pytest.raises(RuntimeError, match="is synchronous. Use rollout instead"):
        anyio.run(solve.rollout_async, "t", LLM_RES, attempted())


def test_proxy_llm_becomes_a_per_attempt_llm_unless_strip_proxy_is_false() -> None:
    seen: list[Any] = []

    def body(task: str, llm: Any) -> None:
        seen.append(llm)

    proxy = {"p": ProxyLLM(endpoint="http://127.0.0.1:9/v1", model="m", api_key="k", sampling_parameters={"t": 1})}
    agl.llm_rollout(body).rollout("t", proxy, attempted("ro-7", "at-3"))
    assert type(seen[-1]) is LLM
    assert seen[-1].endpoint == "http://127.0.0.1:9/rollout/ro-7/attempt/at-3/v1"
    assert (seen[-1].model, seen[-1].api_key, seen[-1].sampling_parameters) == ("m", "k", {"t": 1})
    agl.llm_rollout(strip_proxy=False)(body).rollout("t", proxy, attempted())
    assert type(seen[-1]) is ProxyLLM
    with pytest.raises(ValueError, match="Rollout is not an AttemptedRollout"):
        agl.llm_rollout(body).rollout("t", proxy, Rollout(rollout_id="r", input="x", start_time=0.0))


def test_prompt_rollout_injects_the_first_prompt_template() -> None:
    @agl.prompt_rollout
    def solve(task: str, prompt_template: PromptTemplate) -> str:
        return prompt_template.format(x=task)

    resources = {
        "a": LLM(endpoint="e", model="m"),
        "p": PromptTemplate(template="<{x}>"),
        "q": PromptTemplate(template="no"),
    }
    assert solve.rollout("t", resources, attempted()) == "<t>"
    assert agl.rollout(solve.__wrapped__).rollout("t", resources, attempted()) == "<t>"


def test_missing_resources_name_what_is_missing() -> None:
    agent = agl.rollout(lambda task, llm: None)
    with pytest.raises(ValueError, match="No LLM resource found"):
        agent.rollout("t", {"p": PromptTemplate(template="x")}, attempted())
    agent = agl.prompt_rollout(lambda task, prompt_template: None)
    with pytest.raises(ValueError, match="No prompt template resource found"):
        agent.rollout("t", LLM_RES, attempted())


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda task: None, "at least 2 parameters"),
        (lambda x, llm: None, "positional parameter called 'task'"),
        (lambda task, other: None, "positional parameter called 'llm'"),
    ],
)
def test_llm_rollout_rejects_wrong_signatures(func: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        agl.llm_rollout(func)


def test_prompt_rollout_rejects_a_missing_prompt_template() -> None:
    with pytest.raises(ValueError, match="positional parameter called 'prompt_template'"):
        agl.prompt_rollout(lambda task, llm: None)


def test_rollout_on_an_unknown_pattern_raises_not_implemented() -> None:
    with pytest.raises(NotImplementedError, match=r"does not match any known agent patterns.*\(task, llm"):
        agl.rollout(lambda task, model: None)


def test_litagent_base_methods_and_references() -> None:
    class Plain(LitAgent[str]):
        pass

    agent = Plain()
    assert not agent.is_async()
    with pytest.raises(NotImplementedError, match="must implement the `rollout` method"):
        agent.training_rollout("t", {}, attempted())
    with pytest.raises(ValueError, match="Trainer has not been set"):
        agent.get_trainer()
    with pytest.raises(ValueError, match="Runner has not been set"):
        agent.get_runner()

    class Holder:
        tracer = "t"

    holder = Holder()
    agent.set_runner(holder)  # type: ignore[arg-type]
    assert agent.get_tracer() == "t"
    del holder
    with pytest.raises(ValueError, match="no longer valid"):
        agent.get_runner()

    class AsyncVal(LitAgent[str]):
        async def validation_rollout_async(self, task: str, resources: Any, rollout: Any) -> None:
            return None

    assert AsyncVal().is_async()
    with pytest.warns(DeprecationWarning, match="trained_agents"):
        Plain(trained_agents="x")


def test_validation_rollout_calls_rollout_not_training_rollout() -> None:
    class Agent(LitAgent[str]):
        def rollout(self, task: str, resources: Any, rollout: Any) -> str:
            return "rollout"

        def training_rollout(self, task: str, resources: Any, rollout: Any) -> str:
            return "training"

    assert Agent().validation_rollout("t", {}, attempted()) == "rollout"  # upstream quirk, kept


def test_decorated_agents_pickle_by_reference_and_local_ones_by_value() -> None:
    assert pickle.loads(pickle.dumps(picklable_agent)) is picklable_agent
    local = agl.rollout(_module_level_body)
    clone = pickle.loads(pickle.dumps(local))
    assert isinstance(clone, FunctionalLitAgent) and clone.rollout("2", LLM_RES, attempted()) == 2.0


def _module_level_body(task: str, llm: LLM) -> float:
    return float(task)


@agl.rollout
def picklable_agent(task: Any, llm: agl.LLM) -> float:
    """Returns the task's value as the reward."""
    return float(task)


def test_is_v0_1_rollout_api() -> None:
    assert is_v0_1_rollout_api(lambda task, rollout_id, resources: None)
    assert not is_v0_1_rollout_api(lambda task, resources, rollout: None)
