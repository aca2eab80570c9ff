"""The web page at ``/`` in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``) against ``recllm serve`` on loopback: pick a user, see ranked items
with their reasons and verified marks, ask in words, record events, build an anonymous
history, and read plain error messages (unknown user, unknown title, service down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import Server

from recllm.serve.api import Recommender
from recllm.serve.browser import headless_chromium, missing_browser

MISSING = missing_browser()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")
WAIT = 60.0
K = 3  # recommendations shown: each reason is written and checked on the server


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(bundle, tmp_path_factory.mktemp("page") / "events.sqlite") as running:
        yield running


@pytest.fixture()
def browser() -> Iterator[Any]:
    driver = headless_chromium(1000, 1400)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, condition: Any) -> Any:
    """``condition``'s first truthy value; elements replaced meanwhile are looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    return waiting.until(condition)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def open_page(driver: Any, server: Server) -> None:
    from selenium.webdriver.support.ui import Select

    driver.get(f"{server.url}/")
    wait(driver, lambda d: by_id(d, "about").text.startswith("Serving"))
    Select(by_id(driver, "k")).select_by_value(str(K))


def reasons_done(driver: Any) -> list[Any]:
    """The recommendation cards once every reason has arrived (else an empty list)."""
    cards = css(driver, "#recs li.card")
    if not cards or css(driver, "#recs .badge.pending"):
        return []
    return cards


def test_a_known_user_sees_reasons_asks_and_records(
    server: Server, browser: Any, bundle: Path
) -> None:
    api = Recommender.load(bundle)
    expected = api.recommend(user_id="1", k=K)
    open_page(browser, server)
    assert f"{api.n_items} items" in by_id(browser, "about").text
    assert not by_id(browser, "api-key").is_displayed()  # no key: users open to loopback

    # pick user 1 from the type-ahead of user ids
    by_id(browser, "user-id").send_keys("1")
    wait(browser, lambda d: css(d, "#user-matches button[data-user-id='1']"))[0].click()
    cards = wait(browser, reasons_done)
    assert [c.get_attribute("data-item-id") for c in cards] == [i.item_id for i in expected.items]
    titles = [c.find_element("css selector", ".title").text for c in cards]
    assert titles == [i.title for i in expected.items]
    reasons = [explain(server, "1", item.item_id) for item in expected.items]
    for card, reason, item in zip(cards, reasons, expected.items, strict=True):
        assert card.find_element("css selector", ".reason").text == reason["text"] != ""
        score = card.find_element("css selector", ".score").text.removeprefix("score ")
        assert abs(float(score) - item.score) < 0.006
        mark = "ok" if reason["verified"] else "no"
        assert card.find_elements("css selector", f".badge.{mark}")
    # the facts behind the first reason, on demand
    first = cards[0]
    assert reasons[0]["claims"]
    assert not any(
        f.is_displayed() for f in first.find_elements("css selector", "details.facts li")
    )
    first.find_element("css selector", "details.facts summary").click()
    facts = first.find_elements("css selector", "details.facts li")
    assert len(facts) == len(reasons[0]["claims"]) and all(f.is_displayed() for f in facts)
    history = css(browser, "#history li")
    assert len(history) == min(10, expected.history_length)
    assert f"{expected.history_length} items" in by_id(browser, "history-summary").text

    # a query in words: the routed intent and slots, then the answer, as the API gives them
    for text, in_scope in (
        ("something like Movie 3", True),
        ("what is the weather in Paris today", False),
    ):
        answer = api.ask(text, user_id="1", k=K)
        assert (answer.intent != "out_of_scope") == in_scope
        box = by_id(browser, "ask-text")
        box.clear()
        box.send_keys(text + "\n")
        wait(browser, lambda d, a=answer: _shows_answer(d, a))
        shown = [li.get_attribute("data-item-id") for li in css(browser, "#ask-items li")]
        assert shown == [i.item_id for i in answer.items]
        if in_scope:
            assert answer.slots["item"] is not None and shown
            assert answer.slots["item"]["title"] in by_id(browser, "slot-item").text
        else:  # a plain sentence, nothing ranked
            assert "outside what the service does" in by_id(browser, "ask-result").text

    # record the top item as watched with 4 stars: history and recommendations change
    top = cards[0].get_attribute("data-item-id")
    rating = cards[0].find_element("css selector", "select")
    rating.find_element("css selector", "option[value='4']").click()
    cards[0].find_element("css selector", "button.record").click()
    wait(browser, lambda d: css(d, "#history li")[0].get_attribute("data-item-id") == top)
    after = wait(browser, reasons_done)
    assert top not in [c.get_attribute("data-item-id") for c in after]
    assert "Recorded" in by_id(browser, "status").text
    assert "★★★★ 4" in css(browser, "#history li")[0].text  # ratings shown where known
    stored = httpx.get(f"{server.url}/v1/users/1/history?limit=1", timeout=30).json()
    assert stored["items"][0] == {"item_id": top, "title": titles[0], "rating": 4.0}
    assert stored["length"] == expected.history_length + 1

    # add a title by searching for it, with a typo: it is recorded for the user too
    by_id(browser, "title-q").send_keys("moive 12")
    wait(browser, lambda d: _first_match(d) == "12")
    css(browser, "#title-matches button")[0].click()
    wait(browser, lambda d: css(d, "#history li")[0].get_attribute("data-item-id") == "12")
    assert "Movie 12" in css(browser, "#history li")[0].text


def explain(server: Server, user_id: str, item_id: str) -> dict[str, Any]:
    """The service's reason (the page asked first, so this one comes from its cache)."""
    body = {"user_id": user_id, "item_id": item_id}
    return dict(httpx.post(f"{server.url}/v1/explain", json=body, timeout=60).json())


def _shows_answer(driver: Any, answer: Any) -> bool:
    intent = css(driver, "#ask-intent")
    return bool(intent) and intent[0].text == answer.intent and answer.text in _asked(driver)


def _first_match(driver: Any) -> str | None:
    buttons = css(driver, "#title-matches button")
    return buttons[0].get_attribute("data-item-id") if buttons else None


def _asked(driver: Any) -> str:
    return str(by_id(driver, "ask-text").get_attribute("value"))


def test_an_anonymous_history_and_plain_errors(bundle: Path, tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    with Server(bundle, tmp_path / "events.sqlite") as server:
        open_page(browser, server)
        # an unknown user is a plain message, not a blank page
        by_id(browser, "user-id").send_keys("nobody" + Keys.ENTER)
        alert = wait(browser, lambda d: by_id(d, "error") if by_id(d, "error").text else None)
        assert "unknown user 'nobody'" in alert.text
        assert not css(browser, "#history li") and not css(browser, "#recs li")

        # anonymous: build a history by title search, keyboard only
        css(browser, "input[name=mode][value=anonymous]")[0].click()
        for query, item in (("movie 5", "5"), ("movie 6", "6")):
            search = by_id(browser, "title-q")
            search.clear()
            search.send_keys(query)
            wait(browser, lambda d, i=item: _first_match(d) == i)
            search.send_keys(Keys.ARROW_DOWN)  # the best match first
            focused = browser.switch_to.active_element
            assert focused.get_attribute("data-item-id") == item
            focused.send_keys(Keys.ENTER)
            wait(
                browser,
                lambda d, i=item: css(d, "#history li")[0].get_attribute("data-item-id") == i,
            )
        assert len(css(browser, "#history li")) == 2
        cards = wait(browser, reasons_done)
        expected = Recommender.load(bundle).recommend(history=["5", "6"], k=K)
        assert [c.get_attribute("data-item-id") for c in cards] == [
            i.item_id for i in expected.items
        ]
        assert all(c.find_element("css selector", ".reason").text for c in cards)

        # a title the catalogue lacks
        search = by_id(browser, "title-q")
        search.clear()
        search.send_keys("qqqq zzzz")
        wait(browser, lambda d: "No title matches" in by_id(d, "title-matches").text)

        # the service goes away: the next action says so plainly
        server.stop()
        by_id(browser, "ask-text").send_keys("something like Movie 3" + Keys.ENTER)
        alert = wait(browser, lambda d: by_id(d, "error") if by_id(d, "error").text else None)
        assert "did not answer" in alert.text


def test_a_protected_service_asks_for_its_key(bundle: Path, tmp_path: Path, browser: Any) -> None:
    """With a key set, users are protected by default: the page shows a key field (only
    then), says plainly that a known user needs the key, and works once it is given."""
    from selenium.webdriver.common.keys import Keys

    env = {"RECLLM_API_KEY": "page-key"}
    with Server(bundle, tmp_path / "events.sqlite", env=env) as server:
        open_page(browser, server)
        assert by_id(browser, "api-key").is_displayed()
        by_id(browser, "user-id").send_keys("1" + Keys.ENTER)
        alert = wait(browser, lambda d: by_id(d, "error") if by_id(d, "error").text else None)
        assert "only with its API key: enter it above" in alert.text
        by_id(browser, "api-key").send_keys("wrong")
        by_id(browser, "user-form").submit()
        wait(browser, lambda d: "refused this API key" in by_id(d, "error").text)
        by_id(browser, "api-key").clear()
        by_id(browser, "api-key").send_keys("page-key")
        by_id(browser, "user-form").submit()
        cards = wait(browser, reasons_done)
        expected = Recommender.load(bundle).recommend(user_id="1", k=K)
        assert [c.get_attribute("data-item-id") for c in cards] == [
            i.item_id for i in expected.items
        ]
        assert not by_id(browser, "error").is_displayed()


UNNAMED_CONTROLS = """
return [...document.querySelectorAll("input, select, button, textarea, summary")]
  .filter((c) => c.getClientRects().length > 0)
  .filter((c) => {
    const labels = c.labels ? [...c.labels].map((l) => l.textContent.trim()).join(" ") : "";
    const own = ["BUTTON", "SUMMARY"].includes(c.tagName) ? c.textContent.trim() : "";
    return !(c.getAttribute("aria-label") || labels || own);
  })
  .map((c) => c.outerHTML);
"""
FOREIGN_URLS = """
const urls = performance.getEntriesByType("resource").map((e) => e.name)
  .concat([...document.querySelectorAll("[src], [href]")].map((e) => e.src || e.href));
return urls.filter((u) => !u.startsWith(location.origin + "/") && !u.startsWith("data:"));
"""
OVERFLOW = """
const width = document.documentElement.clientWidth;
const wide = [...document.querySelectorAll("body *")]
  .filter((e) => e.getClientRects().length > 0 && e.getBoundingClientRect().right > width + 1)
  .map((e) => e.tagName + "#" + e.id + "." + e.className);
return [document.documentElement.scrollWidth, width, wide];
"""


def test_a_phone_sized_window_by_keyboard_alone(server: Server) -> None:
    """A 360 px wide window, driven with the keyboard only: every control has a name, nothing
    is wider than the screen, and every asset comes from the service itself (no CDN)."""
    from selenium.webdriver.common.keys import Keys

    driver = headless_chromium(500, 800)  # a window is at least 500 px wide: emulate a phone
    metrics = {"width": 360, "height": 800, "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        open_page(driver, server)
        by_id(driver, "user-id").send_keys("2" + Keys.ENTER)
        cards = wait(driver, reasons_done)
        assert all(c.find_element("css selector", ".reason").text for c in cards)
        by_id(driver, "title-q").send_keys("movie 7")
        wait(driver, lambda d: _first_match(d) == "7")
        by_id(driver, "ask-text").send_keys("something like Movie 3" + Keys.ENTER)
        wait(driver, lambda d: css(d, "#ask-intent"))

        assert driver.execute_script(UNNAMED_CONTROLS) == []
        assert driver.execute_script(FOREIGN_URLS) == []
        scroll_width, width, wide = driver.execute_script(OVERFLOW)
        assert width <= 360 and scroll_width <= width and wide == []

        # Tab from "How many" to the first card's record button, open its facts, record it
        top = cards[0].get_attribute("data-item-id")
        focused = by_id(driver, "k")
        focused.send_keys(Keys.ESCAPE)  # focus the select without changing it
        for _ in range(6):
            driver.switch_to.active_element.send_keys(Keys.TAB)
            focused = driver.switch_to.active_element
            if "record" in (focused.get_attribute("class") or ""):
                break
        assert "record" in focused.get_attribute("class")
        assert focused.find_element("xpath", "ancestor::li").get_attribute("data-item-id") == top
        focused.send_keys(Keys.TAB)
        summary = driver.switch_to.active_element
        assert summary.tag_name == "summary"
        summary.send_keys(Keys.ENTER)
        assert cards[0].find_element("css selector", "details.facts").get_attribute("open")
        summary.send_keys(Keys.SHIFT, Keys.TAB)
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        wait(driver, lambda d: css(d, "#history li")[0].get_attribute("data-item-id") == top)
        assert "Recorded for user 2" in by_id(driver, "status").text
    finally:
        driver.quit()
