"""Where the gateway reaches below LiteLLM's conversions to see the backend's own token ids.

LiteLLM converts each backend chunk into its own chunk type and drops the fields it does not know at the chunk's top
level, among them vLLM's streamed ``prompt_token_ids``; and it serves the Anthropic route to OpenAI-compatible
backends by a chat completion it translates, whose token ids the translation drops. Both hooks only read.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from typing import Any, Dict, Optional

from .capture import StreamCollector, restore_token_ids

__all__ = ["to_dict", "observe_raw_chunks", "inner_call", "install_inner_capture"]

logger = logging.getLogger(__name__)


def to_dict(obj: Any) -> Dict[str, Any]:
    """A LiteLLM response (pydantic) or a dict, as a JSON-ready dict."""
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json"))
    raise TypeError(f"cannot serialize a {type(obj).__name__} response")


def observe_raw_chunks(stream: Any, collector: StreamCollector) -> None:
    """Hook the chunk parser of LiteLLM's stream wrapper, on this stream only, so that ``collector`` sees each
    backend chunk before LiteLLM converts it."""
    holder = stream
    for _ in range(4):
        holder = getattr(holder, "completion_stream", None)
        if holder is None:
            return
        parser = getattr(holder, "chunk_parser", None)
        if callable(parser):

            def observed(chunk: Any, _parser: Any = parser) -> Any:
                collector.add_raw(chunk)
                return _parser(chunk)

            try:
                holder.chunk_parser = observed
            except AttributeError:  # pragma: no cover - depends on LiteLLM's classes
                return
            return


inner_call: contextvars.ContextVar[Optional[StreamCollector]] = contextvars.ContextVar("agl_inner_call", default=None)
"""Set around an Anthropic-route call: the collector that receives its translated chat completion's token ids."""


def install_inner_capture(litellm: Any) -> None:
    """Wrap ``litellm.acompletion`` (once per process) so that a call made while :data:`inner_call` is set hands
    its result's token ids to that collector. Every other call passes through untouched."""
    original = litellm.acompletion
    if getattr(original, "__agl_inner_capture__", False):
        return

    @functools.wraps(original)
    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        collector = inner_call.get()
        result = await original(*args, **kwargs)
        if collector is not None:
            try:
                if kwargs.get("stream"):
                    observe_raw_chunks(result, collector)
                else:
                    collector.add_inner_response(restore_token_ids(to_dict(result)))
            except Exception:  # capture is best effort
                logger.debug("Could not read the translated call's token ids", exc_info=True)
        return result

    acompletion.__agl_inner_capture__ = True  # type: ignore[attr-defined]
    litellm.acompletion = acompletion
