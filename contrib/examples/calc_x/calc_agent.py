"""Calc-X: an arithmetic agent with a calculator tool, written with the plain ``openai`` client.

The agent reads the LLM resource (``main_llm``: the policy being trained, served by vLLM behind the LLM proxy),
lets the model call ``calculator`` as often as it likes (up to ``MAX_TURNS`` model calls), and scores the final
``ANSWER: <number>`` against the task's answer: 1.0 when equal (to 1e-6), else 0.0.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from typing import Any, Dict, List, Optional

import agentlightning as agl

MAX_TURNS = 4
SYSTEM_PROMPT = (
    "You solve arithmetic problems. You may call the calculator tool with an expression such as (3 + 4) * 2. "
    "When you know the result, reply with a final line `ANSWER: <number>`."
)
CALCULATOR_TOOL = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression with + - * / ** and parentheses.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "for example (12 + 7) * 3"}},
            "required": ["expression"],
        },
    },
}

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}  # fmt: skip


def calculate(expression: str) -> float:
    """Evaluate ``expression`` (numbers, + - * / **, parentheses) without ``eval``; ValueError on anything else."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 12:
                raise ValueError("exponent too large")
            return float(_OPERATORS[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return float(_OPERATORS[type(node.op)](walk(node.operand)))
        raise ValueError(f"unsupported expression element: {type(node).__name__}")

    try:
        return walk(ast.parse(expression.strip(), mode="eval"))
    except (SyntaxError, ZeroDivisionError, OverflowError) as exc:
        raise ValueError(str(exc)) from exc


def final_answer(text: str) -> Optional[float]:
    """The number after the last ``ANSWER:``; None when there is none."""
    found = re.findall(r"ANSWER:\s*(-?\d+(?:\.\d+)?)", text or "")
    return float(found[-1]) if found else None


def score(text: str, expected: float) -> float:
    value = final_answer(text)
    return 1.0 if value is not None and abs(value - float(expected)) < 1e-6 else 0.0


def _tool_result(arguments: str) -> str:
    try:
        expression = json.loads(arguments or "{}").get("expression", "")
        value = calculate(str(expression))
        return str(int(value)) if value == int(value) else f"{value:.6g}"
    except (ValueError, TypeError, AttributeError) as exc:  # bad JSON is a ValueError too
        return f"error: {exc}"


@agl.rollout
async def calc_agent(task: Dict[str, Any], llm: agl.LLM) -> float:
    """One episode: the question, tool calls as the model asks, the final answer scored."""
    import openai

    async with openai.AsyncOpenAI(base_url=llm.endpoint, api_key=llm.api_key or "dummy", max_retries=1) as client:
        messages: List[Dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": task["question"]},
        ]
        text = ""
        for _ in range(MAX_TURNS):
            reply = await client.chat.completions.create(
                model=llm.model,
                messages=messages,  # type: ignore[arg-type]
                tools=[CALCULATOR_TOOL],  # type: ignore[list-item]
                temperature=llm.sampling_parameters.get("temperature", 1.0),
                max_tokens=int(llm.sampling_parameters.get("max_tokens", 512)),
                extra_body={"return_token_ids": True},  # vLLM returns the token ids training uses
            )
            message = reply.choices[0].message
            text = message.content or ""
            if not message.tool_calls:
                break
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": _tool_result(call.function.arguments)}
                )
    return score(text, task["answer"])
