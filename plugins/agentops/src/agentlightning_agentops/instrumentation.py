"""Patches to AgentOps' instrumentation that training needs (applied by the tracer, reference counted).

- **Token ids and logprobs on OpenAI chat spans.** AgentOps' OpenAI wrapper computes a chat span's attributes with
  ``handle_chat_attributes``; ours adds ``prompt_token_ids``, ``response_token_ids`` (choice 0) and
  ``logprobs.content`` / ``logprobs.refusal`` (JSON) when the server returned them (vLLM's
  ``extra_body={"return_token_ids": True}``), read the same way as :mod:`agentlightning.instrumentation.openai`.
  Raw-response clients (``client.chat.completions.with_raw_response``, as LangChain and LiteLLM use) hand AgentOps
  an ``APIResponse``; it is parsed (``parse()`` caches, so the caller gets the same object) before AgentOps reads
  it. Streamed calls get the same attributes, accumulated from the chunks.
- **LangChain** (when installed): LangChain calls ``on_chain_start(serialized=None, ...)`` for many runnables;
  AgentOps' callback handler then names every such chain ``unknown_chain``. The patch fills ``serialized`` from
  the ``name`` and ``run_id`` keyword arguments. AgentOps' native LangGraph instrumentation is switched off while
  patched: once AgentOps instruments an "agentic library" it drops its OpenAI instrumentation, which would lose the
  LLM spans training needs.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from agentlightning.instrumentation.openai import StreamAccumulator, parse_response, response_attributes

__all__ = [
    "token_attributes",
    "patch_agentops",
    "unpatch_agentops",
    "is_patched",
    "instrument_agentops",
    "uninstrument_agentops",
    "remove_openai_leftovers",
]

logger = logging.getLogger(__name__)

TOKEN_KEYS = ("prompt_token_ids", "response_token_ids", "logprobs.content")
_ORIGINAL = "__agentlightning_original__"

_lock = threading.Lock()
_refcount = 0
_undo: List[Callable[[], None]] = []
_instrument_refcount = 0
_instrument_owned = False


def token_attributes(response: Any) -> Dict[str, Any]:
    """The token-id and logprob attributes of a chat completion (object or dict); ``{}`` when it has none."""
    if response is None:
        return {}
    try:
        return _token_attributes(response)
    except Exception:  # an unexpected response shape must not break the agent's call
        logger.debug("could not read token ids from %r", type(response).__name__, exc_info=True)
        return {}


def _token_attributes(response: Any) -> Dict[str, Any]:
    attrs = response_attributes(response, chat=True)
    out = {key: attrs[key] for key in TOKEN_KEYS if key in attrs}
    if "response_token_ids" not in out:
        fallback = _fallback_response_ids(response)
        if fallback is not None:
            out["response_token_ids"] = fallback
    refusal = _refusal_logprobs(response)
    if refusal is not None:
        out["logprobs.refusal"] = refusal
    return out


def _int_list(value: Any) -> Optional[List[int]]:
    if isinstance(value, (list, tuple)) and value and all(type(v) is int for v in value):
        return list(value)
    return None


def _fallback_response_ids(response: Any) -> Optional[List[int]]:
    """Older vLLM (``response_token_ids``: one list per choice) and LiteLLM (``provider_specific_fields``)."""
    per_choice = _field(response, "response_token_ids")
    if isinstance(per_choice, (list, tuple)) and per_choice:
        ids = _int_list(per_choice[0])
        if ids is not None:
            return ids
    choices = _field(response, "choices") or []
    fields = _field(choices[0], "provider_specific_fields") if choices else None
    return _int_list(fields.get("token_ids")) if isinstance(fields, dict) else None


def _refusal_logprobs(response: Any) -> Optional[str]:
    choices = _field(response, "choices") or []
    logprobs = _field(choices[0], "logprobs") if choices else None
    refusal = _field(logprobs, "refusal") if logprobs is not None else None
    if not refusal:
        return None
    return json.dumps([r.model_dump() if hasattr(r, "model_dump") else r for r in refusal], default=str)


def _field(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    value = getattr(obj, key, None)
    if value is None:  # pydantic models keep unknown fields (vLLM's) in model_extra
        value = (getattr(obj, "model_extra", None) or {}).get(key)
    return value


# -- OpenAI chat spans ---------------------------------------------------------------------------------------


def _chat_attributes_with_tokens(original: Callable[..., Dict[str, Any]]) -> Callable[..., Dict[str, Any]]:
    @functools.wraps(original)
    def handle_chat_attributes(
        args: Optional[Tuple[Any, ...]] = None,
        kwargs: Optional[Dict[str, Any]] = None,
        return_value: Optional[Any] = None,
        span: Optional[Any] = None,
    ) -> Dict[str, Any]:
        response = parse_response(return_value) if return_value is not None else None
        attributes = original(args=args, kwargs=kwargs, return_value=response, span=span)
        attributes.update(token_attributes(response))
        return attributes

    setattr(handle_chat_attributes, _ORIGINAL, original)
    return handle_chat_attributes


def _process_chunk_with_tokens(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def _process_chunk(self: Any, chunk: Any) -> None:
        acc = self.__dict__.get("_agl_tokens")
        if acc is None:
            acc = self.__dict__["_agl_tokens"] = StreamAccumulator(chat=True)
        try:
            acc.add(chunk)
        except Exception:
            logger.debug("could not read token ids from a stream chunk", exc_info=True)
        original(self, chunk)

    setattr(_process_chunk, _ORIGINAL, original)
    return _process_chunk


def _finalize_stream_with_tokens(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def _finalize_stream(self: Any) -> None:
        acc = self.__dict__.get("_agl_tokens")
        if acc is not None:
            attributes = token_attributes(acc.response())
            if attributes:
                self._span.set_attributes(attributes)
        original(self)

    setattr(_finalize_stream, _ORIGINAL, original)
    return _finalize_stream


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    current = getattr(owner, name)
    if hasattr(current, _ORIGINAL):
        logger.warning("%s.%s is already patched by agentlightning; skipping", getattr(owner, "__name__", owner), name)
        return
    setattr(owner, name, make(current))

    def undo() -> None:
        if getattr(owner, name) is not current and hasattr(getattr(owner, name), _ORIGINAL):
            setattr(owner, name, current)

    _undo.append(undo)


def _patch_openai() -> None:
    from agentops.instrumentation.providers.openai import stream_wrapper

    _patch(stream_wrapper, "handle_chat_attributes", _chat_attributes_with_tokens)
    for cls in (stream_wrapper.OpenaiStreamWrapper, stream_wrapper.OpenAIAsyncStreamWrapper):
        _patch(cls, "_process_chunk", _process_chunk_with_tokens)
        _patch(cls, "_finalize_stream", _finalize_stream_with_tokens)


_OPENAI_WRAPPED = (
    ("openai.resources.chat.completions", ("Completions", "AsyncCompletions"), "create"),
    ("openai.resources.beta.chat.completions", ("Completions", "AsyncCompletions"), "parse"),
    ("openai.resources.responses", ("Responses", "AsyncResponses"), "create"),
)


def remove_openai_leftovers() -> int:
    """Unwrap the OpenAI wrappers AgentOps' ``uninstrument()`` leaves in place (its custom chat/stream wrappers).

    Without this, turning AgentOps' instrumentation off and on again wraps ``create`` twice (two spans per call).
    Only wrappers whose wrapper function comes from ``agentops`` are removed. Returns how many were.
    """
    import importlib

    removed = 0
    for module_name, class_names, method in _OPENAI_WRAPPED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for class_name in class_names:
            cls = getattr(module, class_name, None)
            while cls is not None:
                current = cls.__dict__.get(method)
                wrapper = getattr(current, "_self_wrapper", None)
                if wrapper is None or not getattr(wrapper, "__module__", "").startswith("agentops."):
                    break
                setattr(cls, method, current.__wrapped__)
                removed += 1
    return removed


# -- LangChain -----------------------------------------------------------------------------------------------


def _on_chain_start_with_serialized(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def on_chain_start(self: Any, serialized: Optional[Dict[str, Any]], inputs: Any, **kwargs: Any) -> Any:
        serialized = dict(serialized or {})
        if "name" not in serialized and kwargs.get("name") is not None:
            serialized["name"] = kwargs["name"]
        if "id" not in serialized and kwargs.get("run_id") is not None:
            serialized["id"] = str(kwargs["run_id"])
        return original(self, serialized, inputs, **kwargs)

    setattr(on_chain_start, _ORIGINAL, original)
    return on_chain_start


def _patch_langchain() -> bool:
    try:
        from agentops.integration.callbacks.langchain import callback
    except ImportError:  # langchain-core is not installed
        return False
    _patch(callback.LangchainCallbackHandler, "on_chain_start", _on_chain_start_with_serialized)
    return True


def _disable_langgraph() -> None:
    from agentops import instrumentation

    entry = instrumentation.AGENTIC_LIBRARIES.pop("langgraph", None)
    if entry is None:
        return
    instrumentation.TARGET_PACKAGES.discard("langgraph")

    def undo() -> None:
        instrumentation.AGENTIC_LIBRARIES.setdefault("langgraph", entry)
        instrumentation.TARGET_PACKAGES.add("langgraph")

    _undo.append(undo)


# -- entry points --------------------------------------------------------------------------------------------


def patch_agentops() -> None:
    """Apply every patch (reference counted: each call needs one :func:`unpatch_agentops`)."""
    global _refcount
    with _lock:
        _refcount += 1
        if _refcount > 1:
            return
        _patch_openai()
        _patch_langchain()
        _disable_langgraph()


def unpatch_agentops() -> None:
    """Undo one :func:`patch_agentops`; the last one restores AgentOps."""
    global _refcount
    with _lock:
        if _refcount == 0:
            return
        _refcount -= 1
        if _refcount > 0:
            return
        while _undo:
            _undo.pop()()


def is_patched() -> bool:
    return _refcount > 0


def instrument_agentops() -> None:
    """Turn AgentOps' instrumentation on (reference counted); if the application already did, it stays its own."""
    global _instrument_refcount, _instrument_owned
    from agentops import instrumentation

    with _lock:
        _instrument_refcount += 1
        if _instrument_refcount > 1:
            return
        # instrument_all() does nothing while an instrumentor is active: then the application turned it on
        _instrument_owned = not instrumentation._active_instrumentors
        if _instrument_owned:
            instrumentation.instrument_all()


def uninstrument_agentops() -> None:
    """Undo one :func:`instrument_agentops`; the last one turns AgentOps' instrumentation off if it turned it on."""
    global _instrument_refcount, _instrument_owned
    from agentops import instrumentation

    with _lock:
        if _instrument_refcount == 0:
            return
        _instrument_refcount -= 1
        if _instrument_refcount > 0 or not _instrument_owned:
            return
        _instrument_owned = False
        instrumentation.uninstrument_all()
        remove_openai_leftovers()
