"""Versioned resources that algorithms publish to agents: LLM endpoints and prompt templates."""

from __future__ import annotations

import logging
import string
import sys
from typing import Any, ClassVar, Dict, Literal, Optional, Union

import attrs

from agentlightning._modelcompat import ModelCompat

__all__ = [
    "Resource",
    "LLM",
    "ProxyLLM",
    "PromptTemplate",
    "ResourceUnion",
    "NamedResources",
    "ResourcesUpdate",
    "RESOURCE_TYPES",
]

logger = logging.getLogger(__name__)


@attrs.define(kw_only=True)
class Resource(ModelCompat):
    """Base of every resource; ``resource_type`` tells them apart on the wire."""

    resource_type: Any = None


@attrs.define(kw_only=True)
class LLM(Resource):
    """An OpenAI-compatible endpoint and the model to call on it."""

    resource_type: Literal["llm"] = "llm"
    endpoint: str
    model: str
    api_key: Optional[str] = None
    sampling_parameters: Dict[str, Any] = attrs.field(factory=dict)

    def get_base_url(self, *args: Any, **kwargs: Any) -> str:
        """The base URL to give an OpenAI client."""
        return self.endpoint


def _with_rollout_path(endpoint: str, rollout_id: str, attempt_id: str) -> str:
    base = endpoint[:-1] if endpoint.endswith("/") else endpoint
    has_v1 = base.endswith("/v1")
    if has_v1:
        base = base[: -len("/v1")]
    url = f"{base}/rollout/{rollout_id}/attempt/{attempt_id}"
    return url + "/v1" if has_v1 else url


_SILENT_ENDPOINT_READERS = ("agentlightning", "attr", "cattr", "copy", "pickle", "json")


@attrs.define(kw_only=True)
class ProxyLLM(LLM):
    """An LLM reached through the LLM proxy, which records each call under the caller's rollout and attempt.

    Use :meth:`get_base_url` with the rollout and attempt ids (or :meth:`with_attempted_rollout`) rather than the bare
    ``endpoint``: calls made to the bare endpoint are recorded under no rollout.
    """

    resource_type: Literal["proxy_llm"] = "proxy_llm"  # type: ignore[assignment]

    def __getattribute__(self, name: str) -> Any:
        # Reading ``endpoint`` directly from user code logs a warning, as upstream v0.3 did: calls made to the bare
        # endpoint are recorded under no rollout. Reads by this package, attrs and cattrs (serialisation) are silent.
        if name == "endpoint":
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller and not caller.startswith(_SILENT_ENDPOINT_READERS):  # generated code (attrs) has no name
                logger.warning(
                    "Accessing 'endpoint' directly on ProxyLLM is discouraged. Use "
                    "'get_base_url(rollout_id, attempt_id)' instead to get the properly formatted endpoint."
                )
        return super().__getattribute__(name)

    def get_base_url(self, rollout_id: Optional[str] = None, attempt_id: Optional[str] = None) -> str:
        """The endpoint with ``/rollout/{rollout_id}/attempt/{attempt_id}`` inserted before a trailing ``/v1``."""
        if rollout_id is None and attempt_id is None:
            return self.endpoint
        if not isinstance(rollout_id, str) or not isinstance(attempt_id, str):
            raise ValueError("rollout_id and attempt_id must be strings or all be empty")
        return _with_rollout_path(self.endpoint, rollout_id, attempt_id)

    def with_attempted_rollout(self, rollout: Any) -> LLM:
        """A plain :class:`LLM` whose endpoint records calls under ``rollout`` and its attempt."""
        return LLM(
            endpoint=self.get_base_url(rollout.rollout_id, rollout.attempt.attempt_id),
            model=self.model,
            api_key=self.api_key,
            sampling_parameters=dict(self.sampling_parameters),
        )


@attrs.define(kw_only=True)
class PromptTemplate(Resource):
    """A prompt with placeholders, rendered by :meth:`format`."""

    resource_type: Literal["prompt_template"] = "prompt_template"
    template: str
    engine: Literal["jinja", "f-string", "poml"] = attrs.field(default="f-string")

    @engine.validator
    def _check_engine(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("jinja", "f-string", "poml"):
            raise ValueError(f"PromptTemplate.engine: {value!r} is not one of jinja, f-string, poml")

    def format(self, **kwargs: Any) -> str:
        """Render the template with ``kwargs``. f-string uses ``str.format``; jinja needs the ``jinja2`` package."""
        if self.engine == "f-string":
            return self.template.format(**kwargs)
        if self.engine == "jinja":
            try:
                import jinja2
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "PromptTemplate(engine='jinja') needs jinja2: pip install 'agentlightning-core[jinja]'"
                ) from exc
            env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - prompts, not HTML
            return env.from_string(self.template).render(**kwargs)
        raise NotImplementedError(f"PromptTemplate.format does not support the {self.engine!r} engine")

    def placeholders(self) -> set[str]:
        """The names the template expects (f-string fields, or jinja's undeclared variables)."""
        if self.engine == "f-string":
            names = set()
            for _, field, _, _ in string.Formatter().parse(self.template):
                if field:
                    names.add(field.split(".")[0].split("[")[0])
            return names
        if self.engine == "jinja":
            import jinja2
            from jinja2 import meta

            return set(meta.find_undeclared_variables(jinja2.Environment().parse(self.template)))  # noqa: S701 - parsed only
        raise NotImplementedError(f"placeholders() does not support the {self.engine!r} engine")


ResourceUnion = Union[LLM, ProxyLLM, PromptTemplate]
NamedResources = Dict[str, ResourceUnion]

RESOURCE_TYPES: Dict[str, type] = {"llm": LLM, "proxy_llm": ProxyLLM, "prompt_template": PromptTemplate}


@attrs.define(kw_only=True)
class ResourcesUpdate(ModelCompat):
    """One version of a named set of resources."""

    resources_id: str
    create_time: float
    update_time: float
    version: int
    resources: NamedResources

    LATEST: ClassVar[str] = "latest"
