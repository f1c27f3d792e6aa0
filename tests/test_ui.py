"""The chat page's rendering and callbacks, without a browser: escaping, chips, outline, feedback."""

from __future__ import annotations

import re

import pytest
from conftest import ScriptedGenerator, fake_parts

from assistant.answer import Answer, Turn
from assistant.citations import Citation
from assistant.corpus import Clause
from assistant.pipeline import Pipeline
from assistant.service import Service
from assistant.ui import _ask, _rate, _show_clause, render_chat, render_clause, render_outline

WATER = "加快建设升钟水库灌区二期、武引二期灌区等大中型水利工程【3】。"
XSS = ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>', '[点我](javascript:alert(3))',
       '<a href="javascript:alert(4)">链接</a>', '"><svg onload=alert(5)>']


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    settings, _, retriever = fake_parts(tmp_path_factory.mktemp("ui"))
    service = Service(settings, pipeline=Pipeline(settings, retriever, ScriptedGenerator(WATER)),
                      ready=True)
    yield service
    service.close()


def _answer(text: str, citations=(), question="问") -> Answer:
    return Answer(question, text, tuple(citations), False, (), "generated")


def _no_live_markup(html: str) -> None:
    assert not re.search(r"<(img|script|svg|a|iframe)\b", html, re.IGNORECASE)
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html)  # only as text, never in a tag
    assert not re.search(r"\son\w+=", re.sub(r">[^<]*<", "><", html))


@pytest.mark.parametrize("payload", XSS)
def test_user_and_model_text_are_escaped(payload):
    html = render_chat([Turn(payload, _answer(f"回答{payload}〔第（三）条〕",
                                              [Citation("3", "第（三）条", "水利", True)]))],
                       pending=(payload, payload), error=(payload, payload))
    _no_live_markup(html)
    assert html.count("&lt;") >= 4 * payload.count("<")  # shown as text, four times
    assert 'data-cid="3"' in html  # our own markup is still there


def test_answer_chips_inline_and_below():
    cites = [Citation("3", "第（三）条", "升钟水库灌区二期", True),
             Citation("一-2", "一、总体要求 第2段", "9000亿元", True)]
    html = render_chat([Turn("问", _answer("甲〔第（三）条〕。乙〔一、总体要求 第2段〕。丙〔第（九）条〕。", cites))])
    assert html.count('class="cite-chip"') == 4  # two inline marks, two chips under the answer
    assert '>「第（三）条」</button>' in html and 'data-cid="一-2"' in html
    assert "丙〔第（九）条〕" in html  # a mark that is not a verified citation stays plain text


def test_clause_view_marks_quotes_and_escapes():
    text = "(三)加快<b>水利</b>工程。升钟水库灌区二期建设。开工建设江家口水库。"
    clause = Clause("3", "第（三）条", "二、推进基础设施互联互通", "加快<b>水利</b>工程", text, 0, len(text))
    html = render_clause(clause, ["升钟水库灌区二期", "江家口水库", "不在原文中"])
    assert "<mark>升钟水库灌区二期</mark>" in html and "<mark>江家口水库</mark>" in html
    assert "<b>" not in html and "&lt;b&gt;水利&lt;/b&gt;" in html
    assert html.count("<mark>") == 2


def test_outline_has_every_chapter_and_clause(service):
    html = render_outline(service.outline())
    assert html.count("<details><summary><b>") == 9
    assert html.count('<details class="measure">') == 30
    assert len(re.findall(r"第（[一二三四五六七八九十]+）条", html)) == 28
    assert "四川日报" in html and "2019-01-02" in html


def test_ask_streams_then_shows_chips_and_keeps_history(service):
    steps = list(_ask(service, "川东北要建设哪些水利工程？", "public", []))
    first_html, _, box = steps[0]
    assert "川东北要建设哪些水利工程" in first_html and "正在生成" in first_html and box == ""
    html, turns, box = steps[-1]
    assert len(turns) == 1 and "正在生成" not in html
    assert '>「第（三）条」</button>' in html and "升钟水库灌区二期" in html
    assert len(steps) > 2  # the answer arrived in pieces
    follow = list(_ask(service, "那还有呢", "official", turns))[-1]
    assert len(follow[1]) == 2 and follow[1][1].answer.rewritten_question
    assert "以上内容摘自文件原文" in follow[0]  # the 干部 style's notice


def test_ask_errors_are_shown_and_the_question_kept(service):
    html, turns, box = list(_ask(service, "   ", "public", []))[-1]
    assert "问题不能为空" in html and turns == [] and box == "   "
    loading = Service(service.settings, pipeline=service.pipeline)  # not ready yet
    html, _, box = list(_ask(loading, "水利工程", "public", []))[-1]
    assert "模型正在加载" in html and box == "水利工程"


def test_chip_click_shows_the_clause_with_its_quotes(service):
    _, turns, _ = list(_ask(service, "川东北要建设哪些水利工程？", "public", []))[-1]
    html = _show_clause(service, turns, {"turn": 0, "clause_id": "3"})
    assert "第（三）条" in html and "<mark>加快建设升钟水库灌区二期" in html
    for bad in ({}, {"turn": 5, "clause_id": "3"}, {"turn": "0", "clause_id": "3"}):
        assert "点击回答中的条款标签" in _show_clause(service, turns, bad)
    assert "找不到该条款" in _show_clause(service, turns, {"turn": 0, "clause_id": "99"})


def test_thumbs_down_with_reason_is_stored(service):
    note, reason = _rate(service, "down", "没有说明时间", [])
    assert "请先提问" in note and reason == "没有说明时间"
    _, turns, _ = list(_ask(service, "川东北要建设哪些水利工程？", "public", []))[-1]
    note, reason = _rate(service, "down", "没有说明时间", turns)
    assert "已记录" in note and reason == ""
    item = service.feedback.items("down")[-1]
    assert item.reason == "没有说明时间" and item.question == "川东北要建设哪些水利工程？"
    assert item.cited_ids == ["3"] and item.answer == turns[-1].answer.text


def test_build_app_is_a_blocks_object(service):
    import gradio as gr

    from assistant.ui import build_app

    assert isinstance(build_app(service), gr.Blocks)
