"""Step 1: record a strong model's traces through the LLM proxy into a SQLite store.

    python record.py --store sqlite:///runs/teacher.db                       # a scripted teacher on 127.0.0.1
    python record.py --store sqlite:///runs/teacher.db --teacher-url URL --teacher-model openai/gpt-4.1-mini

The agent is the quickstart's keyword agent (plain OpenAI-client code: it asks for a keyword's category and returns
the reward). Every call goes through ``agl.LLMProxy``, which records it (messages, token ids when the model server
returns them) as spans of the rollout. Without ``--teacher-url`` the teacher is a local OpenAI-compatible test
server (``agentlightning.testing.openai_server``) that answers right on about three keywords in four, so the reward
filter of the next step has something to reject. Also writes ``data/train.jsonl`` and ``data/val.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import zlib
from typing import Any, Dict, Iterator, Optional

from agentlightning_torch.quickstart.task import CATEGORIES, category_of, make_datasets


def scripted_teacher(request: Dict[str, Any]) -> str:
    """The stand-in for a strong model: the keyword's category, except on about a quarter of the keywords."""
    keyword = str(request["messages"][-1]["content"])
    right = category_of(keyword)
    if zlib.crc32(keyword.encode()) % 4 == 0:
        return CATEGORIES[(CATEGORIES.index(right) + 1) % len(CATEGORIES)]
    return right


def write_data(directory: str, n_train: int, n_val: int, seed: int) -> Dict[str, str]:
    os.makedirs(directory, exist_ok=True)
    train, val = make_datasets(n_train=n_train, n_val=n_val, seed=seed, same_group=True)
    paths = {}
    for name, tasks in (("train", train), ("val", val)):
        paths[name] = os.path.join(directory, f"{name}.jsonl")
        with open(paths[name], "w", encoding="utf-8") as f:
            f.writelines(json.dumps(task) + "\n" for task in tasks)
    return paths


@contextlib.contextmanager
def teacher_endpoint(url: Optional[str], model: str) -> Iterator[Dict[str, Any]]:
    """LiteLLM parameters of the teacher: the given endpoint, or a scripted test server started here."""
    if url:
        yield {"model": model, "api_base": url, "api_key": os.environ.get("TEACHER_API_KEY", "none")}
        return
    from agentlightning.testing.openai_server import OpenAITestServer

    with OpenAITestServer(scripted_teacher) as server:
        yield {"model": "hosted_vllm/teacher", "api_base": server.base_url, "api_key": "none"}


def record(store_url: str, train_path: str, teacher: Dict[str, Any], runners: int) -> Dict[str, Any]:
    from agentlightning.algorithm.fast import Baseline
    from agentlightning.cli.dev import load_jsonl
    from agentlightning.runner import LitAgentRunner
    from agentlightning.store import open_store
    from agentlightning.tracer.otel import OtelTracer
    from agentlightning.trainer import Trainer
    from agentlightning_litellm import LLMProxy
    from agentlightning_torch.quickstart.agent import keyword_agent

    store = open_store(store_url)
    proxy = LLMProxy(
        model_list=[{"model_name": "teacher", "litellm_params": teacher}], store=store, launch_mode="thread"
    )
    proxy.start()
    try:
        baseline = Baseline(span_verbosity="none", polling_interval=0.2, max_queue_length=64)
        trainer = Trainer(
            algorithm=baseline,
            store=store,
            # the proxy records every call; client-side instrumentation would only duplicate them
            runner=LitAgentRunner(tracer=OtelTracer(instrument=False), max_concurrency=16, poll_interval=0.05),
            initial_resources={"main_llm": proxy.as_resource(sampling_parameters={"temperature": 0.0})},
            strategy="inprocess",
            n_runners=runners,
            progress=False,
        )
        trainer.dev(keyword_agent, load_jsonl(train_path))
        return baseline.summary("train")
    finally:
        proxy.stop()
        import anyio

        anyio.run(store.close)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, metavar="URL", help="where the traces go (sqlite:///...)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-val", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--teacher-url", default=None, help="an OpenAI-compatible base URL (default: scripted)")
    parser.add_argument("--teacher-model", default="openai/teacher", help="LiteLLM model name of the teacher")
    parser.add_argument("--runners", type=int, default=1)
    args = parser.parse_args()
    paths = write_data(args.data_dir, args.n_train, args.n_val, args.seed)
    with teacher_endpoint(args.teacher_url, args.teacher_model) as teacher:
        summary = record(args.store, paths["train"], teacher, args.runners)
    print(f"recorded {summary['count']} teacher rollouts, mean reward {summary['mean']:.3f}, into {args.store}")


if __name__ == "__main__":
    main()
