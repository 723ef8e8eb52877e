"""``AgentLightningServer`` (deprecated): upstream's v0.1 HTTP task server, as a thin adapter over a LightningStore.

Endpoints (upstream v0.3's): ``GET /task`` -> ``TaskIfAny`` (claims the next queued rollout); ``GET /resources/latest``
and ``GET /resources/{id}`` -> ``ResourcesUpdate`` (404 when unknown); ``POST /rollout`` (a ``RolloutLegacy``) ->
``GenericResponse``: the report is kept for :meth:`AgentLightningServer.poll_completed_rollout` and the rollout's
attempt is marked succeeded in the store. A task claimed longer than ``task_timeout_seconds`` ago is handed out again
(the store times its attempt out and retries it). Serving needs uvicorn (installed with agentlightning-server).
Use :class:`~agentlightning.LightningStore` with ``LightningStoreServer`` / ``LightningStoreClient`` instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple

from agentlightning.types.core import AttemptedRollout, RolloutConfig, RolloutMode
from agentlightning.types.legacy import GenericResponse, RolloutLegacy, Task, TaskIfAny
from agentlightning.types.resources import NamedResources
from agentlightning.types.serialization import ValidationError, from_dict, to_dict

if TYPE_CHECKING:
    from agentlightning.store.base import LightningStore

__all__ = ["AgentLightningServer"]

logger = logging.getLogger(__name__)

MAX_CLAIMS = 1000
"""How often a timed-out task is handed out again (upstream: without limit)."""


def _task(rollout: AttemptedRollout) -> Task:
    return Task(
        rollout_id=rollout.rollout_id,
        input=rollout.input,
        mode=rollout.mode,
        resources_id=rollout.resources_id,
        create_time=rollout.start_time,
        last_claim_time=rollout.attempt.start_time,
        num_claims=rollout.attempt.sequence_id,
        metadata=dict(rollout.metadata or {}),
    )


class AgentLightningServer:
    """The v0.1 task server on ``host:port`` over ``store`` (default: a new in-memory store). Deprecated: use
    ``LightningStoreServer``.

    ``start``/``stop``/``run_forever`` and the task and resource methods are coroutines, as upstream's are.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        task_timeout_seconds: float = 300.0,
        *,
        store: Optional[LightningStore] = None,
    ) -> None:
        warnings.warn(
            "AgentLightningServer is deprecated. Please use LightningStoreServer instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.host = host
        self.port = port
        self.endpoint = f"http://{host}:{port}"
        self._task_timeout_seconds = task_timeout_seconds
        self._store_given = store
        self._store: Optional[LightningStore] = None
        self._completed: Dict[str, RolloutLegacy] = {}
        self._lock = threading.Lock()
        self._launcher: Any = None
        self.startup_event = threading.Event()

    @property
    def store(self) -> LightningStore:
        """The store the tasks, resources and attempts live in (open once the server started)."""
        if self._store is None:
            raise RuntimeError("Store not initialized. The server may not be running.")
        return self._store

    # -- the HTTP app --------------------------------------------------------------------------------------------------

    async def _handle(self, method: str, path: str, body: bytes) -> Tuple[int, Any]:
        store = self._store
        if store is None:
            if method == "GET" and path == "/task":
                return 200, to_dict(TaskIfAny(is_available=False))
            return 503, {"detail": "Server not fully initialized."}
        if method == "GET" and path == "/task":
            claimed = await store.dequeue_rollout()
            if claimed is None:
                return 200, to_dict(TaskIfAny(is_available=False))
            return 200, to_dict(TaskIfAny(is_available=True, task=_task(claimed)))
        if method == "GET" and path == "/resources/latest":
            latest = await store.get_latest_resources()
            if latest is None:
                return 404, {"detail": "No resources have been set on the server."}
            return 200, to_dict(latest)
        if method == "GET" and path.startswith("/resources/"):
            resource_id = path[len("/resources/") :]
            update = await store.get_resources_by_id(resource_id)
            if update is None:
                return 404, {"detail": f"Resource ID '{resource_id}' not found."}
            return 200, to_dict(update)
        if method == "POST" and path == "/rollout":
            try:
                rollout = from_dict(json.loads(body or b"null"), RolloutLegacy)
            except (ValueError, ValidationError) as exc:
                return 422, {"detail": f"not a RolloutLegacy: {exc}"}
            await self._complete(store, rollout)
            message = f"Rollout {rollout.rollout_id} received and stored."
            return 200, to_dict(GenericResponse(status="ok", message=message))
        return 404, {"detail": "Not Found"}

    async def _complete(self, store: LightningStore, rollout: RolloutLegacy) -> None:
        with self._lock:
            self._completed[rollout.rollout_id] = rollout
        try:
            await store.update_attempt(rollout.rollout_id, "latest", status="succeeded")
        except Exception as exc:  # noqa: BLE001 - a report for a rollout the store does not know is still kept
            logger.warning("Rollout %s reported, but its attempt could not be updated: %s", rollout.rollout_id, exc)

    def _app(self) -> Callable[..., Awaitable[None]]:
        async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                status, payload = await self._handle(scope["method"], scope["path"], body)
            except Exception as exc:
                logger.exception("Legacy server request %s %s failed", scope["method"], scope["path"])
                status, payload = 500, {"detail": f"{type(exc).__name__}: {exc}"}
            data = json.dumps(payload).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data})

        return app

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve in a background thread; returns once requests are accepted."""
        from agentlightning.store import open_store
        from agentlightning.utils.server_launcher import BackgroundServer

        if self._launcher is not None:
            return
        self._store = self._store_given if self._store_given is not None else open_store("memory://")
        launcher = BackgroundServer(
            self._app(), host=self.host, port=self.port, name="the AgentLightningServer", lifespan="off"
        )
        await launcher.astart()
        self._launcher = launcher
        self.port = launcher.port
        self.endpoint = f"http://{self.host}:{self.port}"
        self.startup_event.set()
        logger.info("AgentLightningServer serving at %s", self.endpoint)

    async def stop(self) -> None:
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            await launcher.astop()
        self.startup_event.clear()
        store, self._store = self._store, None
        if store is not None and self._store_given is None:
            await store.close()

    async def run_forever(self) -> None:
        """Serve until cancelled (Ctrl-C)."""
        import anyio

        await self.start()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()

    # -- tasks, resources and reports ----------------------------------------------------------------------------------

    async def queue_task(
        self,
        sample: Any,
        mode: Optional[RolloutMode] = None,
        resources_id: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> str:
        """Queue ``sample`` as a task; returns its rollout id."""
        config = RolloutConfig(
            timeout_seconds=self._task_timeout_seconds, max_attempts=MAX_CLAIMS, retry_condition=["timeout"]
        )
        rollout = await self.store.enqueue_rollout(
            sample, mode=mode, resources_id=resources_id, config=config, metadata=metadata
        )
        return rollout.rollout_id

    async def update_resources(self, resources: NamedResources) -> str:
        """Publish ``resources`` as the latest version; returns its id."""
        update = await self.store.add_resources(resources)
        return update.resources_id

    async def get_completed_rollout(self, rollout_id: str) -> Optional[RolloutLegacy]:
        """The report of ``rollout_id`` (removed from the server), or None if none arrived yet."""
        self.store  # noqa: B018 - raises when the server is not running, as upstream's does
        with self._lock:
            return self._completed.pop(rollout_id, None)

    async def poll_completed_rollout(self, rollout_id: str, timeout: Optional[float] = None) -> Optional[RolloutLegacy]:
        """Wait for the report of ``rollout_id``; None after ``timeout`` seconds (None: wait forever)."""
        import anyio

        started = time.monotonic()
        while True:
            rollout = await self.get_completed_rollout(rollout_id)
            if rollout is not None:
                return rollout
            if timeout is not None and time.monotonic() - started >= timeout:
                return None
            await anyio.sleep(0.1)

    async def retrieve_completed_rollouts(self) -> List[RolloutLegacy]:
        """Every report that arrived (removed from the server)."""
        self.store  # noqa: B018 - raises when the server is not running
        with self._lock:
            drained, self._completed = list(self._completed.values()), {}
        return drained
