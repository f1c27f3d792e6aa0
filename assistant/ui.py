"""The chat page (Gradio): streamed answers with clickable citation chips, the document outline,
example questions, a 公众/干部 style switch, 👍/👎 feedback and multi-turn conversations.

All user and model text is HTML-escaped here before it reaches the page, and no Markdown is
rendered, so `<script>`, `<img onerror>` or `[x](javascript:...)` show up as plain text.
Callbacks only call Service methods and render the result.
"""

import logging
import re
from collections.abc import Iterator, Sequence
from html import escape

from .answer import Answer, Turn
from .corpus import Clause
from .errors import AssistantError, public_message
from .service import Outline, Service
from .streaming import Queued, iterate

log = logging.getLogger(__name__)
EXAMPLES = [
    "到2022年川东北地区生产总值的目标是多少？",
    "南充的城市定位是什么？",
    "川东北要建设哪些高速公路和铁路？",
    "第十二条讲什么？",
    "第三章有哪些措施？",
]
NOTICE = "回答由本地模型根据文件原文生成，并逐句核对出处；如有出入，以文件原文为准。"
WELCOME = "您好！我可以回答关于《关于加快推进川东北经济区振兴发展的实施意见》的问题，并标出每句话的出处条款。"
CLAUSE_HINT = "点击回答中的条款标签（如「第（三）条」），在这里查看原文，引用的句子会高亮显示。"

# Chip clicks become a Python "click" event carrying the turn and clause id (see show_clause).
CHIP_JS = """
element.addEventListener('click', (e) => {
  const chip = e.target.closest('.cite-chip');
  if (!chip || !element.contains(chip)) return;
  trigger('click', {turn: Number(chip.dataset.turn), clause_id: chip.dataset.cid});
});
"""

CSS = """
.conv { display: flex; flex-direction: column; gap: 10px; }
.msg { padding: 10px 14px; border-radius: 10px; line-height: 1.7; max-width: 92%;
       white-space: normal; word-break: break-word; }
.msg.user { align-self: flex-end; background: #e8f0fe; }
.msg.bot { align-self: flex-start; background: #f6f6f6; border: 1px solid #e3e3e3; }
.msg.error { align-self: flex-start; background: #fff4e5; border: 1px solid #f0c36d; }
.msg.empty { align-self: center; color: #666; background: none; }
.typing { color: #888; font-size: 0.9em; }
.cites { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.cites-label { color: #666; font-size: 0.9em; }
.cite-chip { border: 1px solid #9bb6e8; background: #fff; color: #1a4fb0; border-radius: 14px;
             padding: 1px 10px; cursor: pointer; font-size: 0.92em; }
.cite-chip:hover { background: #e8f0fe; }
.clause-card h4 { margin: 0 0 4px 0; }
.clause-card .chapter { color: #666; font-size: 0.9em; margin-bottom: 6px; }
.clause-card .text { line-height: 1.8; }
.clause-card mark { background: #ffe36e; padding: 0 1px; }
.notice { background: #fffbe6; border: 1px solid #f5dd8c; border-radius: 8px; padding: 6px 10px;
          font-size: 0.92em; }
.doc-meta { color: #555; font-size: 0.92em; }
.outline details { margin: 2px 0; }
.outline summary { cursor: pointer; }
.outline .measure { margin-left: 14px; }
.outline .measure p { margin: 4px 0 8px 0; line-height: 1.7; font-size: 0.92em; }
"""


# -- rendering (pure functions of the data; every piece of text goes through escape) --------


def _text(s: str) -> str:
    return escape(s).replace("\n", "<br>")


def _answer_html(answer: Answer, turn: int) -> str:
    """The answer text with its 〔label〕 marks as chips, then one 「label」 chip per cited clause."""
    cited = {c.label: c.clause_id for c in answer.citations}
    chip = '<button class="cite-chip" data-turn="{t}" data-cid="{cid}">{text}</button>'

    def inline(m: re.Match) -> str:
        label = m.group(1)
        if label not in cited:
            return m.group(0)
        return chip.format(t=turn, cid=escape(cited[label]), text=f"〔{label}〕")

    body = re.sub(r"〔([^〕<>]{1,20})〕", inline, _text(answer.text))
    chips = "".join(chip.format(t=turn, cid=escape(cid), text=f"「{escape(label)}」")
                    for label, cid in dict.fromkeys((c.label, c.clause_id) for c in answer.citations))
    if chips:
        body += f'<div class="cites"><span class="cites-label">依据：</span>{chips}</div>'
    return f'<div class="msg bot">{body}</div>'


def render_chat(turns: Sequence[Turn], pending: tuple[str, str] | None = None,
                error: tuple[str, str] | None = None, status: str = "▍正在生成…") -> str:
    """The conversation as HTML: earlier turns, the answer being streamed (with its status:
    generating, or its place in line), or an error."""
    parts = []
    if not turns and pending is None and error is None:
        parts.append(f'<div class="msg empty">{_text(WELCOME)}</div>')
    for i, t in enumerate(turns):
        parts.append(f'<div class="msg user">{_text(t.question)}</div>')
        parts.append(_answer_html(t.answer, i))
    if pending is not None:
        question, text = pending
        parts.append(f'<div class="msg user">{_text(question)}</div>')
        parts.append(f'<div class="msg bot">{_text(text)}<span class="typing">{_text(status)}</span></div>')
    if error is not None:
        question, message = error
        if question.strip():
            parts.append(f'<div class="msg user">{_text(question)}</div>')
        parts.append(f'<div class="msg error">{_text(message)}</div>')
    return f'<div class="conv">{"".join(parts)}</div>'


def render_clause(clause: Clause, quotes: Sequence[str] = ()) -> str:
    """The clause text with every quoted span marked; escaped piece by piece."""
    spans = sorted({(i, i + len(q)) for q in quotes if q and (i := clause.text.find(q)) >= 0})
    pieces, at = [], 0
    for start, end in spans:
        start = max(start, at)
        if start >= end:
            continue
        pieces += [escape(clause.text[at:start]), f"<mark>{escape(clause.text[start:end])}</mark>"]
        at = end
    pieces.append(escape(clause.text[at:]))
    return (f'<div class="clause-card"><h4>{escape(clause.label)} {escape(clause.title)}</h4>'
            f'<div class="chapter">{escape(clause.chapter)}</div>'
            f'<div class="text">{"".join(pieces)}</div></div>')


def render_outline(outline: Outline) -> str:
    """Title, source and date, then every chapter and clause as an openable <details>."""
    chapters = []
    for heading, clauses in outline.chapters:
        items = "".join(
            f'<details class="measure"><summary>{escape(c.label)}　{escape(c.title)}</summary>'
            f"<p>{escape(c.text)}</p></details>" for c in clauses)
        chapters.append(f"<details><summary><b>{escape(heading)}</b>（{len(clauses)}）</summary>"
                        f"{items}</details>")
    return (f'<div class="outline"><h3>{escape(outline.title)}</h3>'
            f'<div class="doc-meta">来源：{escape(outline.source)}　日期：{escape(outline.date)}</div>'
            f'<h4>文件目录</h4>{"".join(chapters)}</div>')


# -- callbacks (thin: call the Service, render) ---------------------------------------------


def _shown(exc: AssistantError) -> str:
    """The error text for the page; details meant for operators go to the log instead."""
    public = public_message(exc)
    if public != str(exc):
        log.error("page request failed: %s", exc)
    return public


def _ask(service: Service, question: str, style: str,
         turns: list[Turn]) -> Iterator[tuple[str, list[Turn], str]]:
    """Stream one answer into the conversation; the textbox is cleared once it starts."""
    turns = list(turns or [])
    text = ""
    shown = question.strip() if isinstance(question, str) else ""
    try:
        yield render_chat(turns, pending=(shown, "")), turns, ""
        for event in iterate(service.stream(question, turns, style)):
            if isinstance(event, Queued):
                yield render_chat(turns, pending=(shown, text), status=event.text), turns, ""
            elif isinstance(event, Answer):
                turns.append(Turn(event.question, event))
                yield render_chat(turns), turns, ""
            else:
                text += event
                yield render_chat(turns, pending=(shown, text)), turns, ""
    except AssistantError as exc:  # empty/too long question, model still loading, backend down
        yield render_chat(turns, error=(shown, _shown(exc))), turns, question


def _show_clause(service: Service, turns: list[Turn], data: object) -> str:
    turn, cid = (data.get("turn"), data.get("clause_id")) if isinstance(data, dict) else (None, None)
    if not isinstance(turn, int) or not 0 <= turn < len(turns or []) or not isinstance(cid, str):
        return f"<p>{escape(CLAUSE_HINT)}</p>"
    try:
        clause = service.clause(cid)
    except (KeyError, AssistantError):
        return "<p>找不到该条款。</p>"
    quotes = [c.quote for c in turns[turn].answer.citations if c.clause_id == cid and c.verified]
    return render_clause(clause, quotes)


def _rate(service: Service, rating: str, reason: str, turns: list[Turn]) -> tuple[str, str]:
    if not turns:
        return '<p class="notice">请先提问，再评价回答。</p>', reason
    last = turns[-1]
    try:
        service.add_feedback(last.question, last.answer.text,
                             [c.__dict__ for c in last.answer.citations], rating, reason)
    except AssistantError as exc:
        return f'<p class="notice">{_text(_shown(exc))}</p>', reason
    return '<p class="notice">已记录您的反馈，谢谢！</p>', ""


def _load_outline(service: Service) -> str:
    try:
        return render_outline(service.outline())
    except AssistantError as exc:
        return f"<p>{_text(_shown(exc))}</p>"


def build_app(service: Service):
    """The page as gr.Blocks (not launched: api.create_app mounts it next to the API)."""
    import gradio as gr

    with gr.Blocks(title="川东北经济区政策问答", analytics_enabled=False) as demo:
        turns = gr.State([])
        gr.HTML(f"<h2>川东北经济区政策问答助手</h2><div class='notice' id='notice'>{escape(NOTICE)}</div>")
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.HTML(render_chat([]), js_on_load=CHIP_JS, elem_id="chat",
                               min_height=380, max_height=640, autoscroll=True, padding=True,
                               container=True)
                with gr.Row():
                    question = gr.Textbox(show_label=False, scale=5, max_lines=4, elem_id="question",
                                          placeholder="请输入关于《实施意见》的问题，按回车发送")
                    send = gr.Button("发送", variant="primary", scale=1, elem_id="send")
                with gr.Row():
                    style = gr.Radio([("公众（通俗）", "public"), ("干部（正式）", "official")],
                                     value="public", label="回答风格", elem_id="style")
                    new_chat = gr.Button("新对话", elem_id="new-chat")
                gr.Examples(EXAMPLES, inputs=question, label="示例问题")
                with gr.Row():
                    up = gr.Button("👍 有帮助", elem_id="thumb-up", size="sm")
                    down = gr.Button("👎 没帮助", elem_id="thumb-down", size="sm")
                    reason = gr.Textbox(label="原因（可选）", elem_id="reason", max_lines=2, scale=3)
                feedback_note = gr.HTML("", elem_id="feedback-note")
            with gr.Column(scale=2):
                clause_view = gr.HTML(f"<p>{escape(CLAUSE_HINT)}</p>", elem_id="clause-view",
                                      container=True, padding=True)
                outline = gr.HTML("<p>正在加载文件目录…</p>", elem_id="outline", container=True,
                                  padding=True, max_height=720)

        def ask(q, s, t):
            yield from _ask(service, q, s, t)

        def show_clause(t, evt: gr.EventData):
            return _show_clause(service, t, evt._data or {})

        for trigger in (question.submit, send.click):
            # No page-level limit: the Service admits answers (its bounded queue is shared with
            # the API) and tells the user 「当前咨询人数较多，请稍后再试」 when it is full.
            trigger(ask, [question, style, turns], [chat, turns, question], concurrency_limit=None)
        chat.click(show_clause, [turns], [clause_view])
        up.click(lambda r, t: _rate(service, "up", r, t), [reason, turns], [feedback_note, reason])
        down.click(lambda r, t: _rate(service, "down", r, t), [reason, turns],
                   [feedback_note, reason])
        new_chat.click(lambda: (render_chat([]), [], "", f"<p>{escape(CLAUSE_HINT)}</p>", ""),
                       None, [chat, turns, question, clause_view, feedback_note])
        demo.load(lambda: _load_outline(service), None, [outline])
    return demo
