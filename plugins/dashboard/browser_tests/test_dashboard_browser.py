"""The dashboard in headless Chromium against ``agl store serve`` over a store filled by real ``Trainer.dev`` runs:
every view loads, what it shows equals what the REST API returns, the trace tree follows parent ids, a new rollout
appears without a reload, and a server with a token refuses the page until the token is entered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from conftest import TOKEN, Served
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 30  # seconds a condition may take to hold (polling, a loaded machine): a bound, not a measured figure


def until(driver: Any, condition: Any, message: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition, message)


def open_view(driver: Any, served: Served, hash_: str) -> None:
    """Load the page at ``#/hash_`` and wait until its view has shown data once."""
    name = hash_.split("?", maxsplit=1)[0]
    driver.get(served.dashboard + "#/" + hash_)
    until(driver, lambda d: (d.execute_script("return document.getElementById('main').dataset.loaded") or "")
          .startswith(name + "@"), f"view {name} did not load")  # fmt: skip


def texts(driver: Any, selector: str, attribute: Optional[str] = None) -> List[str]:
    """Text (or an attribute) of every match, read in one script: live updates redraw tables between two calls."""
    script = (
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => arguments[1] ? e.getAttribute(arguments[1]) : (e.innerText ?? e.textContent).trim())"
    )
    return list(driver.execute_script(script, selector, attribute))


def click(driver: Any, selector: str) -> None:
    """Click the first match, found and clicked in one script (a live redraw cannot come in between)."""
    assert driver.execute_script("const e = document.querySelector(arguments[0]); e && e.click(); return !!e", selector)


def shown_rollouts(driver: Any) -> List[str]:
    return texts(driver, "tbody tr[data-rollout-id]", "data-rollout-id")


def rest_rollout_ids(served: Served, **query: Any) -> List[str]:
    params: Dict[str, Any] = {"sort_by": "start_time", "sort_order": "desc", "limit": 50, **query}
    return [r["rollout_id"] for r in served.api.get("rollouts", params=params).json()["items"]]


def spans_of(served: Served, rollout_id: str) -> List[Dict[str, Any]]:
    return served.api.get("spans", params={"rollout_id": rollout_id, "limit": 1000}).json()["items"]


def rollout_with(served: Served, index: int) -> str:
    for rollout in served.api.get("rollouts", params={"limit": 100}).json()["items"]:
        if rollout["input"]["index"] == index:
            return str(rollout["rollout_id"])
    raise AssertionError(f"no rollout for task {index}")


VIEWS = ["rollouts", "traces", "traces?tab=tree", "traces?tab=waterfall", "traces?tab=tokens", "traces?tab=table",
         "resources", "runners", "rewards"]  # fmt: skip


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_loads(page: Any, served: Served, screenshots: Path, view: str) -> None:
    open_view(page, served, view)
    assert not texts(page, "main .error"), texts(page, "main .error")
    page.save_screenshot(str(screenshots / f"dashboard-{view.replace('?tab=', '-')}.png"))


def test_dark_theme_follows_the_system(page: Any, served: Served, screenshots: Path) -> None:
    page.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        open_view(page, served, f"traces?rollout={rollout_with(served, 7)}")
        background = page.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        page.save_screenshot(str(screenshots / "dashboard-traces-dark.png"))
    finally:
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_rollout_pages_filters_and_search_equal_the_rest_api(page: Any, served: Served) -> None:
    open_view(page, served, "rollouts?limit=5")
    assert shown_rollouts(page) == rest_rollout_ids(served, limit=5, offset=0)
    total = served.api.get("rollouts", params={"limit": 0}).json()["total"]
    assert texts(page, "[data-test=range]")[0] == f"1\N{EN DASH}5 of {total}"

    click(page, "[data-test=next]")
    second = rest_rollout_ids(served, limit=5, offset=5)
    until(page, lambda d: shown_rollouts(d) == second, "page 2 differs from the REST API's")
    assert "offset=5" in page.current_url  # the page is in the address: a bookmark or reload shows it again

    click(page, "input[name=status][value=failed]")
    failed = rest_rollout_ids(served, status_in=["failed"], limit=5)
    assert failed  # one task of the run fails
    until(page, lambda d: shown_rollouts(d) == failed, "the failed filter differs from the REST API's")
    click(page, "input[name=status][value=failed]")

    part = rest_rollout_ids(served)[3][3:8]
    page.find_element(By.ID, "rollout-search").send_keys(part)
    matching = rest_rollout_ids(served, rollout_id_contains=part, limit=5)
    until(page, lambda d: shown_rollouts(d) == matching, "the id search differs from the REST API's")

    page.find_element(By.ID, "rollout-search").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    page.find_element(By.CSS_SELECTOR, "#rollout-order option[value=asc]").click()
    oldest = rest_rollout_ids(served, sort_order="asc", limit=5)
    until(page, lambda d: shown_rollouts(d) == oldest, "ascending order differs from the REST API's")


def test_the_mode_filter_equals_the_rest_api(page: Any, served: Served) -> None:
    created = served.api.post("queues/rollouts/enqueue", json={"rollouts": [{"input": {"index": 98}, "mode": "test"}]})
    held_out = created.json()[0]["rollout_id"]
    served.api.post(f"rollouts/{held_out}", json={"status": "cancelled"})  # no runner should take it
    open_view(page, served, "rollouts")

    click(page, "input[name=mode][value=test]")
    assert rest_rollout_ids(served, mode_in=["test"]) == [held_out]
    until(page, lambda d: shown_rollouts(d) == [held_out], "the test-mode filter differs from the REST API's")
    assert "mode=test" in page.current_url

    click(page, "input[name=mode][value=train]")
    both = rest_rollout_ids(served, mode_in=["train", "test"])
    assert held_out in both and len(both) > 1  # the dev runs' rollouts are training rollouts
    until(page, lambda d: shown_rollouts(d) == both, "the train+test filter differs from the REST API's")

    click(page, "input[name=mode][value=test]")
    training = rest_rollout_ids(served, mode_in=["train"])
    until(page, lambda d: shown_rollouts(d) == training, "the train filter differs from the REST API's")
    assert held_out not in training


def test_a_row_expands_to_its_attempts_and_raw_json(page: Any, served: Served) -> None:
    open_view(page, served, "rollouts")
    first = shown_rollouts(page)[0]
    click(page, f"tr[data-rollout-id='{first}'] button.expand")
    until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.detail"), "the row did not expand")
    attempts = served.api.get(f"rollouts/{first}/attempts").json()["items"]
    links = texts(page, "tr.detail td a")
    assert links == [a["attempt_id"] for a in attempts]
    raw = page.execute_script("return document.querySelector('tr.detail details.json pre').textContent")
    assert json.loads(raw)["rollout_id"] == first


def test_the_trace_tree_follows_the_spans_parent_ids(page: Any, served: Served) -> None:
    rollout_id = rollout_with(served, 2)
    spans = {s["span_id"]: s for s in spans_of(served, rollout_id)}
    assert any(s["parent_id"] in spans for s in spans.values())  # the run nests LLM calls under operations
    open_view(page, served, f"traces?rollout={rollout_id}&tab=tree")
    shown = page.execute_script(
        "return [...document.querySelectorAll('.span-tree li[data-span-id]')].map(li => [li.dataset.spanId,"
        " li.parentElement.closest('li[data-span-id]')?.dataset.spanId ?? null])"
    )
    assert sorted(span_id for span_id, _ in shown) == sorted(spans)
    for span_id, shown_parent in shown:
        span = spans[span_id]
        expected = span["parent_id"] if span["parent_id"] in spans else None
        assert shown_parent == expected, span["name"]

    page.find_element(By.ID, "tab-waterfall").click()
    until(page, lambda d: texts(d, ".waterfall g[data-span-id]", "data-span-id"), "no waterfall")
    assert sorted(texts(page, ".waterfall g[data-span-id]", "data-span-id")) == sorted(spans)
    page.find_element(By.ID, "tab-waterfall").send_keys(Keys.ARROW_RIGHT)  # tabs move with the arrow keys
    until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#tab-tokens[aria-selected=true]"), "arrow key ignored")


def test_conversation_shows_turns_and_tool_calls(page: Any, served: Served) -> None:
    open_view(page, served, f"traces?rollout={rollout_with(served, 1)}")
    roles = texts(page, ".conversation .turn", "data-role")
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert texts(page, "[data-test=tool-call] code") == ['get_weather({"city": "Paris"})']
    assert texts(page, ".conversation .turn .content")[-1] == "It is sunny in Paris."


@pytest.mark.parametrize("index, expected", [(1, "All 2 LLM calls carry"), (3, "2 of 2 LLM calls have no token ids")])
def test_token_ids_of_each_llm_call(page: Any, served: Served, index: int, expected: str) -> None:
    rollout_id = rollout_with(served, index)
    open_view(page, served, f"traces?rollout={rollout_id}&tab=tokens")
    assert expected in texts(page, "#trace-panel [role=status]")[0]
    for span in spans_of(served, rollout_id):
        if "prompt_token_ids" in span["attributes"]:
            cells = texts(page, f"tr[data-span-id='{span['span_id']}'] td")
            assert cells[2:4] == [str(len(span["attributes"]["prompt_token_ids"])),
                                  str(len(span["attributes"]["response_token_ids"]))]  # fmt: skip


def test_resources_diff_the_prompt_template_change(page: Any, served: Served) -> None:
    open_view(page, served, "resources")
    versions = served.api.get("resources", params={"sort_by": "create_time", "sort_order": "desc"}).json()["items"]
    assert texts(page, "article[data-resources-id]", "data-resources-id") == [v["resources_id"] for v in versions]
    added = " ".join(texts(page, f"article[data-resources-id='{versions[0]['resources_id']}'] pre.diff ins"))
    assert "concise" in added and "get_weather" in added


def stored_rewards(served: Served) -> Dict[str, Tuple[str, float]]:
    """rollout id -> (resources id, reward) of every finished rollout with a reward span."""
    out: Dict[str, Tuple[str, float]] = {}
    for rollout in served.api.get("rollouts", params={"status_in": ["succeeded", "failed"]}).json()["items"]:
        for span in spans_of(served, rollout["rollout_id"]):
            value = span["attributes"].get("agentlightning.reward.0.value")
            if span["name"] == "agentlightning.annotation" and value is not None:
                out[rollout["rollout_id"]] = (rollout["resources_id"], value)
    return out


def test_runners_and_rewards_equal_the_rest_api(page: Any, served: Served) -> None:
    open_view(page, served, "runners")
    workers = served.api.get("workers", params={"sort_by": "worker_id"}).json()["items"]
    assert texts(page, "tr[data-worker-id]", "data-worker-id") == [w["worker_id"] for w in workers]

    by_rollout = stored_rewards(served)
    open_view(page, served, "rollouts")
    for rollout_id in shown_rollouts(page):
        expected = str(by_rollout[rollout_id][1]) if rollout_id in by_rollout else "\N{EM DASH}"
        assert texts(page, f"[data-reward-for='{rollout_id}']") == [expected]

    page.get("about:blank")  # a fresh tab: no rewards known yet, no requests of the rollouts view counted
    open_view(page, served, "rewards")
    rewards: Dict[str, List[float]] = {}
    for resources_id, value in by_rollout.values():
        rewards.setdefault(resources_id, []).append(value)
    for resources_id, values in rewards.items():
        cells = texts(page, f"tr[data-resources-id='{resources_id}'] td")
        assert cells[1:3] == [str(len(values)), f"{sum(values) / len(values):.3f}"]
    assert len(texts(page, ".chart circle")) == sum(len(v) for v in rewards.values())
    # all rewards of the view in one request (the server reads the reward spans), not one span query per rollout
    requested = page.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert [u for u in requested if "/v1/agl/spans" in u] == []
    assert len([u for u in requested if "/v1/agl/rollouts/rewards?" in u]) == 1


def test_a_new_rollout_appears_without_a_reload(page: Any, served: Served) -> None:
    open_view(page, served, "rollouts")
    page.execute_script("window.__sameDocument = true")
    created = served.api.post("queues/rollouts/enqueue", json={"rollouts": [{"input": {"index": 99}}]}).json()
    new_id = created[0]["rollout_id"]
    until(page, lambda d: new_id in shown_rollouts(d), "the new rollout did not appear")
    assert page.execute_script("return window.__sameDocument") is True
    assert "queuing" in texts(page, f"tr[data-rollout-id='{new_id}']")[0]
    served.api.post(f"rollouts/{new_id}", json={"status": "cancelled"})
    until(
        page, lambda d: "cancelled" in texts(d, f"tr[data-rollout-id='{new_id}']")[0], "the status change did not show"
    )


def test_a_server_with_a_token_refuses_the_page_until_it_is_entered(
    page: Any, served_with_token: Served, screenshots: Path
) -> None:
    page.get(served_with_token.dashboard + "#/rollouts")
    until(page, lambda d: d.find_element(By.ID, "login").get_attribute("open") is not None, "no login prompt")
    assert not shown_rollouts(page)
    page.save_screenshot(str(screenshots / "dashboard-login.png"))

    field = page.find_element(By.ID, "login-token")
    field.send_keys("wrong" + Keys.ENTER)
    until(page, lambda d: d.find_element(By.ID, "login-error").is_displayed(), "a wrong token was not refused")
    assert not shown_rollouts(page)

    field.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    field.send_keys(TOKEN + Keys.ENTER)
    expected = rest_rollout_ids(served_with_token)
    until(page, lambda d: shown_rollouts(d) == expected, "rollouts did not load after the token")
    assert page.find_element(By.ID, "login").get_attribute("open") is None
    assert TOKEN not in page.current_url
