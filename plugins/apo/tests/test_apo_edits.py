"""Edits that drop or invent a placeholder are refused and retried, never accepted; harmless wrapping is repaired.

The editor is the local OpenAI-compatible test server reached with the real ``openai`` client."""

from __future__ import annotations

import string
from typing import Any, Iterator, List

import agentlightning as agl
import anyio
import httpx2
import pytest
from agentlightning.testing.openai_server import OpenAITestServer, ScriptedHandler
from agentlightning_apo import VersionedPromptTemplate
from agentlightning_apo.placeholders import placeholders_of, repair_edit, template_problems
from hypothesis import given, settings
from hypothesis import strategies as st

openai = pytest.importorskip("openai")

PARENT = "Book a room on {date} for {attendees} people. Needs: {needs}."
NAMES = {"date", "attendees", "needs"}


def parent(template: str = PARENT, engine: str = "f-string") -> VersionedPromptTemplate:
    return VersionedPromptTemplate(version="v0", prompt_template=agl.PromptTemplate(template=template, engine=engine))


@pytest.fixture
def editor() -> Iterator[Any]:
    servers: List[OpenAITestServer] = []

    def start(*replies: str, attempts: int = 3) -> Any:
        srv = OpenAITestServer(ScriptedHandler(list(replies))).start()
        servers.append(srv)
        # each anyio.run is its own event loop: keep no connection open from one to the next
        http = openai.DefaultAsyncHttpxClient(limits=httpx2.Limits(max_keepalive_connections=0))
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="test", max_retries=0, http_client=http)
        apo = agl.APO(client, apply_edit_model="editor", max_edit_attempts=attempts, report_path=None, seed=1)
        return apo, srv

    yield start
    for srv in servers:
        srv.stop()


def test_a_dropped_placeholder_is_refused_and_the_editor_told_why(editor: Any) -> None:
    good = PARENT + " Pick the smallest room that fits."
    apo, srv = editor("Book a room on {date} for {attendees} people.", good)
    text, rejected, _ = anyio.run(apo.apply_edit, parent(), "be precise")
    assert text == good
    assert [r["problems"] for r in rejected] == [["it drops the placeholder(s) {needs}"]]
    retry = srv.requests[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Book a room on {date} for {attendees} people."}
    assert retry[-1]["role"] == "user"
    assert "drops the placeholder(s) {needs}" in retry[-1]["content"]
    assert "{attendees}, {date}, {needs}" in retry[-1]["content"]
    assert all(r.body["model"] == "editor" for r in srv.requests)


def test_an_invented_placeholder_is_refused(editor: Any) -> None:
    good = PARENT + " Prefer quiet rooms."
    apo, _ = editor(PARENT + " Building: {building}.", good)
    text, rejected, _ = anyio.run(apo.apply_edit, parent(), "mention the building")
    assert text == good
    assert rejected[0]["problems"] == ["it adds the unknown placeholder(s) {building}"]


def test_when_every_try_is_refused_there_is_no_edit(editor: Any) -> None:
    apo, srv = editor("Book a room.", "Book a room {", PARENT, attempts=3)
    text, rejected, _ = anyio.run(apo.apply_edit, parent(), "shorter")
    assert text is None
    assert len(srv.requests) == 3
    assert rejected[0]["problems"] == ["it drops the placeholder(s) {attendees}, {date}, {needs}"]
    assert rejected[1]["problems"][0].startswith("it is not a valid f-string template")
    assert rejected[2]["problems"] == ["it is the same as the original template"]


def test_a_code_fence_and_escaped_placeholders_are_repaired_without_a_retry(editor: Any) -> None:
    apo, srv = editor("```text\nBook a room on {{date}} for {attendees} people. Needs: {needs}. Be brief.\n```")
    text, rejected, _ = anyio.run(apo.apply_edit, parent(), "brevity")
    assert text == "Book a room on {date} for {attendees} people. Needs: {needs}. Be brief."
    assert rejected == [] and len(srv.requests) == 1


def test_jinja_templates_keep_their_engine_and_variables(editor: Any) -> None:
    jinja_parent = parent("Room for {{ n }} people on {{ day }}.", engine="jinja")
    apo, _ = editor("Room for {{ n }} people.", "Room for {{ n }} people on {{ day }}, smallest first.")
    text, rejected, _ = anyio.run(apo.apply_edit, jinja_parent, "order")
    assert text == "Room for {{ n }} people on {{ day }}, smallest first."
    assert rejected[0]["problems"] == ["it drops the placeholder(s) {day}"]


def test_template_problems_names_what_is_wrong() -> None:
    assert template_problems(PARENT, NAMES, "f-string") == []
    assert template_problems("", NAMES, "f-string") == ["the revision is empty"]
    assert template_problems("{0} {date} {attendees} {needs}", NAMES, "f-string")[0].startswith(
        "it is not a valid f-string template (positional field {0}"
    )
    assert template_problems("{date.year} {attendees} {needs}", NAMES, "f-string") == []
    assert placeholders_of("{a!r:>10} {b[0]}", "f-string") == {"a", "b"}
    assert repair_edit("  {{date}} and {date}  ", {"date"}, "f-string") == "{{date}} and {date}"


_name = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)
_text = st.text(alphabet=string.ascii_letters + " .,:\n", max_size=12)


@settings(max_examples=60, deadline=None)
@given(expected=st.sets(_name, max_size=4), found=st.sets(_name, max_size=4), filler=_text)
def test_problems_are_exactly_the_dropped_and_invented_names(expected: set, found: set, filler: str) -> None:
    candidate = filler + " ".join("{" + n + "}" for n in sorted(found)) + " end"
    problems = template_problems(candidate, expected, "f-string")
    dropped, invented = expected - found, found - expected
    assert bool(problems) == bool(dropped or invented)
    assert any("drops" in p for p in problems) == bool(dropped)
    assert any("adds" in p for p in problems) == bool(invented)
