"""``LLMProxy``: start, stop and publish the gateway that records every LLM call of a rollout into the store."""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any, Dict, List, Optional, Sequence

from agentlightning.store.base import LightningStore
from agentlightning.types.resources import LLM, ProxyLLM
from agentlightning.utils.awaitable import Completed
from agentlightning.utils.server_launcher import access_host, wait_until_healthy

from .settings import ProxySettings, check_model_list

__all__ = ["LLMProxy"]

logger = logging.getLogger(__name__)

_CALLBACKS = ("return_token_ids", "logprobs", "opentelemetry")
_LAUNCH_MODES = {"process": "process", "mp": "process", "thread": "thread"}


class LLMProxy:
    """An OpenAI/Anthropic-compatible gateway over the LiteLLM SDK that records each call into the store.

    Agents call ``<endpoint>/rollout/<rollout_id>/attempt/<attempt_id>/v1/...`` (what
    ``proxy.as_resource().get_base_url(rollout_id, attempt_id)`` gives); each call becomes spans of that rollout and
    attempt with the next sequence id, carrying the token ids vLLM-style backends return.

    Args:
        port: the port to listen on; None picks a free one at the first start and keeps it for restarts.
        model_list: LiteLLM deployments, ``[{"model_name": "m", "litellm_params": {"model": "hosted_vllm/m",
            "api_base": "http://127.0.0.1:8000/v1"}}]``.
        store: where spans go (also settable later with :meth:`set_store`).
        host: the interface to bind; clients on other machines need ``"0.0.0.0"``.
        litellm_config: ``{"litellm_settings": {...}}`` applied to the ``litellm`` module in the serving process.
        num_retries: LiteLLM's retries of a failed backend call.
        launch_mode: ``"process"`` (default, alias ``"mp"``): a child process, so that LiteLLM's import, globals
            and event loop stay out of this one; ``"thread"``: a thread of this process.
        timeout: seconds the backend may take to answer, and to send each next chunk of a stream (default 600).
        callbacks: upstream's aliases: ``"return_token_ids"`` (default on), ``"logprobs"``, ``"opentelemetry"``
            (recording; always on). Unknown names are an error.
        startup_timeout: seconds to wait for the server to answer ``/health``.
    """

    def __init__(
        self,
        port: Optional[int] = None,
        model_list: Optional[List[Dict[str, Any]]] = None,
        store: Optional[LightningStore] = None,
        host: str = "127.0.0.1",
        litellm_config: Optional[Dict[str, Any]] = None,
        num_retries: int = 0,
        *,
        launch_mode: str = "process",
        timeout: Optional[float] = None,
        callbacks: Optional[Sequence[str]] = None,
        startup_timeout: float = 120.0,
        use_otlp: Optional[bool] = None,
        retry_seconds: float = 60.0,
    ) -> None:
        if launch_mode not in _LAUNCH_MODES:
            raise ValueError(f"launch_mode must be one of {', '.join(_LAUNCH_MODES)}, got {launch_mode!r}")
        chosen = list(callbacks) if callbacks is not None else ["return_token_ids", "opentelemetry"]
        unknown = [c for c in chosen if c not in _CALLBACKS]
        if unknown:
            raise ValueError(f"Invalid callback alias(es) {unknown}: known ones are {', '.join(_CALLBACKS)}")
        if port is not None and (not isinstance(port, int) or not 0 <= port < 65536):
            raise ValueError(f"port must be an integer in 0..65535 or None, got {port!r}")
        self.port = port or None
        self.host = host
        self.model_list = check_model_list(model_list or [])
        self.litellm_config = dict(litellm_config or {})
        self.num_retries = num_retries
        self.launch_mode = _LAUNCH_MODES[launch_mode]
        self.timeout = timeout
        self.return_token_ids = "return_token_ids" in chosen
        self.logprobs = "logprobs" in chosen
        self.startup_timeout = startup_timeout
        self.use_otlp = use_otlp
        self.retry_seconds = retry_seconds
        self._store = store
        self._process: Any = None
        self._thread_server: Any = None
        self._store_server: Any = None

    # -- configuration -------------------------------------------------------------------------------------------

    def get_store(self) -> Optional[LightningStore]:
        return self._store

    def set_store(self, store: Optional[LightningStore]) -> None:
        """Use ``store`` from the next (re)start on."""
        self._store = store

    def update_model_list(self, model_list: List[Dict[str, Any]]) -> None:
        """Replace the served models; a running proxy is restarted on the same port to serve them."""
        self.model_list = check_model_list(model_list)
        logger.info("LLM proxy model list updated to %s", [m["model_name"] for m in self.model_list])
        if self.is_running():
            self.restart()

    def settings(self) -> ProxySettings:
        num_retries = self.litellm_config.get("litellm_settings", {}).get("num_retries", self.num_retries)
        return ProxySettings(
            model_list=self.model_list,
            litellm_config=self.litellm_config,
            num_retries=int(num_retries or 0),
            timeout=self.timeout,
            return_token_ids=self.return_token_ids,
            logprobs=self.logprobs,
            retry_seconds=self.retry_seconds,
            use_otlp=self.use_otlp,
        )

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def is_running(self) -> bool:
        if self._process is not None:
            return bool(self._process.is_alive())
        return self._thread_server is not None and bool(self._thread_server.running)

    def start(self) -> Completed[None]:
        """Start serving and return once ``/health`` answers (LiteLLM's import takes seconds).

        The result may be awaited (upstream v0.3's ``await proxy.start()``); the proxy is serving either way."""
        if self.is_running():
            logger.warning("LLM proxy is already running at %s", self.endpoint)
            return Completed(None)
        if self._store is None:
            logger.warning("LLM proxy started without a store: calls are served but not recorded")
        settings = self.settings()
        try:
            if self.launch_mode == "thread":
                self._start_thread(settings)  # returns once the gateway serves
            else:
                self._start_process(settings)
                self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        logger.info("LLM proxy serving %s at %s", [m["model_name"] for m in self.model_list], self.endpoint)
        return Completed(None)

    def _start_thread(self, settings: ProxySettings) -> None:
        from .serving import thread_server

        server = thread_server(settings, self._store, self.host, self.port or 0, self.startup_timeout)
        self._thread_server = server.start()
        self.port = server.port

    def _start_process(self, settings: ProxySettings) -> None:
        from .serving import process_main

        link = None
        if self._store is not None:
            from agentlightning.execution.store_link import link_store

            link, self._store_server = link_store(self._store)
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=process_main,
            args=(settings, link, self.host, self.port or 0, child),
            name="agl-llm-proxy",
            daemon=True,
        )
        process.start()
        child.close()
        self._process = process
        if not parent.poll(self.startup_timeout):
            raise RuntimeError(f"LLM proxy process did not report its port within {self.startup_timeout}s")
        kind, value = parent.recv()
        parent.close()
        if kind != "port":
            raise RuntimeError(f"LLM proxy process failed to start: {value}")
        self.port = int(value)

    def _wait_healthy(self) -> None:
        def exited() -> Optional[str]:
            return None if self.is_running() else "exited"

        wait_until_healthy(f"{self.endpoint}/health", timeout=self.startup_timeout, exited=exited, name="LLM proxy")

    def stop(self, timeout: float = 30.0) -> Completed[None]:
        """Stop serving; spans still queued are delivered first (bounded by ``timeout``). May be awaited."""
        if self._process is None and self._thread_server is None:
            logger.warning("LLM proxy is not running")
        if self._thread_server is not None:
            self._thread_server.stop(timeout)
            self._thread_server = None
        if self._process is not None:
            process, self._process = self._process, None
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully and the recorder drains
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(5)
        if self._store_server is not None:
            server, self._store_server = self._store_server, None
            server.stop()
        return Completed(None)

    def restart(self) -> Completed[None]:
        """Stop (if running) and start again, on the same port. May be awaited."""
        if self._process is not None or self._thread_server is not None:
            self.stop()
        return self.start()

    def __enter__(self) -> LLMProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- publishing ----------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://host:port`` (the port is known once started, or when given)."""
        if self.port is None:
            raise RuntimeError("LLM proxy has no port yet: start() it or pass port=")
        return f"http://{access_host(self.host, outbound=True)}:{self.port}"

    def as_resource(
        self,
        rollout_id: Optional[str] = None,
        attempt_id: Optional[str] = None,
        model: Optional[str] = None,
        sampling_parameters: Optional[Dict[str, Any]] = None,
    ) -> LLM:
        """A :class:`ProxyLLM` for publishing to agents, or, with both ids, an :class:`LLM` bound to that attempt."""
        if model is None:
            names = sorted({m["model_name"] for m in self.model_list})
            if len(names) != 1:
                raise ValueError(f"as_resource() needs model= when the proxy serves {len(names)} model names ({names})")
            model = names[0]
        resource = ProxyLLM(endpoint=self.endpoint, model=model, sampling_parameters=dict(sampling_parameters or {}))
        if rollout_id is None and attempt_id is None:
            return resource
        if rollout_id is None or attempt_id is None:
            raise ValueError("as_resource() needs both rollout_id and attempt_id, or neither")
        return LLM(
            endpoint=resource.get_base_url(rollout_id, attempt_id),
            model=model,
            sampling_parameters=dict(resource.sampling_parameters),
        )
