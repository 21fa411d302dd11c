"""The operator console (/console) in Chromium: sign in, find, read with paging, search, watch
live, export, erase; what users wrote stays text."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Server, hold_requests

# Would set window.__xss if it ever ran as HTML or script.
HOSTILE = (
    '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    "<b>bold</b> & 'quotes' \"double\""
)


def seed(
    api: httpx.Client, user: str, contents: list[str], *, title: str = "Billing", **metadata: Any
) -> str:
    """A conversation of ``user`` holding ``contents`` (alternating user and assistant)."""
    conversation_id = str(uuid.uuid4())
    created = api.post(
        "/v1/conversations",
        json={"id": conversation_id, "title": title, "user_id": user, "metadata": metadata},
    )
    assert created.status_code == 201, created.text
    for start in range(0, len(contents), 100):
        batch = [
            {"role": "user" if n % 2 == 0 else "assistant", "content": content}
            for n, content in enumerate(contents[start : start + 100], start=start)
        ]
        url = f"/v1/conversations/{conversation_id}/messages"
        appended = api.post(url, json={"messages": batch})
        assert appended.status_code == 201, appended.text
    return conversation_id


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API key").fill(server.api_key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def find(page: Page, user: str, metadata: str = "") -> None:
    page.get_by_label("User id", exact=True).first.fill(user)
    page.get_by_label("Metadata contains (JSON object)").fill(metadata)
    page.get_by_role("button", name="Find").click()


def test_the_key_is_kept_in_the_tab_only_never_in_a_cookie(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API key").fill("ck_notakey_0000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#status")).to_contain_text("API key")
    expect(page.locator("main")).to_be_hidden()

    sign_in(page, server)
    assert page.context.cookies() == []
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("sessionStorage.getItem('chatkeep-console-key')") == server.api_key
    assert page.evaluate("localStorage.length") == 0
    # A reload of the tab stays signed in; signing out forgets the key.
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("sessionStorage.getItem('chatkeep-console-key')") is None


def test_finds_a_users_conversations_and_reads_one_page_by_page(
    page: Page, server: Server, api: httpx.Client, user: str, screenshots: Path
) -> None:
    long = seed(api, user, [f"message {n}" for n in range(60)], title="Support", team="blue")
    seed(api, user, ["another"], title="Other team", team="red")
    sign_in(page, server)

    find(page, user, '{"team": "blue"}')
    results = page.get_by_role("list", name="Conversations found").get_by_role("listitem")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("60 messages")
    find(page, user)
    expect(results).to_have_count(2)

    results.filter(has_text="Support").get_by_role("button").click()
    messages = page.get_by_role("list", name="Messages").get_by_role("listitem")
    expect(messages).to_have_count(50)
    expect(messages.first).to_contain_text("message 10")
    expect(page.locator("#conversation-facts")).to_contain_text(long)
    page.get_by_role("button", name="Older messages").click()
    expect(messages).to_have_count(60)
    expect(messages.first).to_contain_text("message 0")
    expect(page.get_by_role("button", name="Older messages")).to_be_hidden()
    page.screenshot(path=screenshots / "console.png", full_page=True)


def test_a_metadata_filter_that_is_not_json_is_named(page: Page, server: Server) -> None:
    sign_in(page, server)
    find(page, "anyone", "{not json")
    expect(page.locator("#status")).to_contain_text("metadata")


def test_what_users_wrote_is_shown_as_text_never_run(
    page: Page, server: Server, api: httpx.Client, user: str
) -> None:
    seed(api, user, [HOSTILE, f"reply {HOSTILE}"], title=HOSTILE, note=HOSTILE)
    sign_in(page, server)
    find(page, user)
    page.get_by_role("button", name=HOSTILE).click()
    messages = page.get_by_role("list", name="Messages")
    expect(messages.get_by_role("listitem")).to_have_count(2)
    expect(messages.get_by_role("listitem").first.locator("p")).to_have_text(HOSTILE)
    expect(page.locator("#conversation-title")).to_have_text(HOSTILE)

    page.get_by_label("Words or text").fill("onerror")
    page.get_by_label("User id", exact=True).nth(1).fill(user)
    page.get_by_role("button", name="Search").click()
    hits = page.get_by_role("list", name="Search results").get_by_role("listitem")
    expect(hits).to_have_count(2)
    # The snippet's <mark> is rebuilt as an element; everything else in it is text.
    expect(hits.first.locator("mark").first).to_have_text("onerror")
    expect(hits.first.locator(".snippet")).to_contain_text('<img src=x onerror="window.__xss=1">')

    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_content_security_policy_stops_inline_script(page: Page, server: Server) -> None:
    response = page.goto(f"{server.base_url}/console")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inline = 1";
            document.body.append(script);
        }"""
    )
    assert page.evaluate("window.__inline") is None


def open_seeded(
    page: Page, server: Server, api: httpx.Client, user: str, contents: list[str]
) -> tuple[str, Locator]:
    """A conversation of ``contents``, opened in the console: its id and its messages' items."""
    conversation_id = seed(api, user, contents)
    sign_in(page, server)
    find(page, user)
    page.get_by_role("button", name="Billing").click()
    messages = page.get_by_role("list", name="Messages").get_by_role("listitem")
    expect(messages).to_have_count(len(contents))
    return conversation_id, messages


def test_watches_a_conversation_live(
    page: Page, server: Server, api: httpx.Client, user: str
) -> None:
    conversation_id, messages = open_seeded(page, server, api, user, ["first"])

    page.get_by_label("Watch live").check()
    # Said once the server has answered the stream: from then on, nothing is missed.
    expect(page.locator("#live")).to_have_text("Watching live.")
    api.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"messages": [{"role": "assistant", "content": "arrived live"}]},
    )
    expect(messages).to_have_count(2)
    expect(messages.last).to_contain_text("arrived live")


def test_watching_catches_up_with_what_came_since_the_page_was_read(
    page: Page, server: Server, api: httpx.Client, user: str
) -> None:
    conversation_id, messages = open_seeded(page, server, api, user, ["first"])
    api.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"messages": [{"role": "assistant", "content": "before watching"}]},
    )
    page.get_by_label("Watch live").check()
    expect(messages).to_have_count(2)
    expect(messages.last).to_contain_text("before watching")


def test_a_catch_up_page_read_before_an_event_does_not_undo_it(
    page: Page, server: Server, api: httpx.Client, user: str
) -> None:
    conversation_id, messages = open_seeded(page, server, api, user, ["first", "second"])

    # The catch-up read's answer is held while "second" is deleted and its event applied.
    next_held = hold_requests(page, lambda url: urlsplit(url).path.endswith("/messages"))
    page.get_by_label("Watch live").check()
    expect(page.locator("#live")).to_have_text("Watching live.")
    catch_up = next_held()
    stale = catch_up.fetch()
    second = api.get(f"/v1/conversations/{conversation_id}/messages").json()["items"][-1]
    api.delete(f"/v1/conversations/{conversation_id}/messages/{second['id']}")
    expect(messages).to_have_count(1)
    with page.expect_response(lambda response: response.request == catch_up.request):
        catch_up.fulfill(response=stale)
    page.wait_for_timeout(200)  # the answer parsed and applied
    expect(messages).to_have_count(1)


def test_downloads_a_users_export(
    page: Page, server: Server, api: httpx.Client, user: str, tmp_path: Path
) -> None:
    conversation_id = seed(api, user, ["one", "two"])
    sign_in(page, server)
    page.get_by_label("User id", exact=True).nth(2).fill(user)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download export").click()
    saved = tmp_path / "export.ndjson"
    download.value.save_as(saved)
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert lines[0]["type"] == "header"
    assert lines[0]["user_id"] == user
    assert [line["id"] for line in lines if line["type"] == "conversation"] == [conversation_id]
    assert lines[-1]["messages"] == 2


def test_erases_a_user_only_after_the_id_is_typed_again(
    page: Page, server: Server, api: httpx.Client, user: str
) -> None:
    seed(api, user, ["to be erased"])
    sign_in(page, server)
    erase = page.get_by_role("button", name="Erase everything of this user")
    page.get_by_label("User id to erase").fill(user)
    expect(erase).to_be_disabled()
    page.get_by_label("Type the user id again to confirm").fill(user + "x")
    expect(erase).to_be_disabled()
    page.get_by_label("Type the user id again to confirm").fill(user)
    expect(erase).to_be_enabled()
    erase.click()
    expect(page.locator("#user-result")).to_contain_text(
        f"Erased {user}: 1 conversations, 1 messages."
    )
    assert api.get("/v1/conversations", params={"user_id": user}).json()["items"] == []


def test_is_used_with_the_keyboard_alone(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/console")
    # The key field has the focus on arrival; Enter signs in, and the focus moves on.
    page.keyboard.type(server.api_key)
    page.keyboard.press("Enter")
    expect(page.get_by_label("User id", exact=True).first).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Metadata contains (JSON object)")).to_be_focused()
    page.keyboard.press("Tab")
    find_button = page.get_by_role("button", name="Find")
    expect(find_button).to_be_focused()
    # The focused control is outlined (focus-visible after keyboard use).
    outline = find_button.evaluate("element => getComputedStyle(element).outlineStyle")
    assert outline == "solid"


def test_fits_a_phone(
    page: Page, server: Server, api: httpx.Client, user: str, screenshots: Path
) -> None:
    width = 360
    seed(api, user, ["a long line " * 40, "short"])
    page.set_viewport_size({"width": width, "height": 780})
    sign_in(page, server)
    find(page, user)
    page.get_by_role("button", name="Billing").click()
    expect(page.get_by_role("list", name="Messages").get_by_role("listitem")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=screenshots / "console-phone.png", full_page=True)
