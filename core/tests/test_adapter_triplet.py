"""TraceTree and TracerTraceToTriplet: tree building, repair, LLM-call matching, rewards, token ids."""

from __future__ import annotations

import itertools
import json
from typing import Any, Dict, List, Optional

import pytest
from agentlightning.adapter import RewardMatchPolicy, TracerTraceToTriplet, TraceTree
from agentlightning.tracer.attributes import filter_and_unflatten_attributes
from agentlightning.types.tracer import Span
from hypothesis import given, settings
from hypothesis import strategies as st

_SEQ = itertools.count()


def span(
    span_id: str, name: str, parent: Optional[str], start: Optional[float], end: Optional[float], **attrs: Any
) -> Span:
    return Span.from_attributes(
        rollout_id="ro",
        attempt_id="at",
        sequence_id=next(_SEQ),
        trace_id="t",
        span_id=span_id,
        parent_id=parent,
        name=name,
        attributes=attrs,
        start_time=start,
        end_time=end,
    )


def agent(span_id: str, name: str, parent: Optional[str], start: float, end: float) -> Span:
    return span(span_id, "agent.node", parent, start, end, **{"agent.name": name})


def llm(
    span_id: str,
    parent: Optional[str],
    start: float,
    end: float,
    prompt: List[int],
    response: List[int],
    rid: Optional[str],
) -> Span:
    attrs: Dict[str, Any] = {"prompt_token_ids": prompt, "response_token_ids": response}
    if rid is not None:
        attrs["gen_ai.response.id"] = rid
    return span(span_id, "openai.chat.completion", parent, start, end, **attrs)


def reward(span_id: str, parent: Optional[str], start: float, value: float) -> Span:
    return span(
        span_id,
        "agentlightning.annotation",
        parent,
        start,
        start + 0.1,
        **{"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": value},
    )


def test_tree_children_order_agent_names_and_json() -> None:
    root = span("root", "session", None, 0, 10, **{"agent.name": "main"})
    a = llm("a", "root", 1, 2, [1], [2], "r1")
    b = llm("b", "root", 3, 4, [1], [2], "r2")
    tree = TraceTree.from_spans([b, root, a])
    assert tree.id == "root"
    assert [c.id for c in tree.children] == ["b", "a"]  # input order
    assert tree.names_tuple() == ("session [main]", [("openai.chat.completion", []), ("openai.chat.completion", [])])
    assert tree.find_id("a") is tree.children[1]
    assert tree.to_json()["children"][0]["span"]["span_id"] == "b"
    assert [n.id for n in tree.traverse()] == ["root", "b", "a"]


def test_virtual_root_and_virtual_parent() -> None:
    first = span("x", "first", None, 0, 5)
    second = span("y", "second", None, 5, 9)
    tree = TraceTree.from_spans([first, second])
    assert (tree.id, tree.span.name, tree.start_time, tree.end_time) == ("virtual-root", "virtual-root", 0, 9)
    orphan = span("child", "agent.child", "ghost", 2, 4)
    grandchild = llm("gc", "child", 3, 3.5, [1], [2], "r")
    tree = TraceTree.from_spans([grandchild, orphan])
    assert tree.id == "ghost" and tree.span.name == "agentlightning.virtual"
    assert (tree.start_time, tree.end_time, tree.span.rollout_id) == (2, 4, "ro")
    assert tree.children[0].children[0].id == "gc"


def test_malformed_inputs_give_clear_errors_or_results() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TraceTree.from_spans([])
    cycle = [span("a", "n", "b", 0, 1), span("b", "n", "a", 0, 1)]
    with pytest.raises(ValueError, match="cycle"):
        TraceTree.from_spans(cycle)
    with pytest.raises(ValueError, match="cycle"):
        TraceTree.from_spans([span("r", "root", None, 0, 1), span("s", "self", "s", 0, 1)])
    adapter = TracerTraceToTriplet()
    assert adapter.adapt([]) == []
    assert adapter.adapt([span("r", "no llm here", None, None, None)]) == []
    with pytest.raises(TypeError, match="span 0"):
        adapter.adapt(["not a span"])  # type: ignore[list-item]
    # out of order, missing parents, missing times: still triplets
    spans = [reward("rw", "gone", 5, 1.0), llm("l", "gone2", None, None, [1], [2], "r")]  # type: ignore[arg-type]
    (triplet,) = adapter.adapt(spans)
    assert triplet.prompt["token_ids"] == [1]


def test_repair_moves_llm_under_enclosing_agent() -> None:
    spans = [
        span("root", "session", None, 0, 10),
        agent("ag", "planner", "root", 1, 9),
        llm("l", "root", 2, 3, [4], [2], "r"),
    ]
    tree = TraceTree.from_spans(spans)
    tree.repair_hierarchy()
    assert [c.id for c in tree.children] == ["ag"]
    assert [c.id for c in tree.find_id("ag").children] == ["l"]  # type: ignore[union-attr]
    spans.append(reward("rw", "ag", 4, 0.3))
    (triplet,) = TracerTraceToTriplet(agent_match="planner").adapt(spans)
    assert (triplet.metadata["agent_name"], triplet.reward) == ("planner", 0.3)
    assert TracerTraceToTriplet(agent_match="planner", repair_hierarchy=False).adapt(spans) == []


def test_dedup_skip_empty_and_final_reward() -> None:
    spans = [
        span("root", "session", None, 0, 10),
        agent("ag", "primary", "root", 1, 9),
        llm("l1", "ag", 2, 3, [1, 2], [3, 4], "resp-1"),
        llm("l2", "ag", 3.2, 3.8, [9], [8], "resp-1"),
        llm("l3", "ag", 4, 5, [], [], "resp-2"),
        reward("rw", "ag", 6, 0.5),
    ]
    tree = TraceTree.from_spans(spans)
    (t,) = tree.to_trajectory(agent_match="primary", _skip_empty_token_spans=True)
    assert (t.prompt["token_ids"], t.response["token_ids"], t.reward) == ([1, 2], [3, 4], 0.5)
    assert (t.metadata["response_id"], t.metadata["agent_name"]) == ("resp-1", "primary")
    (t,) = tree.to_trajectory(agent_match="primary", _skip_empty_token_spans=True, final_reward=1.0)
    assert t.reward == 1.0
    # without skipping, the empty call is kept and takes the reward (it is the latest before it)
    kept = tree.to_trajectory(agent_match="primary")
    assert [x.metadata["response_id"] for x in kept] == ["resp-1", "resp-2"]
    assert [x.reward for x in kept] == [None, 0.5]
    assert len(tree.to_trajectory(dedup_llm_call=False)) == 2  # response ids are always de-duplicated


def test_dedup_across_agents_keeps_the_first() -> None:
    spans = [
        span("root", "session", None, 0, 10),
        agent("a", "vision-a", "root", 0.5, 5),
        agent("b", "vision-b", "root", 5.1, 9.5),
        llm("la", "a", 1, 2, [1], [2], "shared"),
        llm("lb", "b", 6, 7, [3], [4], "shared"),
    ]
    found = TraceTree.from_spans(spans).find_llm_calls(
        llm_call_match=r"openai\.chat\.completion",
        agent_match=None,
        within_matching_subtree="*",
        within_reward=False,
        within_llm_call=False,
        existing_llm_call_response_ids=set(),
    )
    assert [(n.id, name) for n, name in found] == [("la", "vision-a")]


def test_llm_calls_inside_rewards_and_llm_calls_are_excluded() -> None:
    grader = span(
        "g", "agentlightning.operation", "root", 5, 8, **{"agentlightning.operation.name": "agentlightning.reward"}
    )
    spans = [
        span("root", "session", None, 0, 10),
        llm("outer", "root", 1, 4, [1], [2], "o"),
        llm("inner-no-id", "outer", 2, 3, [5], [6], None),  # e.g. an http span nested by a wrapper: dropped
        grader,
        llm("judge", "g", 6, 7, [7], [8], "j"),
    ]
    adapter = TracerTraceToTriplet(repair_hierarchy=False)
    assert [t.metadata["response_id"] for t in adapter.adapt(spans)] == ["o"]
    loose = TracerTraceToTriplet(repair_hierarchy=False, exclude_llm_call_in_reward=False)
    assert [t.metadata["response_id"] for t in loose.adapt(spans)] == ["o", "j"]


def test_first_occurrence_vs_first_sibling() -> None:
    spans = [
        span("root", "session", None, 0, 10),
        agent("a1", "sib", "root", 1, 9),
        agent("a2", "sib", "root", 1, 9),
        llm("l1", "a1", 2, 3, [1], [2], "r1"),
        reward("rw", "a1", 3.5, 0.8),
        llm("l2", "a2", 3.1, 3.2, [3], [4], "r2"),
    ]
    sibling = TracerTraceToTriplet(agent_match="sib", reward_match=RewardMatchPolicy.FIRST_SIBLING).adapt(spans)
    assert [(t.metadata["response_id"], t.reward) for t in sibling] == [("r1", 0.8), ("r2", None)]
    occurrence = TracerTraceToTriplet(agent_match="sib", reward_match="first_occurrence").adapt(spans)
    assert [(t.metadata["response_id"], t.reward) for t in occurrence] == [("r1", None), ("r2", 0.8)]


def test_each_reward_goes_to_a_different_earlier_call() -> None:
    spans = [
        span("root", "session", None, 0, 20),
        llm("l1", "root", 1, 2, [1], [1], "a"),
        llm("l2", "root", 3, 4, [2], [2], "b"),
        reward("r1", "root", 5, 0.1),
        reward("r2", "root", 6, 0.2),
        reward("r3", "root", 7, 0.3),  # nothing left: dropped
        llm("l3", "root", 8, 9, [3], [3], "c"),
    ]
    triplets = TracerTraceToTriplet(repair_hierarchy=False).adapt(spans)
    assert [t.reward for t in triplets] == [0.2, 0.1, None]


def multimodal(rid: str, with_filter: bool) -> Dict[str, Any]:
    content = json.dumps(
        [{"type": "text", "text": "How many?"}, {"type": "image_url", "image_url": {"url": f"file:///{rid}.png"}}]
    )
    attrs: Dict[str, Any] = {
        "gen_ai.request.model": "vl",
        "gen_ai.request.temperature": 0.0,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": content,
        "gen_ai.response.id": rid,
        "gen_ai.response.model": "vl-1",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Ten.",
        "prompt_token_ids": (5, 6, 7),
        "response_token_ids": (8, 9),
        "logprobs.content": json.dumps([{"token": "T", "logprob": -0.1}]),
    }
    if with_filter:
        attrs["gen_ai.prompt.prompt_filter_results"] = "[]"
    return attrs


def test_multimodal_payloads_and_metadata() -> None:
    first = span("l1", "openai.chat.completion", "ag", 1, 2, **multimodal("q", False))
    second = span("l2", "openai.chat.completion", "ag", 3, 4, **multimodal("g", True))
    spans = [
        span("root", "s", None, 0, 10),
        agent("ag", "vision", "root", 0.5, 9.5),
        first,
        second,
        reward("rw", "ag", 5, 0.7),
    ]
    t1, t2 = TracerTraceToTriplet(agent_match="vision").adapt(spans)
    assert t1.prompt["token_ids"] == [5, 6, 7] and t1.response["token_ids"] == [8, 9]
    assert t1.prompt["raw_content"] == filter_and_unflatten_attributes(first.attributes, "gen_ai.prompt")
    assert t1.prompt["image_urls"] == ["file:///q.png"]
    assert t2.prompt["raw_content"]["0"]["role"] == "user"  # mixed keys stay a dict
    assert t2.prompt["image_urls"] == ["file:///g.png"]
    assert t1.metadata["request"] == {"model": "vl", "temperature": 0.0}
    assert t1.metadata["response"] == {"id": "q", "model": "vl-1"}
    assert t1.response["raw_content"] == [{"role": "assistant", "content": "Ten."}]
    assert t1.response["logprobs"] == [{"token": "T", "logprob": -0.1}]
    assert (t1.reward, t2.reward) == (None, 0.7)


def test_extract_image_urls_edge_cases() -> None:
    extract = TraceTree.extract_prompt_image_urls
    part = lambda url: {"type": "image_url", "image_url": {"url": url}}  # noqa: E731
    assert extract({"1": {"content": [part("b")]}, "0": {"content": [part("a")]}}) == ["a", "b"]
    assert extract({"role": "user", "content": [part("c")]}) == ["c"]
    assert extract([{"content": "not json"}, {"role": "system"}, {"content": json.dumps([{"type": "text"}])}]) == []
    assert extract("unexpected") == []


def test_operation_style_llm_spans() -> None:
    attrs = {
        "agentlightning.operation.input.messages.0.role": "user",
        "agentlightning.operation.input.messages.0.content": "hi",
        "agentlightning.operation.input.model": "m",
        "agentlightning.operation.output.id": "op-1",
        "agentlightning.operation.output.prompt_token_ids": [1, 2],
        "agentlightning.operation.output.choices.0.token_ids": [3],
        "agentlightning.operation.output.choices.0.message.content": "yo",
    }
    (t,) = TracerTraceToTriplet(llm_call_match="llm").adapt([span("x", "llm", None, 0, 1, **attrs)])
    assert (t.prompt["token_ids"], t.response["token_ids"], t.metadata["response_id"]) == ([1, 2], [3], "op-1")
    assert t.prompt["raw_content"] == [{"role": "user", "content": "hi"}]
    assert t.metadata["request"] == {"model": "m"}


def test_non_int_token_ids_are_ignored() -> None:
    s = span("x", "openai.chat.completion", None, 0, 1, prompt_token_ids=["a"], response_token_ids=[1])
    (t,) = TracerTraceToTriplet().adapt([s])
    assert t.prompt["token_ids"] == [] and t.response["token_ids"] == [1]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_forests_never_crash(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 25))
    spans = []
    for i in range(n):
        parent = data.draw(st.one_of(st.none(), st.integers(0, n + 2).map(lambda p: f"s{p}")))
        if parent == f"s{i}":
            parent = None
        start = data.draw(st.one_of(st.none(), st.floats(0, 10)))
        name = data.draw(st.sampled_from(["openai.chat.completion", "agent.node", "agentlightning.annotation", "x"]))
        attrs: Dict[str, Any] = {}
        if name == "openai.chat.completion":
            attrs = {
                "gen_ai.response.id": f"r{data.draw(st.integers(0, 5))}",
                "prompt_token_ids": [1],
                "response_token_ids": [2],
            }
        elif name == "agentlightning.annotation":
            attrs = {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": 1.0}
        elif name == "agent.node":
            attrs = {"agent.name": "a"}
        spans.append(span(f"s{i}", name, parent, start, None if start is None else start + 1, **attrs))
    try:
        triplets = TracerTraceToTriplet(agent_match=data.draw(st.sampled_from([None, "a"]))).adapt(spans)
    except ValueError as exc:
        assert "cycle" in str(exc)
        return
    ids = [t.metadata["response_id"] for t in triplets]
    assert len(ids) == len(set(ids))
