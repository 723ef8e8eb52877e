"""Every LLM client instrumentation at once, each applied when its library is first imported.

:func:`instrument_all` patches the libraries already imported and installs a ``sys.meta_path`` finder that patches
the others right after their first import, so nothing heavy is imported eagerly. :func:`uninstrument_all` undoes it
(both are reference counted). The default tracer calls them in ``init_worker`` / ``teardown_worker``.

================  ===================  ============================================================
library           module watched       what is patched
================  ===================  ============================================================
openai            ``openai``           chat completions, completions, Responses (sync, async, stream)
anthropic         ``anthropic``        ``messages.create`` and ``messages.stream`` (sync, async)
litellm           ``litellm``          ``completion``, ``acompletion``, ``text_completion``, ...
google-genai      ``google.genai``     ``models.generate_content[_stream]`` (sync, ``aio``)
================  ===================  ============================================================
"""

from __future__ import annotations

import importlib
import importlib.abc
import logging
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

__all__ = ["instrument_all", "uninstrument_all", "instrumented_libraries", "INSTRUMENTORS"]

logger = logging.getLogger(__name__)

INSTRUMENTORS: Dict[str, Tuple[str, str, str]] = {
    # name: (module whose import triggers it, "module:instrument", "module:uninstrument")
    "openai": ("openai", "openai:instrument_openai", "openai:uninstrument_openai"),
    "anthropic": ("anthropic", "anthropic:instrument_anthropic", "anthropic:uninstrument_anthropic"),
    "litellm": ("litellm", "litellm:instrument_litellm", "litellm:uninstrument_litellm"),
    "google-genai": ("google.genai", "google_genai:instrument_google_genai", "google_genai:uninstrument_google_genai"),
}

_lock = threading.RLock()
_users = 0
_active: Set[str] = set()


def _load(ref: str) -> Callable[[], Any]:
    module, name = ref.split(":")
    return getattr(importlib.import_module(f"agentlightning.instrumentation.{module}"), name)


def _turn_on(name: str) -> None:
    """Instrument ``name`` now (its library is imported); a failure is logged, never raised into the import."""
    with _lock:
        if _users == 0 or name in _active:
            return
        try:
            if _load(INSTRUMENTORS[name][1])():
                _active.add(name)
        except Exception:  # a library version we cannot patch must not break the agent
            logger.warning("Could not instrument %s; its LLM calls will not be traced", name, exc_info=True)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module it asks the other finders, and runs the hooks once the module has
    executed."""

    def __init__(self) -> None:
        self.watched: Dict[str, List[str]] = {}
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        names = self.watched.get(fullname)
        if not names or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._busy.name = None
        loader = getattr(spec, "loader", None) if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            try:
                original(module)
            finally:
                try:
                    del loader.exec_module  # the loader's own method again
                except AttributeError:
                    pass
            for name in list(names):
                _turn_on(name)

        try:
            loader.exec_module = exec_module
        except (
            AttributeError,
            TypeError,
        ):  # a loader that refuses attributes: patch when instrument_all is next called
            pass
        return spec


_finder: Optional[_PostImportFinder] = None


def instrument_all() -> List[str]:
    """Instrument every supported LLM library: those imported now at once, the others on their first import.

    Reference counted: each call needs one :func:`uninstrument_all`. Returns the libraries instrumented so far.
    """
    global _users, _finder
    with _lock:
        _users += 1
        if _users == 1:
            watch: Dict[str, List[str]] = {}
            for name, (module, _, _) in INSTRUMENTORS.items():
                if module in sys.modules:
                    _turn_on(name)
                else:
                    watch.setdefault(module, []).append(name)
            if watch:
                _finder = _PostImportFinder()
                _finder.watched = watch
                sys.meta_path.insert(0, _finder)
        return sorted(_active)


def uninstrument_all() -> None:
    """Undo one :func:`instrument_all`; the last one restores every patched library and removes the import hook."""
    global _users, _finder
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        if _finder is not None:
            if _finder in sys.meta_path:
                sys.meta_path.remove(_finder)
            _finder = None
        for name in sorted(_active):
            try:
                _load(INSTRUMENTORS[name][2])()
            except Exception:
                logger.warning("Could not uninstrument %s", name, exc_info=True)
        _active.clear()


def instrumented_libraries() -> List[str]:
    """The libraries whose calls are traced now."""
    with _lock:
        return sorted(_active)
