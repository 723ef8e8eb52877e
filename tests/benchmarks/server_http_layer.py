"""CPU per request of the store server's HTTP layer alone, in one process: no sockets, no client, no durable store.

Raw HTTP/1.1 requests of upstream's runner pattern (dequeue, latest resources, 20 sequenced span writes with ~2 KB
attributes and an idempotency key each, the attempt's update) are fed to the server's uvicorn protocol over a fake
transport, in front of a memory store: what is measured is parsing, the ASGI cycle, routing, the idempotency cache,
JSON, span decoding and the memory store. Building the requests is timed apart and left out.

Run: ``python tests/benchmarks/server_http_layer.py [rollouts]``; compare checkouts by alternating runs with
``PYTHONPATH`` at each checkout's ``src`` folders.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any, Dict, List, Optional

import orjson


class _FakeTransport(asyncio.Transport):
    """Keeps what the server writes."""

    def __init__(self) -> None:
        super().__init__()
        self.out: List[bytes] = []
        self.written = asyncio.Event()
        self.closed = False

    def write(self, data: Any) -> None:
        self.out.append(bytes(data))
        self.written.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _request(method: str, path: str, body: Any = None, keyed: bool = False) -> bytes:
    head = f"{method} /v1/agl{path} HTTP/1.1\r\nhost: x\r\naccept-encoding: identity\r\n"
    if keyed:
        head += f"idempotency-key: {uuid.uuid4().hex}\r\n"
    raw = b"" if body is None else orjson.dumps(body)
    if method != "GET":
        head += f"content-type: application/json\r\ncontent-length: {len(raw)}\r\n"
    return head.encode() + b"\r\n" + raw


def _span(rollout_id: str, attempt_id: str, index: int, payload: str) -> Dict[str, Any]:
    return {
        "rollout_id": rollout_id, "attempt_id": attempt_id, "sequence_id": 0, "trace_id": "a" * 32,
        "span_id": uuid.uuid4().hex[:16], "parent_id": None, "name": f"step-{index}",
        "status": {"status_code": "OK", "description": None},
        "attributes": {"payload": payload, "step.index": index, "gen_ai.response.model": "m"},
        "events": [], "links": [], "start_time": 1.0, "end_time": 2.0, "context": None, "parent": None,
        "resource": {"attributes": {}, "schema_url": ""},
    }  # fmt: skip


async def measure(rollouts: int, store_url: str = "memory://", span_mode: str = "runner") -> Dict[str, float]:
    from agentlightning.store import open_store
    from agentlightning_server.app import ServerSettings, create_app
    from agentlightning_server.serve import SERVER_OPTIONS
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    settings = ServerSettings(web_apps=False)
    store = open_store(store_url, watchdog_interval=None) if store_url.startswith("memory") else open_store(store_url)
    app = create_app(store, settings)
    config = Config(app, **{**SERVER_OPTIONS, **settings.http_options()}, log_level="warning", access_log=False)
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = _FakeTransport()
    protocol.connection_made(transport)

    async def call(data: bytes) -> bytes:
        transport.out.clear()
        transport.written.clear()
        protocol.data_received(data)
        await transport.written.wait()  # the server writes each answer at once (head and body together)
        return transport.out[-1]

    await call(_request("POST", "/queues/rollouts/enqueue", {"rollouts": [{"input": {"x": 1}}] * rollouts}, True))
    payload = "x" * 1900
    building = 0.0
    requests = 0
    start = time.process_time()
    for _ in range(rollouts):
        answer = await call(_request("POST", "/queues/rollouts/dequeue", {"limit": 1, "worker_id": "w"}, True))
        claimed = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])[0]
        rollout_id, attempt_id = claimed["rollout_id"], claimed["attempt"]["attempt_id"]
        await call(_request("GET", "/resources/latest"))
        for index in range(20):
            built = time.process_time()
            span = _span(rollout_id, attempt_id, index, payload)
            if span_mode == "single":
                span["sequence_id"] = index + 1
                data = _request("POST", "/spans", span)
            else:
                data = _request("POST", "/spans/sequenced", span, True)
            building += time.process_time() - built
            answer = await call(data)
            assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        await call(_request("POST", f"/rollouts/{rollout_id}/attempts/{attempt_id}", {"status": "succeeded"}))
        requests += 23
    cpu = time.process_time() - start
    await store.close()
    return {"requests": requests, "us_per_request": (cpu - building) / requests * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rollouts", type=int, nargs="?", default=300)
    parser.add_argument("--store", default="memory://", help="store URL (memory://, sqlite:///path)")
    parser.add_argument(
        "--span-mode",
        choices=("runner", "single"),
        default="runner",
        help="runner: sequenced span writes (add_otel_span); single: POST /spans (add_span)",
    )
    parser.add_argument("--profile", default=None, help="write a cProfile of the measured run to this file")
    args = parser.parse_args()
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    result = asyncio.run(measure(args.rollouts, args.store, args.span_mode))
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    print(f"{result['us_per_request']:.1f} us of CPU per request ({result['requests']} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
