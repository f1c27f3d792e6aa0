"""The chat page in a real browser (Playwright driving Debian's chromium) against a live server.

Needs `apt-get install -y chromium` (CI installs it); deselect locally with `-m "not browser"`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from conftest import ROOT, ScriptedGenerator, fake_parts, live_server

from assistant.answer import Answer
from assistant.api import create_app
from assistant.citations import Citation
from assistant.feedback import DB_NAME
from assistant.pipeline import Pipeline
from assistant.service import Service
from assistant.streaming import Turns

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
REPLY = ("加快建设升钟水库灌区二期、武引二期灌区等大中型水利工程【3】。"
         "开工建设江家口水库、固军水库等大中型水利工程【3】。")
EVIL_QUESTION = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>水利'
EVIL_REPLY = ('请[点我](javascript:window.__pwned=3) <img src=x onerror="window.__pwned=4"> '
              '<a href="javascript:alert(5)">原文</a> <script>alert(6)</script>〔第（三）条〕')


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    settings, _, retriever = fake_parts(tmp_path_factory.mktemp("browser"))
    return settings, retriever


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "chromium is missing: run `apt-get install -y chromium`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#question textarea", timeout=60_000)
    return page, dialogs


def _ask(page, question: str) -> None:
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")


def test_ask_click_citation_and_send_feedback(browser, parts):
    settings, retriever = parts
    service = Service(settings, pipeline=Pipeline(settings, retriever,
                                                  ScriptedGenerator(REPLY, delay=0.08)), ready=True)
    with live_server(create_app(service)) as url:
        page, dialogs = _open(browser, url)
        assert "以文件原文为准" in page.inner_text("#notice")
        page.wait_for_selector("#outline details", timeout=30_000)
        outline = page.locator("#outline")
        assert outline.locator("details.measure").count() == 30
        outline.locator("summary", has_text="推进基础设施互联互通").click()  # a chapter opens
        outline.locator("summary", has_text="第（三）条").click()  # and one of its measures
        assert "升钟水库灌区二期" in outline.locator("details.measure[open]").inner_text()

        _ask(page, "川东北要建设哪些水利工程？")
        page.wait_for_selector("#chat .typing", timeout=30_000)  # streaming: partial answer shown
        chip = page.locator("#chat .cites .cite-chip", has_text="「第（三）条」")
        chip.wait_for(timeout=30_000)
        chat = page.inner_text("#chat")
        assert "升钟水库灌区二期" in chat and "以文件原文为准" in chat
        assert page.locator("#chat .typing").count() == 0

        chip.click()
        mark = page.locator("#clause-view mark").first
        mark.wait_for(timeout=30_000)
        assert "升钟水库灌区二期" in mark.inner_text()
        assert "加快推进水利工程建设" in page.inner_text("#clause-view")

        page.fill("#reason textarea", "没有说明建设时间")
        page.click("#thumb-down")
        page.locator("#feedback-note", has_text="已记录").wait_for(timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

        with sqlite3.connect(settings.data_dir / DB_NAME) as db:
            rows = db.execute("SELECT question, rating, reason, citations FROM feedback").fetchall()
        assert rows and rows[-1][:3] == ("川东北要建设哪些水利工程？", "down", "没有说明建设时间")
        assert '"clause_id": "3"' in rows[-1][3]

        page.click("#new-chat")
        page.locator("#chat", has_text="您好").wait_for(timeout=30_000)
        assert page.locator("#chat .cite-chip").count() == 0
        assert not dialogs


class EvilPipeline:
    """Stands in for the pipeline and replies with markup, to test the page's escaping alone."""

    generator = None

    def __init__(self, retriever):
        self.retriever = retriever
        self.turns = Turns()

    def warm_up(self):
        pass

    def stream(self, question, history=(), style="public", cancel=None):
        for i in range(0, len(EVIL_REPLY), 20):
            time.sleep(0.02)
            yield EVIL_REPLY[i:i + 20]
        yield Answer(question, EVIL_REPLY, (Citation("3", "第（三）条", "升钟水库灌区二期", True),),
                     False, ("3",), "generated")


def test_markup_in_questions_and_answers_never_runs(browser, parts):
    settings, retriever = parts
    service = Service(settings, retriever=retriever, pipeline=EvilPipeline(retriever), ready=True)
    with live_server(create_app(service)) as url:
        page, dialogs = _open(browser, url)
        _ask(page, EVIL_QUESTION)
        page.locator("#chat .cites .cite-chip").wait_for(timeout=30_000)
        page.wait_for_timeout(500)  # give any injected handler time to fire
        chat = page.locator("#chat")
        assert "<img src=x onerror=" in chat.inner_text() and "javascript:" in chat.inner_text()
        for selector in ("img", "script", "svg", "iframe", "a"):
            assert chat.locator(selector).count() == 0, selector
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.evaluate("window.__pwned") is None and not dialogs
        chat.locator(".cite-chip").last.click()  # chips still work next to the hostile text
        page.locator("#clause-view mark").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "xss.png"), full_page=True)
