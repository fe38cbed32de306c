"""The dashboard in headless Chromium against the real service and the native simulators
(issue 8, item 5): it shows the state, writes through its forms, follows upstream changes
live without a reload, shares one event stream between tabs, asks for the token when one
is configured, is usable by keyboard, and loads nothing from another origin."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Request, expect

from tests.browser.conftest import ARTIFACTS, ROOT, Demo, native_settings
from tests.e2e.conftest import run_service

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT_MS = 10_000  # generous: two cores shared with other work
expect.set_options(timeout=TIMEOUT_MS)

TOKEN_KEY = "shared-state:api-token"
ANSWERED_ERROR = re.compile(r"Failed to load resource: the server responded with a status of")
FORM_CONTROLS = {
    "llm-provider",
    "llm-model",
    "llm-temperature",
    "llm-maxTokens",
    "ui-theme",
    "ui-fontSize",
}


@dataclass
class Tab:
    """A browser context on the service, what it requested, and its first page."""

    context: BrowserContext
    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors

    def streams(self) -> list[str]:
        return [url for url in self.requests if "/api/shared-state/events" in url]

    def foreign(self, origin: str) -> list[str]:
        return [url for url in self.requests if not url.startswith(origin + "/")]


async def open_tab(browser: Browser, origin: str, **options: Any) -> Tab:
    context = await browser.new_context(base_url=origin, **options)
    tab = Tab(context, await context.new_page())

    def record(request: Request) -> None:
        tab.requests.append(request.url)

    context.on("request", record)
    tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        # An error answer the test provoked (a 422, a 502) is logged by the browser too.
        if message.type == "error" and not ANSWERED_ERROR.match(message.text):
            tab.errors.append(message.text)

    tab.page.on("console", console)
    return tab


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser, demo: Demo) -> AsyncIterator[Tab]:
    """A fresh context (no storage shared with other tests), the dashboard loaded and
    showing the state; the simulators' faults are cleared afterwards."""
    opened = await open_tab(browser, demo.service.url, viewport={"width": 1280, "height": 900})
    await opened.page.goto("/")
    await expect(opened.page.locator("#connection")).to_have_text("Live")
    try:
        yield opened
        assert opened.foreign(demo.service.url) == []  # nothing left the service's origin
        assert opened.errors == []  # no script error, no CSP refusal, no failed load
    finally:
        await opened.context.close()
        await demo.clear_faults()


async def test_the_dashboard_shows_the_merged_state(tab: Tab, demo: Demo) -> None:
    """User, settings, workspaces, conversations and sources, as the service holds them;
    a screenshot goes to the test artifacts (and the README with
    SHARED_STATE_UPDATE_SCREENSHOT=1)."""
    page = tab.page
    state = (await demo.service.get("")).json()

    await expect(page.locator("#version")).to_have_text(str(state["version"]))
    await expect(page.locator("#user")).to_contain_text("Ada Lovelace")
    await expect(page.locator("#settings")).to_contain_text(state["settings"]["llm"]["model"])
    await expect(page.locator("#llm-model")).to_have_value(state["settings"]["llm"]["model"])
    await expect(page.locator("#workspaces li")).to_have_count(len(state["workspaces"]))
    await expect(page.locator("#conversations li")).to_have_count(len(state["conversations"]))
    await expect(page.locator("#workspaces")).to_contain_text("Engineering Docs")
    for name in ("anythingllm", "librechat"):
        row = page.locator(f'#sources tr[data-source="{name}"]')
        await expect(row.locator(".badge")).to_have_text("ok")
        await expect(row.locator("time")).to_have_text(re.compile(r"^\d+ s ago$"))
    await expect(page.locator("#event-log li").first).to_contain_text("snapshot")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
    if os.environ.get("SHARED_STATE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "dashboard.png", ROOT / "docs" / "dashboard.png")


async def test_a_model_changed_in_the_form_reaches_the_upstreams(tab: Tab, demo: Demo) -> None:
    """The LLM form writes through: the simulated AnythingLLM and LibreChat's default
    preset hold the new model, and the page says it was saved."""
    page = tab.page
    await page.get_by_label("Model", exact=True).fill("gpt-4o-mini")
    await page.get_by_label("Temperature (0 to 2)").fill("0.3")
    await page.get_by_role("button", name="Save LLM settings").click()

    await expect(page.locator("#llm-result")).to_contain_text("Saved")
    await expect(page.locator("#settings")).to_contain_text("gpt-4o-mini")
    allm = (await demo.anythingllm.get("/_sim/state")).json()["settings"]
    assert allm["OpenAiModelPref"] == "gpt-4o-mini"
    presets = (await demo.librechat.get("/_sim/state")).json()["presets"]
    default = next(preset for preset in presets if preset.get("defaultPreset"))
    assert (default["model"], default["temperature"]) == ("gpt-4o-mini", 0.3)
    await expect(page.locator("#event-log li").first).to_contain_text("llm.model")


async def test_an_upstream_change_shows_without_a_reload(tab: Tab, demo: Demo) -> None:
    """A workspace created in the simulated AnythingLLM appears once the service syncs,
    through the event stream: the page is the same document (no navigation)."""
    page = tab.page
    await page.evaluate("window.__sameDocument = true")
    created = await demo.anythingllm.post("/_sim/workspaces", json={"name": "Field notes"})
    assert created.status_code in (200, 201)

    await demo.sync()

    await expect(page.locator("#workspaces")).to_contain_text("Field notes")
    await expect(page.locator("#event-log li").first).to_contain_text("added 1 (Field notes)")
    assert await page.evaluate("window.__sameDocument") is True
    assert len(tab.streams()) == 1  # one stream the whole time


async def test_upstream_data_is_shown_as_text_never_as_markup(tab: Tab, demo: Demo) -> None:
    """A workspace named like an HTML element is shown as those characters."""
    page = tab.page
    name = '<img src="x" onerror="window.__injected = 1">'
    await demo.anythingllm.post("/_sim/workspaces", json={"name": name})
    await demo.sync()

    await expect(page.locator("#workspaces")).to_contain_text(name)
    assert await page.locator("#workspaces img").count() == 0
    assert await page.evaluate("window.__injected") is None


async def test_two_tabs_share_one_event_stream(browser: Browser, demo: Demo) -> None:
    """Two pages of one origin (one browser profile) keep one stream between them, and
    both follow a change."""
    tabs = await open_tab(browser, demo.service.url)
    try:
        first = tabs.page
        second = await tabs.context.new_page()
        for page in (first, second):
            await page.goto("/")
            await expect(page.locator("#connection")).to_have_text("Live")
        await demo.anythingllm.post("/_sim/workspaces", json={"name": "Shared news"})
        await demo.sync()
        for page in (first, second):
            await expect(page.locator("#workspaces")).to_contain_text("Shared news")

        status = (await demo.service.get("/status")).json()
        assert status["subscribers"] == 1
        assert len(tabs.streams()) == 1
        assert tabs.foreign(demo.service.url) == []
    finally:
        await tabs.context.close()
        await demo.clear_faults()


async def test_a_failed_write_shows_each_upstreams_result(tab: Tab, demo: Demo) -> None:
    """LibreChat refusing writes: the form says the write failed and lists what happened
    on each upstream; the settings shown stay as they were."""
    page = tab.page
    model = (await demo.service.get("/settings")).json()["llm"]["model"]
    await demo.librechat.put("/_sim/fault", json={"writes": "fail"})
    await page.get_by_label("Model", exact=True).fill("gpt-4.1")
    await page.get_by_role("button", name="Save LLM settings").click()

    result = page.locator("#llm-result")
    await expect(result).to_contain_text("Not saved: The write failed on librechat")
    await expect(result.locator('tr[data-upstream="librechat"]')).to_contain_text("failed")
    await expect(result.locator('tr[data-upstream="anythingllm"]')).to_contain_text("rolled_back")
    await expect(page.locator("#settings")).to_contain_text(model)
    await expect(page.locator("#settings")).not_to_contain_text("gpt-4.1")
    assert (await demo.service.get("/settings")).json()["llm"]["model"] == model


async def test_invalid_values_are_shown_beside_their_fields(tab: Tab) -> None:
    """The service's 422 list lands on the fields it names, marked invalid."""
    page = tab.page
    await page.get_by_label("Temperature (0 to 2)").fill("3")
    await page.get_by_label("Max tokens").fill("0")
    await page.get_by_role("button", name="Save LLM settings").click()

    await expect(page.locator("#llm-temperature-error")).to_contain_text("less than or equal to 2")
    await expect(page.locator("#llm-maxTokens-error")).to_contain_text("greater than or equal to 1")
    await expect(page.locator("#llm-temperature")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#llm-model")).not_to_have_attribute("aria-invalid", "true")


async def test_sync_now_reports_its_result(tab: Tab) -> None:
    """The button runs a sync and says what it found."""
    page = tab.page
    await page.get_by_role("button", name="Sync now").click()

    await expect(page.locator("#sync-result")).to_contain_text("nothing changed")


async def test_the_conversation_filter_narrows_the_list_by_title(tab: Tab) -> None:
    """Typing in the filter keeps the conversations whose title holds the text."""
    page = tab.page
    everything = await page.locator("#conversations li").count()
    await page.get_by_label("Filter by title").fill("AnythingLLM and LibreChat")

    await expect(page.locator("#conversations li")).to_have_count(1)
    await expect(page.locator("#conversations-shown")).to_have_text(f"1 of {everything} match.")


async def test_the_page_asks_for_the_token_and_keeps_it_for_the_session(
    browser: Browser, demo: Demo
) -> None:
    """With SHARED_STATE_API_TOKEN set, the page asks for it in a labelled form, says so
    when it is wrong, and once given shows the state and keeps it in sessionStorage."""
    settings = native_settings(demo.sims, SHARED_STATE_API_TOKEN="browser-token")
    async with run_service(settings) as closed:
        await closed.runtime.synchronizer.sync()
        tabs = await open_tab(browser, closed.url)
        try:
            page = tabs.page
            await page.goto("/")
            token = page.get_by_label("API token", exact=True)
            await expect(token).to_be_visible()
            await expect(page.locator("#dashboard")).to_be_hidden()

            await token.fill("not-the-token")
            await page.get_by_role("button", name="Use this token").click()
            await expect(page.locator("#token-error")).to_contain_text("refused")

            await token.fill("browser-token")
            await page.get_by_role("button", name="Use this token").click()
            await expect(page.locator("#connection")).to_have_text("Live")
            await expect(page.locator("#user")).to_contain_text("Ada Lovelace")
            assert await page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == "browser-token"

            await page.reload()  # the session keeps it: no second prompt
            await expect(page.locator("#connection")).to_have_text("Live")
            await expect(page.locator("#token-panel")).to_be_hidden()
            assert tabs.foreign(closed.url) == []
        finally:
            await tabs.context.close()


async def test_tab_reaches_every_form_control_with_a_visible_focus(tab: Tab) -> None:
    """Keyboard only: Tab walks through the forms' controls, the buttons and the filter,
    each showing a focus ring."""
    page = tab.page
    reached: set[str] = set()
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const e = document.activeElement;"
            " return [e.id, getComputedStyle(e).outlineStyle]; }"
        )
        element_id, outline = focused
        if element_id:
            reached.add(element_id)
            assert outline != "none", element_id
    assert FORM_CONTROLS | {"sync-now", "conversation-filter"} <= reached


async def test_every_control_has_a_visible_label(tab: Tab) -> None:
    """Each input and select is named by a `<label>` that is shown on the page."""
    unlabelled = await tab.page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
             .filter((e) => e.checkVisibility())
             .filter((e) => ![...e.labels].some((l) => l.checkVisibility() && l.textContent.trim()))
             .map((e) => e.id)"""
    )
    assert unlabelled == []


async def test_the_page_fits_320_pixels_in_the_dark(browser: Browser, demo: Demo) -> None:
    """At 320 px wide nothing scrolls sideways; dark mode switches the colours."""
    narrow = await open_tab(
        browser, demo.service.url, viewport={"width": 320, "height": 640}, color_scheme="dark"
    )
    try:
        page = narrow.page
        await page.goto("/")
        await expect(page.locator("#connection")).to_have_text("Live")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 320
        dark = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        await page.emulate_media(color_scheme="light")
        light = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert dark != light
    finally:
        await narrow.context.close()
