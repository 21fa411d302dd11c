"""The demo chat (/demo) in Chromium: a visitor chats, reloads, watches from a second tab, then
logs in and the history becomes the user's."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Server, hold_requests
from tests.browser.test_console import HOSTILE


def chat(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def messages(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_role("list", name="Conversation").get_by_role("listitem")


def test_a_visitor_keeps_the_history_across_reloads_and_tabs_then_claims_it_by_logging_in(
    context: BrowserContext, server: Server, api: httpx.Client, screenshots: Path
) -> None:
    first = context.new_page()
    first.goto(f"{server.base_url}/demo")
    chat(first, "Hello there")
    expect(messages(first)).to_have_count(2)
    expect(messages(first).last).to_contain_text("You said: “Hello there”.")
    expect(messages(first).last).to_contain_text("(chatkeep keeps this history.)")

    first.reload()
    expect(messages(first)).to_have_count(2)
    expect(messages(first).first).to_contain_text("Hello there")

    # A second tab of the same browser is the same visitor, and follows the first live.
    second = context.new_page()
    second.goto(f"{server.base_url}/demo")
    expect(messages(second)).to_have_count(2)
    expect(second.locator("#live")).to_have_text("● Live")
    chat(first, "Second question")
    expect(messages(second)).to_have_count(4)
    expect(messages(second).last).to_contain_text("(chatkeep keeps this history.)")

    conversation_id = first.evaluate("localStorage.getItem('chatkeep-demo-conversation')")
    assert api.get(f"/v1/conversations/{conversation_id}").json()["user_id"] is None

    name = f"ada{uuid.uuid4().hex[:6]}"
    first.get_by_label("Name").fill(name)
    first.get_by_role("button", name="Log in").click()
    expect(first.locator("#status")).to_contain_text("1 conversation(s) moved to you")
    expect(first.locator("#who")).to_have_text(f"Logged in as demo:{name}")
    expect(messages(first)).to_have_count(4)
    assert api.get(f"/v1/conversations/{conversation_id}").json()["user_id"] == f"demo:{name}"

    # The other tab follows the log-in, and the user's tab keeps chatting live with it.
    expect(second.locator("#who")).to_have_text(f"Logged in as demo:{name}")
    expect(messages(second)).to_have_count(4)
    expect(second.locator("#live")).to_have_text("● Live")
    chat(first, "Now as a user")
    expect(messages(second)).to_have_count(6)
    expect(messages(first).last).to_contain_text("(chatkeep keeps this history.)")
    first.screenshot(path=screenshots / "demo.png", full_page=True)

    # Logging out starts a new anonymous chat; the user's history is not the visitor's.
    first.get_by_role("button", name="Log out").click()
    expect(messages(first)).to_have_count(0)


def test_what_is_typed_while_the_page_starts_waits_for_its_conversation(
    page: Page, server: Server
) -> None:
    # Hold the look-up of the visitor's newest conversation: the page cannot know where to send.
    next_held = hold_requests(page, "**/v1/conversations?*")
    page.goto(f"{server.base_url}/demo")
    expect(page.get_by_label("Message")).to_be_disabled()
    next_held().continue_()
    chat(page, "Typed at once")
    expect(messages(page)).to_have_count(2)
    expect(messages(page).first).to_contain_text("Typed at once")


def test_what_a_visitor_writes_is_shown_as_text(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/demo")
    chat(page, HOSTILE)
    expect(messages(page)).to_have_count(2)
    expect(messages(page).first.locator("p")).to_have_text(HOSTILE)
    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("window.__xss") is None


def test_fits_a_phone(page: Page, server: Server, screenshots: Path) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{server.base_url}/demo")
    chat(page, "Hi from a phone")
    expect(messages(page)).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=screenshots / "demo-phone.png")
