"""Reference-counted monkey patches: the first ``install`` applies them, the last ``uninstall`` restores the
originals. Instrumentations (openai here, LiteLLM in its plugin) share it."""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Tuple

__all__ = ["PatchSet"]


class PatchSet:
    """A set of attribute replacements, applied while at least one user has installed it; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._originals: List[Tuple[Any, str, Any, bool]] = []

    @property
    def active(self) -> bool:
        return self._users > 0

    def install(self, apply: Callable[[PatchSet], None]) -> None:
        """Count one more user; the first runs ``apply(self)``, which makes the replacements with :meth:`patch`. If
        ``apply`` fails, what it had patched is restored and the count is left as it was."""
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            try:
                apply(self)
            except BaseException:
                self._users -= 1
                self._restore()
                raise

    def patch(self, owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
        """Replace ``owner.<name>`` by ``wrap(original)``; the original is the owner's own attribute when it has one
        (a class's function, not a bound or inherited one), else what ``getattr`` finds."""
        own = vars(owner)
        had_own = name in own
        original = own[name] if had_own else getattr(owner, name)
        self._originals.append((owner, name, original, had_own))
        setattr(owner, name, wrap(original))

    def uninstall(self) -> None:
        """Count one user less; the last one restores every original (an extra call does nothing)."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                self._restore()

    def _restore(self) -> None:
        while self._originals:
            owner, name, original, had_own = self._originals.pop()
            if had_own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
