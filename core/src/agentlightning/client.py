"""The v0.1 HTTP client (deprecated): ``AgentLightningClient`` talks to
:class:`~agentlightning.server.AgentLightningServer`; ``DevTaskLoader`` serves a fixed task list in-process. Use
:class:`~agentlightning.LightningStore` clients instead.

Protocol (upstream v0.3's): ``GET /task`` -> ``TaskIfAny``; ``GET /resources/latest`` and ``GET /resources/{id}`` ->
``ResourcesUpdate``; ``POST /rollout`` (``RolloutLegacy``) -> ``GenericResponse``. Network and HTTP errors come back
as ``None``, as upstream's client does.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

from agentlightning.types.legacy import RolloutLegacy, Task, TaskIfAny
from agentlightning.types.resources import NamedResources, ResourcesUpdate
from agentlightning.types.serialization import from_dict, to_dict

__all__ = ["AgentLightningClient", "DevTaskLoader"]

logger = logging.getLogger(__name__)


class AgentLightningClient:
    """Client of the v0.1 task server at ``endpoint`` (deprecated: use ``LightningStoreClient``).

    ``poll_next_task`` waits (polling every ``poll_interval`` seconds) until a task is available. Resources are cached
    by id. Every method has an ``*_async`` twin.
    """

    _next_task_uri = "/task"
    _resources_uri = "/resources"
    _latest_resources_uri = "/resources/latest"
    _report_rollout_uri = "/rollout"

    def __init__(self, endpoint: str, poll_interval: float = 5.0, timeout: float = 10.0) -> None:
        warnings.warn(
            "AgentLightningClient is deprecated. Please use LightningStoreClient instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.endpoint = endpoint
        self.task_count = 0
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._resource_cache: Dict[str, ResourcesUpdate] = {}
        self._default_headers = {"X-AgentLightning-Client": "true"}

    def _url(self, path: str) -> str:
        return urllib.parse.urljoin(self.endpoint, path)

    def _send(self, url: str, payload: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        headers = dict(self._default_headers)
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        method = "GET" if data is None else "POST"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) endpoint
                answer: Any = json.loads(response.read() or b"null")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            logger.debug("Request to %s failed: %s", url, exc)
            return None
        return answer if isinstance(answer, dict) else None

    async def _send_async(self, url: str, payload: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self._send, url, payload)

    def _task_from(self, answer: Optional[Dict[str, Any]]) -> Optional[Task]:
        if not answer:
            return None
        task_if_any = from_dict(answer, TaskIfAny)
        if task_if_any.is_available and task_if_any.task is not None:
            self.task_count += 1
            logger.info("[Task %d Received] ID: %s", self.task_count, task_if_any.task.rollout_id)
            return task_if_any.task
        return None

    def _resources_from(self, answer: Optional[Dict[str, Any]]) -> Optional[ResourcesUpdate]:
        if not answer:
            return None
        update = from_dict(answer, ResourcesUpdate)
        self._resource_cache[update.resources_id] = update
        return update

    # -- sync ----------------------------------------------------------------------------------------------------------

    def poll_next_task(self) -> Optional[Task]:
        """The next task; waits until the server has one."""
        while True:
            task = self._task_from(self._send(self._url(self._next_task_uri)))
            if task is not None:
                return task
            time.sleep(self.poll_interval)

    def get_resources_by_id(self, resource_id: str) -> Optional[ResourcesUpdate]:
        if resource_id in self._resource_cache:
            return self._resource_cache[resource_id]
        return self._resources_from(self._send(self._url(f"{self._resources_uri}/{resource_id}")))

    def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        return self._resources_from(self._send(self._url(self._latest_resources_uri)))

    def post_rollout(self, rollout: RolloutLegacy) -> Optional[Dict[str, Any]]:
        return self._send(self._url(self._report_rollout_uri), to_dict(rollout))

    # -- async ---------------------------------------------------------------------------------------------------------

    async def poll_next_task_async(self) -> Optional[Task]:
        import anyio

        while True:
            task = self._task_from(await self._send_async(self._url(self._next_task_uri)))
            if task is not None:
                return task
            await anyio.sleep(self.poll_interval)

    async def get_resources_by_id_async(self, resource_id: str) -> Optional[ResourcesUpdate]:
        if resource_id in self._resource_cache:
            return self._resource_cache[resource_id]
        return self._resources_from(await self._send_async(self._url(f"{self._resources_uri}/{resource_id}")))

    async def get_latest_resources_async(self) -> Optional[ResourcesUpdate]:
        return self._resources_from(await self._send_async(self._url(self._latest_resources_uri)))

    async def post_rollout_async(self, rollout: RolloutLegacy) -> Optional[Dict[str, Any]]:
        return await self._send_async(self._url(self._report_rollout_uri), to_dict(rollout))


class DevTaskLoader(AgentLightningClient):
    """Serves ``tasks`` (cycling forever) and ``resources`` in-process, and collects posted rollouts in
    :attr:`rollouts` (deprecated: use ``Trainer.dev``)."""

    def __init__(
        self,
        tasks: Union[Sequence[Any], Sequence[Task]],
        resources: Union[NamedResources, ResourcesUpdate],
        **kwargs: Any,
    ) -> None:
        warnings.warn("DevTaskLoader is deprecated. Please use Trainer.dev instead.", DeprecationWarning, stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(endpoint="local://", **kwargs)
        self._tasks = list(tasks)
        if not self._tasks:
            raise ValueError("DevTaskLoader requires at least one task to be provided.")
        if any(isinstance(task, Task) for task in self._tasks) and not all(isinstance(t, Task) for t in self._tasks):
            raise ValueError("All tasks must be either Task or TaskInput objects.")
        self._task_index = 0
        if isinstance(resources, ResourcesUpdate):
            self._resources_update = resources
        else:
            now = time.time()
            self._resources_update = ResourcesUpdate(
                resources_id="local", resources=resources, create_time=now, update_time=now, version=1
            )
        self._rollouts: List[RolloutLegacy] = []

    @property
    def rollouts(self) -> List[RolloutLegacy]:
        return self._rollouts

    def poll_next_task(self) -> Optional[Task]:
        if self._task_index >= len(self._tasks):
            self._task_index = 0
        item = self._tasks[self._task_index]
        if isinstance(item, Task):
            task = item
        else:
            task = Task(
                rollout_id=f"local_task_{self._task_index + 1:03d}",
                input=item,
                resources_id=self._resources_update.resources_id,
                create_time=time.time(),
            )
        self._task_index += 1
        self.task_count += 1
        logger.info("[Task %d Received] Task ID: %s", self.task_count, task.rollout_id)
        return task

    def get_resources_by_id(self, resource_id: str) -> Optional[ResourcesUpdate]:
        if resource_id != self._resources_update.resources_id:
            raise ValueError(
                f"Resource ID '{resource_id}' not found. Only '{self._resources_update.resources_id}' is available."
            )
        return self._resources_update

    def get_latest_resources(self) -> Optional[ResourcesUpdate]:
        return self._resources_update

    def post_rollout(self, rollout: RolloutLegacy) -> Optional[Dict[str, Any]]:
        self._rollouts.append(rollout)
        return {"status": "received", "rollout_id": rollout.rollout_id}

    async def poll_next_task_async(self) -> Optional[Task]:
        return self.poll_next_task()

    async def get_resources_by_id_async(self, resource_id: str) -> Optional[ResourcesUpdate]:
        return self.get_resources_by_id(resource_id)

    async def get_latest_resources_async(self) -> Optional[ResourcesUpdate]:
        return self.get_latest_resources()

    async def post_rollout_async(self, rollout: RolloutLegacy) -> Optional[Dict[str, Any]]:
        return self.post_rollout(rollout)

    def __repr__(self) -> str:
        return f"DevTaskLoader(num_tasks={len(self._tasks)}, resources={self._resources_update.resources})"
