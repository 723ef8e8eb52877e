"""Spans to triplets: build the trace tree, find the LLM calls, attach rewards (upstream's ``TracerTraceToTriplet``)."""

from __future__ import annotations

import bisect
import enum
import json
import logging
import re
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import attrs

from agentlightning.emitter.reward import get_reward_value
from agentlightning.semconv import AGL_OPERATION, AGL_REWARD, AGL_VIRTUAL, LightningSpanAttributes
from agentlightning.tracer.attributes import filter_and_unflatten_attributes
from agentlightning.types.core import Triplet
from agentlightning.types.tracer import Span

from .base import TraceAdapter, as_spans

__all__ = [
    "RewardMatchPolicy",
    "Transition",
    "TraceTree",
    "TraceToTripletBase",
    "TracerTraceToTriplet",
    "DEFAULT_LLM_CALL_MATCH",
    "TOKEN_IDS_NOTE",
    "token_ids_note",
]

logger = logging.getLogger(__name__)

DEFAULT_LLM_CALL_MATCH = (
    r"openai\.chat\.completion|openai\.completion$|openai\.responses$|anthropic\.messages$"
    r"|google_genai\.generate_content$"
)
"""LLM spans of every instrumented client (openai chat and text completions and Responses, anthropic, google-genai;
LiteLLM SDK calls are ``openai.chat.completion`` / ``openai.completion`` spans)."""
TOKEN_IDS_NOTE = "token_ids"  # noqa: S105 - a metadata key
"""Triplet metadata key: why the triplet has no token ids (absent when it has them)."""


def token_ids_note(attributes: Dict[str, Any]) -> str:
    """Why an LLM span has no token ids, and how to get them."""
    if attributes.get("agentlightning.token_ids") == "none in protocol":
        kind = attributes.get("gen_ai.system") or "this"
        return (
            f"missing: the {kind} protocol carries no token ids; point the agent at the LLM proxy "
            "(agentlightning-litellm's LLMProxy), which records them from a vLLM backend"
        )
    return (
        "missing: the backend returned none; with vLLM pass extra_body={'return_token_ids': True} "
        "(chat and text completions) or point the agent at the LLM proxy"
    )


VIRTUAL_ROOT_ID = "virtual-root"


class RewardMatchPolicy(str, enum.Enum):
    """How reward spans are assigned to LLM calls.

    ``first_occurrence``: in start-time order, a reward goes to the latest earlier LLM call (ended before the reward
    started) that has no reward yet. ``first_sibling``: the same, among the reward's siblings only.
    """

    FIRST_OCCURRENCE = "first_occurrence"
    FIRST_SIBLING = "first_sibling"


@attrs.define(kw_only=True)
class Transition:
    """A (state, action, reward) step, for algorithms that want transitions rather than triplets."""

    state: List[int]
    action: List[int]
    response_id: Optional[str] = None
    agent_name: Optional[str] = None
    reward: Optional[float] = None


def _start(node: TraceTree) -> float:
    return node.start_time if node.start_time is not None else float("-inf")


def _end(node: TraceTree) -> float:
    return node.end_time if node.end_time is not None else float("inf")


def _unflatten_prefix(attributes: Dict[str, Any], prefix: str) -> Any:
    try:
        return filter_and_unflatten_attributes(attributes, prefix)
    except ValueError:
        return attributes.get(prefix)


def _int_list(value: Any, what: str) -> Optional[List[int]]:
    if not isinstance(value, (list, tuple)):
        return None
    if not value or set(map(type, value)) == {int}:  # map/set run in C: token lists are long
        return list(value)
    logger.warning("Ignoring %s: not a list of ints", what)
    return None


class TraceTree:
    """A span and its children (children keep the input order)."""

    def __init__(self, id: str, span: Span, children: Optional[List[TraceTree]] = None) -> None:
        self.id = id
        self.span = span
        self.children: List[TraceTree] = children if children is not None else []

    def __repr__(self) -> str:
        return f"TraceTree({self.id!r}, {self.span.name!r}, {len(self.children)} children)"

    @property
    def start_time(self) -> Optional[float]:
        return self.span.start_time

    @property
    def end_time(self) -> Optional[float]:
        return self.span.end_time

    def add_child(self, child: TraceTree) -> None:
        self.children.append(child)

    def traverse(self) -> List[TraceTree]:
        """Every node, pre-order depth first."""
        out: List[TraceTree] = []
        stack = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def find_id(self, id: str) -> Optional[TraceTree]:
        return next((node for node in self.traverse() if node.id == id), None)

    def names_tuple(self) -> Tuple[str, List[Any]]:
        agent = self.agent_name()
        label = f"{self.span.name} [{agent}]" if agent else self.span.name
        return (label, [child.names_tuple() for child in self.children])

    def to_json(self) -> Dict[str, Any]:
        from agentlightning.types.serialization import to_dict

        return {"id": self.id, "span": to_dict(self.span), "children": [child.to_json() for child in self.children]}

    def visualize(self, filename: str, interested_span_match: Optional[str] = None) -> None:
        """Render the tree with graphviz (``pip install graphviz``) to ``filename``.png."""
        try:
            import graphviz
        except ImportError as exc:
            raise ImportError("TraceTree.visualize needs the graphviz package: pip install graphviz") from exc
        dot = graphviz.Digraph(comment="Trace tree")
        for node in self.traverse():
            if interested_span_match is None or re.search(interested_span_match, node.span.name):
                dot.node(node.id, node.names_tuple()[0])
            for child in node.children:
                dot.edge(node.id, child.id)
        dot.render(filename, format="png", cleanup=True)

    # -- building --------------------------------------------------------------------------------------------

    @classmethod
    def from_spans(cls, spans: Sequence[Span]) -> TraceTree:
        """Build the tree. Missing parents become ``agentlightning.virtual`` nodes; several roots get a virtual root.

        Raises ValueError for no spans, or spans whose parents form a cycle.
        """
        if not spans:
            raise ValueError("TraceTree.from_spans needs at least one span")
        nodes: Dict[str, TraceTree] = {}
        for span in spans:
            if span.span_id in nodes:
                logger.warning("Span id %s appears twice; the first span is kept", span.span_id)
                continue
            nodes[span.span_id] = cls(span.span_id, span)
        roots: List[TraceTree] = []
        virtual: Dict[str, TraceTree] = {}
        for node in list(nodes.values()):
            parent_id = node.span.parent_id
            if parent_id is None:
                roots.append(node)
            elif parent_id in nodes:
                nodes[parent_id].add_child(node)
            else:
                parent = virtual.get(parent_id)
                if parent is None:
                    parent = cls(parent_id, node.span)  # placeholder span, replaced below
                    virtual[parent_id] = parent
                    roots.append(parent)
                parent.add_child(node)
        for parent_id, parent in virtual.items():
            first = parent.children[0].span
            starts = [c.start_time for c in parent.children if c.start_time is not None]
            ends = [c.end_time for c in parent.children if c.end_time is not None]
            parent.span = Span.from_attributes(
                attributes={},
                rollout_id=first.rollout_id,
                attempt_id=first.attempt_id,
                sequence_id=first.sequence_id,
                trace_id=first.trace_id,
                span_id=parent_id,
                name=AGL_VIRTUAL,
                start_time=min(starts) if starts else None,
                end_time=max(ends) if ends else None,
            )
        reachable = sum(len(root.traverse()) for root in roots) - len(virtual)
        if reachable < len(nodes):
            seen = {n.id for root in roots for n in root.traverse()}
            cyclic = sorted(set(nodes) - seen)
            raise ValueError(f"spans {cyclic[:10]} are their own ancestors (a parent cycle); cannot build a tree")
        if len(roots) == 1:
            return roots[0]
        starts = [r.start_time for r in roots if r.start_time is not None]
        ends = [r.end_time for r in roots if r.end_time is not None]
        first = roots[0].span
        root_span = Span.from_attributes(
            attributes={},
            rollout_id=first.rollout_id,
            attempt_id=first.attempt_id,
            sequence_id=first.sequence_id,
            trace_id=first.trace_id,
            name=VIRTUAL_ROOT_ID,
            start_time=min(starts) if starts else None,
            end_time=max(ends) if ends else None,
        )
        return cls(VIRTUAL_ROOT_ID, root_span, roots)

    # -- node facts ------------------------------------------------------------------------------------------

    def agent_name(self) -> Optional[str]:
        """The agent this span stands for, as recorded by the frameworks upstream knows; None when not an agent."""
        attrs_ = self.span.attributes
        name = attrs_.get("agent.name")
        if name is not None:
            return str(name)
        if attrs_.get("agentops.span.kind") == "agent" and attrs_.get("operation.name") is not None:
            return str(attrs_["operation.name"])
        for key in ("recipient_agent_type", "langchain.chain.type", "executor.id"):
            if attrs_.get(key) is not None:
                return str(attrs_[key])
        if attrs_.get("type") == "agent" and attrs_.get("agentlightning.operation.input.name") is not None:
            return str(attrs_["agentlightning.operation.input.name"])
        if self.span.name.startswith("langchain.Chain.") and attrs_.get("lc_name") is not None:
            return str(attrs_["lc_name"])
        return None

    def maybe_reward_dict(self) -> Dict[str, Any]:
        value = get_reward_value(self.span)
        return {"type": "reward", "value": value} if value is not None else {}

    def is_reward_span(self) -> bool:
        if self.maybe_reward_dict():
            return True
        return (
            self.span.name == AGL_OPERATION
            and self.span.attributes.get(LightningSpanAttributes.OPERATION_NAME) == AGL_REWARD
        )

    def response_id(self) -> Optional[str]:
        for key in ("gen_ai.response.id", "agentlightning.operation.output.id"):
            value = self.span.attributes.get(key)
            if isinstance(value, str):
                return value
        return None

    # -- repair ----------------------------------------------------------------------------------------------

    def repair_hierarchy(self) -> None:
        """Move children that a sibling's subtree node encloses in time (tightest fit) under that node.

        Frameworks often emit LLM spans at the root; this re-parents them under the agent span that ran them.
        Only the first level with several children is repaired (upstream's behaviour).
        """
        node = self
        while len(node.children) == 1:
            node = node.children[0]
        if len(node.children) < 2:
            return
        candidates = sorted(
            (
                (n.start_time, n.end_time, i, n)
                for i, n in enumerate(node.traverse()[1:])
                if n.start_time is not None and n.end_time is not None
            ),
            key=lambda c: c[0],
        )
        starts = [c[0] for c in candidates]
        for child in list(node.children):
            if len(node.children) < 2:
                break
            c_start, c_end = child.start_time, child.end_time
            if c_start is None or c_end is None:
                continue
            excluded: Optional[Set[int]] = None
            best: Optional[TraceTree] = None
            best_slack = float("inf")
            for start, end, _, candidate in candidates[: bisect.bisect_right(starts, c_start)]:
                if end < c_end:
                    continue
                slack = (end - c_end) + (c_start - start)
                if not 0 < slack < best_slack:
                    continue
                if excluded is None:
                    excluded = {id(n) for n in child.traverse()}
                if id(candidate) not in excluded:
                    best, best_slack = candidate, slack
            if best is not None:
                node.children.remove(child)
                best.add_child(child)

    # -- LLM calls and triplets ------------------------------------------------------------------------------

    def find_llm_calls(
        self,
        *,
        llm_call_match: str,
        agent_match: Optional[str],
        within_matching_subtree: Optional[str] = None,
        within_reward: Optional[bool] = None,
        within_llm_call: Optional[bool] = None,
        existing_llm_call_response_ids: Optional[Set[str]] = None,
    ) -> List[Tuple[TraceTree, str]]:
        """LLM-call nodes (pre-order) with the agent they ran under; see the module docs for the rules."""
        seen = existing_llm_call_response_ids if existing_llm_call_response_ids is not None else set()
        llm_re, agent_re = re.compile(llm_call_match), re.compile(agent_match) if agent_match else None
        found: List[Tuple[TraceTree, str]] = []
        stack: List[Tuple[TraceTree, Optional[str], Optional[bool], Optional[bool]]] = [
            (self, within_matching_subtree, within_reward, within_llm_call)
        ]
        while stack:
            node, subtree, in_reward, in_llm = stack.pop()
            if subtree is not None and in_reward is not True and llm_re.search(node.span.name):
                response_id = node.response_id()
                duplicate = response_id is not None and response_id in seen
                if not duplicate and not (response_id is None and in_llm is True):
                    found.append((node, subtree))
                    if response_id is not None:
                        seen.add(response_id)
                    if in_llm is not None:
                        in_llm = True
            agent = node.agent_name()
            if agent is not None:
                subtree = agent if agent_re is None or agent_re.search(agent) else None
            if in_reward is not None and node.is_reward_span():
                in_reward = True
            for child in reversed(node.children):
                stack.append((child, subtree, in_reward, in_llm))
        return found

    @staticmethod
    def extract_prompt_image_urls(raw: Any) -> List[str]:
        """Image URLs of ``image_url`` content parts, in message order."""
        numbered = sorted((k for k in raw if str(k).isdigit()), key=int) if isinstance(raw, dict) else []
        if numbered:  # numbered messages, possibly beside other keys (e.g. prompt_filter_results)
            messages = [raw[k] for k in numbered]
        elif isinstance(raw, dict):
            messages = [raw]
        elif isinstance(raw, list):
            messages = raw
        else:
            return []
        urls: List[str] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                try:
                    content = json.loads(content)
                except ValueError:
                    continue
            if isinstance(content, dict) and content and all(str(k).isdigit() for k in content):
                content = [content[k] for k in sorted(content, key=int)]
            if not isinstance(content, list):
                continue
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    image = part.get("image_url")
                    url = image.get("url") if isinstance(image, dict) else image
                    if isinstance(url, str):
                        urls.append(url)
        return urls

    def span_to_triplet(self, span: Span, agent_name: str) -> Triplet:
        """One LLM span as a triplet: token ids, raw prompt/completion, request/response metadata; no reward."""
        a = span.attributes

        def first_ids(keys: Sequence[str]) -> List[int]:
            for key in keys:
                ids = _int_list(a.get(key), key)
                if ids is not None:
                    return ids
            return []

        def first_unflattened(prefixes: Sequence[str]) -> Any:
            for prefix in prefixes:
                value = _unflatten_prefix(a, prefix)
                if value:
                    return value
            return None

        raw_prompt = _unflatten_prefix(a, "gen_ai.prompt") or (
            _unflatten_prefix(a, "agentlightning.operation.input.messages")
        )
        prompt = {
            "token_ids": first_ids(["prompt_token_ids", "agentlightning.operation.output.prompt_token_ids"]),
            "raw_content": raw_prompt,
            "image_urls": self.extract_prompt_image_urls(raw_prompt),
        }
        response: Dict[str, Any] = {
            "token_ids": first_ids(
                [
                    "response_token_ids",
                    "agentlightning.operation.output.response_token_ids.0",
                    "agentlightning.operation.output.choices.0.token_ids",
                    "agentlightning.operation.output.choices.0.provider_specific_fields.token_ids",
                ]
            ),
            "raw_content": first_unflattened(["gen_ai.completion", "agentlightning.operation.output.choices"]),
        }
        if isinstance(a.get("logprobs.content"), str):
            try:
                response["logprobs"] = json.loads(a["logprobs.content"])
            except ValueError:
                logger.warning("Span %s: logprobs.content is not valid JSON; ignored", span.span_id)
        request = first_unflattened(["gen_ai.request", "agentlightning.operation.input"])
        if isinstance(request, dict):
            request = {k: v for k, v in request.items() if k != "messages"}
        response_meta = first_unflattened(["gen_ai.response", "agentlightning.operation.output"])
        if isinstance(response_meta, dict):
            drop = {"choices", "prompt_token_ids", "response_token_ids"}
            response_meta = {k: v for k, v in response_meta.items() if k not in drop}
        node = TraceTree(span.span_id, span)
        metadata = {
            "request": request,
            "response": response_meta,
            "response_id": node.response_id(),
            "agent_name": agent_name,
        }
        if not prompt["token_ids"] or not response["token_ids"]:
            metadata[TOKEN_IDS_NOTE] = token_ids_note(a)
        return Triplet(prompt=prompt, response=response, reward=None, metadata=metadata)

    def match_rewards(
        self, reward_match: Union[str, RewardMatchPolicy], llm_calls: Sequence[TraceTree]
    ) -> Dict[str, Optional[float]]:
        """``{llm node id: reward}`` under the given policy."""
        policy = RewardMatchPolicy(reward_match)
        call_ids = {node.id for node in llm_calls}
        assigned: Dict[str, Optional[float]] = {}

        def scan(sequence: Sequence[TraceTree]) -> None:
            pushed: List[TraceTree] = []
            for node in sequence:
                if node.id in call_ids:
                    pushed.append(node)
                    continue
                if not node.is_reward_span():
                    continue
                value = node.maybe_reward_dict().get("value")
                if value is None:
                    continue
                for call in reversed(pushed):
                    if call.id in assigned or _end(call) > _start(node):
                        continue
                    assigned[call.id] = value
                    break

        if policy is RewardMatchPolicy.FIRST_OCCURRENCE:
            scan(sorted(self.traverse(), key=_start))
        else:
            for node in self.traverse():
                if node.children:
                    scan(node.children)
        return assigned

    def to_trajectory(
        self,
        llm_call_match: str = DEFAULT_LLM_CALL_MATCH,
        agent_match: Optional[str] = None,
        exclude_llm_call_in_reward: bool = True,
        dedup_llm_call: bool = True,
        reward_match: Union[str, RewardMatchPolicy] = RewardMatchPolicy.FIRST_OCCURRENCE,
        final_reward: Optional[float] = None,
        _skip_empty_token_spans: bool = False,
    ) -> List[Triplet]:
        """The triplets of this tree, in discovery order, with rewards attached."""
        calls = self.find_llm_calls(
            llm_call_match=llm_call_match,
            agent_match=agent_match,
            within_matching_subtree="*" if agent_match is None else None,
            within_reward=False if exclude_llm_call_in_reward else None,
            within_llm_call=False if dedup_llm_call else None,
            existing_llm_call_response_ids=set(),
        )
        pairs = [(node, self.span_to_triplet(node.span, agent)) for node, agent in calls]
        if _skip_empty_token_spans:
            pairs = [(n, t) for n, t in pairs if t.prompt["token_ids"] and t.response["token_ids"]]
        rewards = self.match_rewards(reward_match, [n for n, _ in pairs])
        for node, triplet in pairs:
            triplet.reward = rewards.get(node.id)
        triplets = [t for _, t in pairs]
        if final_reward is not None and triplets:
            triplets[-1].reward = final_reward
        return triplets


class TraceToTripletBase(TraceAdapter[List[Triplet]]):
    """Adapters that produce one triplet per LLM call."""


class TracerTraceToTriplet(TraceToTripletBase):
    """Spans (stored or OpenTelemetry SDK spans) to triplets.

    Args:
        repair_hierarchy: first re-parent spans under their tightest enclosing span
            (:meth:`TraceTree.repair_hierarchy`).
        llm_call_match: regex on span names that marks LLM calls.
        agent_match: regex on agent names; only LLM calls under a matching agent count (None: all).
        exclude_llm_call_in_reward: ignore LLM calls made inside reward spans (e.g. an LLM grader).
        reward_match: :class:`RewardMatchPolicy`.
    """

    def __init__(
        self,
        repair_hierarchy: bool = True,
        llm_call_match: str = DEFAULT_LLM_CALL_MATCH,
        agent_match: Optional[str] = None,
        exclude_llm_call_in_reward: bool = True,
        reward_match: Union[str, RewardMatchPolicy] = RewardMatchPolicy.FIRST_OCCURRENCE,
        _skip_empty_token_spans: bool = False,
    ) -> None:
        self.repair_hierarchy = repair_hierarchy
        self.llm_call_match = llm_call_match
        self.agent_match = agent_match
        self.exclude_llm_call_in_reward = exclude_llm_call_in_reward
        self.reward_match = RewardMatchPolicy(reward_match)
        self._skip_empty_token_spans = _skip_empty_token_spans
        re.compile(llm_call_match)
        if agent_match:
            re.compile(agent_match)

    def tree(self, source: Sequence[Any]) -> TraceTree:
        tree = TraceTree.from_spans(as_spans(source))
        if self.repair_hierarchy:
            tree.repair_hierarchy()
        return tree

    def visualize(
        self, source: Sequence[Any], filename: str = "trace_tree", interested_span_match: Optional[str] = None
    ) -> TraceTree:
        tree = self.tree(source)
        tree.visualize(filename, interested_span_match)
        return tree

    def adapt(self, source: Sequence[Any]) -> List[Triplet]:
        """The triplets of one attempt's spans; [] when there are no spans or no LLM calls."""
        if not source:
            return []
        return self.tree(source).to_trajectory(
            llm_call_match=self.llm_call_match,
            agent_match=self.agent_match,
            exclude_llm_call_in_reward=self.exclude_llm_call_in_reward,
            dedup_llm_call=True,
            reward_match=self.reward_match,
            _skip_empty_token_spans=self._skip_empty_token_spans,
        )
