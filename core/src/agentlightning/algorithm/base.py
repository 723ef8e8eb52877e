"""``Algorithm``: what drives training. It enqueues rollouts, reads their spans, and publishes resources."""

from __future__ import annotations

import inspect
import weakref
from typing import TYPE_CHECKING, Any, Awaitable, Optional, Union

from agentlightning.types.core import Dataset
from agentlightning.types.resources import NamedResources

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore
    from agentlightning.trainer.trainer import Trainer

__all__ = ["Algorithm"]


def _deref(ref: Any, what: str, owner: str) -> Any:
    if ref is None:
        raise ValueError(f"{what} has not been set for this {owner}.")
    obj = ref()
    if obj is None:
        raise ValueError(f"{what} reference is no longer valid (object has been garbage collected).")
    return obj


class Algorithm:
    """Base class of algorithms. Implement ``run(train_dataset=None, val_dataset=None)``, sync or async.

    The Trainer hands it the store (:meth:`get_store`), the adapter, an optional LLM proxy and the initial
    resources before calling ``run``.
    """

    _trainer_ref: Optional[weakref.ref[Any]] = None
    _llm_proxy_ref: Optional[weakref.ref[Any]] = None
    _store: Optional[LightningStore] = None
    _initial_resources: Optional[NamedResources] = None
    _adapter_ref: Optional[weakref.ref[Any]] = None

    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.run)

    def set_trainer(self, trainer: Trainer) -> None:
        self._trainer_ref = weakref.ref(trainer)

    def get_trainer(self) -> Trainer:
        return _deref(self._trainer_ref, "Trainer", "agent")

    def set_llm_proxy(self, llm_proxy: Any) -> None:
        self._llm_proxy_ref = weakref.ref(llm_proxy) if llm_proxy is not None else None

    def get_llm_proxy(self) -> Any:
        if self._llm_proxy_ref is None:
            return None
        return _deref(self._llm_proxy_ref, "LLM proxy", "algorithm")

    def set_adapter(self, adapter: Any) -> None:
        self._adapter_ref = weakref.ref(adapter) if adapter is not None else None

    def get_adapter(self) -> Any:
        return _deref(self._adapter_ref, "Adapter", "algorithm")

    def set_store(self, store: LightningStore) -> None:
        self._store = store

    def get_store(self) -> LightningStore:
        if self._store is None:
            raise ValueError("Store has not been set for this algorithm.")
        return self._store

    def set_initial_resources(self, resources: Optional[NamedResources]) -> None:
        self._initial_resources = resources

    def get_initial_resources(self) -> Optional[NamedResources]:
        return self._initial_resources

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)

    def run(
        self, train_dataset: Optional[Dataset[Any]] = None, val_dataset: Optional[Dataset[Any]] = None
    ) -> Union[Awaitable[None], None]:
        raise NotImplementedError("Algorithms must implement the `run` method.")

    def get_client(self) -> Any:
        raise NotImplementedError("get_client() belongs to the v0 API, which this algorithm does not support.")
