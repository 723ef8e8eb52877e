"""A real run to look at: ``Trainer.dev`` of a tool-calling agent against a local OpenAI-compatible server, twice
(prompt template v1, then v2), into an SQLite store. Some LLM calls ask for token ids, some do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import agentlightning as agl
from agentlightning.testing.openai_server import OpenAITestServer, Reply, ToolCall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

FAILING_INDEX = 4

TEMPLATES = [
    "You are a weather assistant. Answer the question: {question}",
    "You are a concise weather assistant. Use the get_weather tool, then answer in one sentence: {question}",
]


def _reply(body: Dict[str, Any]) -> Any:
    if body.get("messages") and body["messages"][-1].get("role") == "tool":
        return "It is sunny in " + json.loads(body["messages"][-1]["content"])["city"] + "."
    return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])


@agl.rollout
async def weather_agent(task: Dict[str, Any], prompt_template: agl.PromptTemplate, llm: agl.LLM) -> float:
    import openai

    if task["index"] == FAILING_INDEX:
        raise RuntimeError("this task fails on purpose")
    client = openai.AsyncOpenAI(base_url=llm.endpoint, api_key="test", max_retries=0)
    extra = {"return_token_ids": True} if task["index"] % 3 else {}  # every third call without token ids
    messages: list[Any] = [
        {"role": "system", "content": "Be helpful."},
        {"role": "user", "content": prompt_template.format(question=task["question"])},
    ]
    with agl.operation(name="plan"):  # nested spans: the LLM calls are children of the operation
        first = await client.chat.completions.create(model=llm.model, messages=messages, tools=TOOLS, extra_body=extra)
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"city": "Paris", "sky": "sun"})})
    with agl.operation(name="answer"):
        await client.chat.completions.create(model=llm.model, messages=messages, extra_body=extra)
    await client.close()
    return round(0.3 + 0.1 * (task["index"] % 5) + (0.2 if "one sentence" in prompt_template.template else 0), 3)


def fill(db_path: Path, n_tasks: int = 6) -> None:
    """Two dev runs into ``sqlite:///<db_path>``: ``n_tasks`` rollouts with template v1, then ``n_tasks`` with v2
    (a second resources version, as an algorithm adds one). Task ``FAILING_INDEX`` fails."""
    import anyio

    url = f"sqlite:///{db_path}"
    with OpenAITestServer(_reply) as server:
        llm = agl.LLM(endpoint=server.base_url, model="test-model")
        tasks = [{"index": i, "question": f"Weather in Paris, day {i}?"} for i in range(2 * n_tasks)]
        resources = {"llm": llm, "prompt_template": agl.PromptTemplate(template=TEMPLATES[0], engine="f-string")}
        agl.Trainer(store=url, n_runners=2, initial_resources=resources).dev(weather_agent, tasks[:n_tasks])

        async def new_version() -> None:
            store = agl.open_store(url)
            try:
                await store.add_resources({**resources, "prompt_template": agl.PromptTemplate(template=TEMPLATES[1])})
            finally:
                await store.close()

        anyio.run(new_version)
        agl.Trainer(store=url, n_runners=2).dev(weather_agent, tasks)  # resumes: runs the tasks after the first


if __name__ == "__main__":
    import sys

    fill(Path(sys.argv[1]))
