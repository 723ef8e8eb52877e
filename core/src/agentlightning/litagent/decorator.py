"""``@rollout``, ``@llm_rollout`` and ``@prompt_rollout``: turn a plain function into a :class:`LitAgent`."""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from typing import Any, Callable, Dict, Optional, TypeVar, Union, overload

from agentlightning.types.core import AttemptedRollout, Rollout
from agentlightning.types.resources import LLM, NamedResources, PromptTemplate, ProxyLLM

from .litagent import LitAgent, RolloutRawResult

__all__ = ["FunctionalLitAgent", "rollout", "llm_rollout", "prompt_rollout"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_PATTERNS = (
    "Expected signatures: (task, llm[, rollout]) or (task, prompt_template[, rollout]). Functions can be sync or async."
)


def _load_attribute(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _first_of(resources: NamedResources, kind: type, what: str) -> Any:
    found = [(name, res) for name, res in resources.items() if isinstance(res, kind)]
    if not found:
        raise ValueError(f"No {what} resource found in the provided resources.")
    if len(found) > 1:
        logger.warning("Several %s resources found; using %r and ignoring %r.", what, found[0][0], found[1][0])
    return found[0][1]


class FunctionalLitAgent(LitAgent[Any]):
    """A :class:`LitAgent` around a function; arguments are injected by parameter name (``llm``,
    ``prompt_template``, ``rollout``). The object stays callable as the original function."""

    def __init__(self, rollout_func: Callable[..., Any], *, strip_proxy: bool = True) -> None:
        super().__init__()
        self._rollout_func = rollout_func
        self._strip_proxy = strip_proxy
        self._sig = inspect.signature(rollout_func)
        self._is_async = inspect.iscoroutinefunction(rollout_func)
        functools.update_wrapper(self, rollout_func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._rollout_func(*args, **kwargs)

    def __reduce__(self) -> Any:
        # Decorated module-level functions travel to runner processes by reference, like plain functions.
        module, qualname = getattr(self, "__module__", None), getattr(self, "__qualname__", "")
        if module and "<locals>" not in qualname:
            try:
                if _load_attribute(module, qualname) is self:
                    return (_load_attribute, (module, qualname))
            except (ImportError, AttributeError):
                pass
        return (_rebuild_functional, (self._rollout_func, self._strip_proxy))

    def is_async(self) -> bool:
        return self._is_async

    def _accepts(self, name: str) -> bool:
        return name in self._sig.parameters

    def _accepts_rollout(self) -> bool:
        return self._accepts("rollout")

    def _kwargs(self, resources: NamedResources, rollout: Rollout) -> Dict[str, Any]:
        kwargs: Dict[str, Any] = {}
        if self._accepts("rollout"):
            kwargs["rollout"] = rollout
        if self._accepts("llm"):
            llm = _first_of(resources, LLM, "LLM")
            if isinstance(llm, ProxyLLM) and self._strip_proxy:
                if not isinstance(rollout, AttemptedRollout):
                    raise ValueError("Rollout is not an AttemptedRollout.")
                llm = llm.with_attempted_rollout(rollout)
            kwargs["llm"] = llm
        if self._accepts("prompt_template"):
            kwargs["prompt_template"] = _first_of(resources, PromptTemplate, "prompt template")
        return kwargs

    def rollout(self, task: Any, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        if self._is_async:
            raise RuntimeError(f"{self._rollout_func} is asynchronous. Use rollout_async instead.")
        return self._rollout_func(task, **self._kwargs(resources, rollout))

    async def rollout_async(self, task: Any, resources: NamedResources, rollout: Rollout) -> RolloutRawResult:
        if not self._is_async:
            raise RuntimeError(f"{self._rollout_func} is synchronous. Use rollout instead.")
        return await self._rollout_func(task, **self._kwargs(resources, rollout))


def _rebuild_functional(func: Callable[..., Any], strip_proxy: bool) -> FunctionalLitAgent:
    return FunctionalLitAgent(func, strip_proxy=strip_proxy)


def _validate(func: Callable[..., Any], resource_param: str) -> None:
    params = list(inspect.signature(func).parameters)
    name = getattr(func, "__name__", repr(func))
    if len(params) < 2:
        raise ValueError(f"Function {name} must have at least 2 parameters.")
    if params[0] != "task":
        raise ValueError(f"Function {name} must be a positional parameter called 'task'.")
    if resource_param not in params:
        raise ValueError(f"Function {name} must have a positional parameter called '{resource_param}'.")


def _validate_llm_rollout_func(func: Callable[..., Any]) -> bool:
    """Upstream v0.3's check of an ``@llm_rollout`` function: raises ValueError if ``(task, llm, ...)`` is wrong."""
    _validate(func, "llm")
    return True


def _validate_prompt_rollout_func(func: Callable[..., Any]) -> bool:
    """Upstream v0.3's check of a ``@prompt_rollout`` function: ``(task, prompt_template, ...)``."""
    _validate(func, "prompt_template")
    return True


@overload
def llm_rollout(func: F) -> FunctionalLitAgent: ...
@overload
def llm_rollout(*, strip_proxy: bool = True) -> Callable[[F], FunctionalLitAgent]: ...
def llm_rollout(
    func: Optional[F] = None, *, strip_proxy: bool = True
) -> Union[FunctionalLitAgent, Callable[[F], FunctionalLitAgent]]:
    """Make an agent of ``f(task, llm[, rollout])``; a ``ProxyLLM`` is turned into a per-attempt ``LLM`` unless
    ``strip_proxy=False``."""

    def decorate(f: F) -> FunctionalLitAgent:
        _validate(f, "llm")
        return FunctionalLitAgent(f, strip_proxy=strip_proxy)

    return decorate(func) if func is not None else decorate


@overload
def prompt_rollout(func: F) -> FunctionalLitAgent: ...
@overload
def prompt_rollout() -> Callable[[F], FunctionalLitAgent]: ...
def prompt_rollout(func: Optional[F] = None) -> Union[FunctionalLitAgent, Callable[[F], FunctionalLitAgent]]:
    """Make an agent of ``f(task, prompt_template[, rollout])``."""

    def decorate(f: F) -> FunctionalLitAgent:
        _validate(f, "prompt_template")
        return FunctionalLitAgent(f)

    return decorate(func) if func is not None else decorate


def rollout(func: F) -> FunctionalLitAgent:
    """Make an agent of ``f(task, llm[, rollout])`` or ``f(task, prompt_template[, rollout])``."""
    for resource_param in ("llm", "prompt_template"):
        try:
            _validate(func, resource_param)
        except ValueError:
            continue
        return FunctionalLitAgent(func)
    raise NotImplementedError(
        f"Function signature {inspect.signature(func)} does not match any known agent patterns. {_PATTERNS}"
    )
