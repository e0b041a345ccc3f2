"""The chat page in a real headless browser (Debian's chromium driven by Playwright) against the
local gateway serving the messages function with the scripted model streaming its answer.

Needs ``/usr/bin/chromium`` (``sudo apt-get install -y chromium``; Playwright's own browser
download is not used): without it the test is skipped, saying so. The screenshot of the run is
kept at ``.artifacts/chat_page.png`` (gitignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.types import ModelType
from infra.local.dev_tokens import DevTokens
from infra.local.gateway import LocalGateway
from infra.local.stack import WEB_DIR

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"
TEXT = "Hello from a streamed reply, written piece by piece."
REPLY = f"<response><thought>t</thought><actions>REPLY</actions><text>{TEXT}</text></response>"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed: sudo apt-get install -y chromium (make install says so)"
)


@pytest.fixture
def page_gateway(messages_fn, tmp_path):
    tokens = DevTokens(tmp_path)
    server = LocalGateway(
        messages_fn.handler,
        port=0,
        authorizer=tokens.authorize,
        public_routes={("GET", "/health")},
        page_dir=WEB_DIR,
        page_token=lambda: tokens.mint("page-user", name="you"),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_the_page_sends_a_message_and_shows_the_reply_streaming_in_with_its_actions(page_gateway, browser, scripted):
    scripted.stream_chars, scripted.stream_delay_ms = 4, 40  # about 13 chunks over half a second
    scripted.script(ModelType.TEXT_LARGE, REPLY)
    page = browser.new_page(viewport={"width": 1000, "height": 640})
    page.goto(f"{page_gateway.url.replace('127.0.0.1', 'localhost')}/")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    assert "Eliza" in page.locator("#agent option").all_inner_texts()
    page.select_option("#agent", label="Eliza")  # other tests of the session may have stored more agents
    assert page.locator("#token-form").is_hidden()  # the local stack handed the page a token

    page.fill("#text", "Hi Eliza, who are you?")
    page.click("#send button")
    reply = page.locator("#messages li.agent").last
    reply.locator(".text").filter(has_text="Hello").wait_for(timeout=10_000)
    partial = reply.locator(".text").inner_text()
    page.wait_for_selector("#messages li.agent[data-done=true]", timeout=15_000)
    try:
        assert partial != TEXT and TEXT.startswith(partial)  # seen while it was still streaming
        assert reply.locator(".text").inner_text() == TEXT
        assert reply.locator(".actions span").all_inner_texts() == ["REPLY"]
        assert page.locator("#rooms li.current").count() == 1  # the DM room, remembered
        page.reload()  # history from the API
        page.wait_for_selector("body[data-ready=true]")
        page.select_option("#agent", label="Eliza")
        page.locator("#messages li.agent .text", has_text=TEXT).wait_for(timeout=10_000)
        assert page.locator("#messages li.mine .text").last.inner_text() == "Hi Eliza, who are you?"
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat_page.png"))
        scripted.stream_chars, scripted.stream_delay_ms = 0, 0


def test_a_browser_not_on_this_machine_gets_the_page_without_a_token(page_gateway):
    import httpx

    on_this_machine = httpx.get(f"{page_gateway.url}/").text
    rebound = httpx.get(f"{page_gateway.url}/", headers={"Host": "attacker.example"}).text
    assert 'name="agent-token" content="ey' in on_this_machine
    assert 'name="agent-token" content=""' in rebound
    assert httpx.get(f"{page_gateway.url}/web/%2e%2e%2fpyproject.toml").status_code == 404  # names only, no paths
