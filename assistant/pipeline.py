"""ask → Answer: screen, resolve follow-ups, retrieve, decide answerability, generate, verify, stream.

The model never speaks unchecked: its output is cut into sentences and each one is verified
against the clause text before it is streamed; what fails is re-cited or dropped, and if nothing
survives the answer falls back to quoting the most relevant sentences of the top clauses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .answerability import AnswerabilityJudge
from .citations import SENTENCE_END, Citation, Verifier, split_sentences
from .config import Settings
from .corpus import Clause, int_to_cn
from .errors import QuestionError
from .generation import Generator, Message
from .retrieval import Retriever, SearchResult
from .safety import clean_question, screen
from .templates import render

Style = Literal["public", "official"]
Mode = Literal["generated", "extractive", "lookup", "refusal"]
MAX_SENTENCES = 2  # short answers: ~28 tokens/s decode on 2 cores
MAX_PRODUCED = 3  # stop the model after this many sentences, verified or not
_FOLLOWUP_RE = re.compile(
    r"^(那|那么|还有|另外|再说说|它|它们|这个|那个|该|其|这条|那条|上面|上述|刚才|前面|此外)"
    r"|它|其中|这些|那些|该条|这条|那条|上述|这方面|那方面|(呢|吗)[？?。]?$"
)
_SENTENCE_RE = re.compile(r"[^。；！？]+[。；！？]?")
# A question joining several parts (「城市定位和产业」「分别」「交通、城市、物流」).
_SEVERAL_PARTS_RE = re.compile(r"[和与及、]|分别|以及|方面|两块|两个|从.+到")
COMPLEMENT_MIN_SCORE = 0.5  # a runner-up quoted as a complement scores at least this × the top
RARE_TERM_CLAUSES = 6  # a term in more clauses than this says nothing about which one answers
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Answer:
    """What the user gets: text, verified citations, and how it was produced."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    refused: bool
    retrieved: tuple[str, ...]
    mode: Mode
    style: Style = "public"
    rewritten_question: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def cited_ids(self) -> list[str]:
        return list(dict.fromkeys(c.clause_id for c in self.citations))


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of the conversation, for follow-up questions."""

    question: str
    answer: Answer


def validate_question(question: object, max_chars: int) -> str:
    """The cleaned question, or a QuestionError with a message for the user."""
    if not isinstance(question, str):
        raise QuestionError("问题必须是文字。")
    q = clean_question(question)
    if not q:
        raise QuestionError("问题不能为空，请输入您想了解的内容。")
    if len(q) > max_chars:
        raise QuestionError(f"问题过长（{len(q)} 字），请精简到 {max_chars} 字以内。")
    if not q.isascii() and _SURROGATE_RE.search(q):  # invalid UTF-8 on a command line, "\ud800" in JSON
        raise QuestionError("问题含有无法识别的字符（不是有效的 UTF-8 文本），请检查输入法或编码后重试。")
    return q


class Pipeline:
    """The answer pipeline over one retriever and one (optional) generator."""

    def __init__(self, settings: Settings, retriever: Retriever, generator: Generator | None):
        self.settings, self.retriever, self.generator = settings, retriever, generator
        index = retriever.index
        self.clauses = {c.id: c for c in index.clauses}
        self.document = index.documents[0]
        self.places = _load_places()
        self._term_counts: dict[str, int] = {}
        self.judge = AnswerabilityJudge("".join(c.text for c in index.clauses),
                                        places=frozenset(self.places))
        self.context_terms = {"川东北", "四川", "全省", "我省"}
        self.system_prompt = render(
            "system", title=self.document.title, source=self.document.source,
            date=self.document.date,
            clauses="\n".join(f"【{c.id}】{c.text}" for c in index.clauses),
        )

    # -- public API ----------------------------------------------------------

    def warm_up(self) -> str:
        """Read the fixed system prompt (the whole document) into the model's KV cache once.

        Backends that can persist that cache (llama-cpp) restore it from settings.cache_dir.
        """
        self.retriever.search("川东北经济区")  # loads jieba's dictionaries and the query path
        if self.generator is None:
            return "no-model"
        messages = [Message("system", self.system_prompt), Message("user", "你好")]
        warm = getattr(self.generator, "warm", None)
        if warm is not None:
            return warm(messages, self.settings.cache_dir / "kv")
        for _ in self.generator.stream(messages, max_tokens=1):
            pass
        return "computed"

    def ask(self, question: object, history: Sequence[Turn] = (), style: Style = "public") -> Answer:
        """The complete answer (the stream, consumed)."""
        for event in self.stream(question, history, style):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("stream ended without an Answer")  # pragma: no cover

    def stream(self, question: object, history: Sequence[Turn] = (),
               style: Style = "public") -> Iterator[str | Answer]:
        """Yield verified text pieces as they are ready, then the final Answer."""
        t0 = time.perf_counter()
        q = validate_question(question, self.settings.max_question_chars)
        style = style if style in ("public", "official") else "public"
        run = _Run(q, style, t0)
        verdict = screen(q)
        if verdict.verdict != "ok":
            yield from run.emit(self._refusal(verdict.verdict, ""))
            yield run.finish(refused=True, mode="refusal")
            return
        rewritten = self._resolve_followup(q, history)
        run.rewritten = rewritten
        t = time.perf_counter()
        # A rewrite carries the previous answer's labels (第（七）条): context, not a lookup.
        result = self.retriever.search(rewritten or q, k=self.settings.top_k,
                                       use_lookup=rewritten is None)
        run.timings["retrieval"] = (time.perf_counter() - t) * 1000
        run.retrieved = tuple(h.clause.id for h in result.hits)
        verdict_doc = self.judge.judge(rewritten or q, result, result.lexical_matches or 0)
        if not verdict_doc.answerable:
            yield from run.emit(self._refusal("not_covered", verdict_doc.reason))
            yield run.finish(refused=True, mode="refusal")
            return
        if result.lookup is not None and result.lookup.found:
            yield from self._lookup_answer(run, result)
            return
        yield from self._generated_answer(run, result)

    # -- follow-ups -------------------------------------------------------------

    def _resolve_followup(self, q: str, history: Sequence[Turn]) -> str | None:
        """Rewrite an elliptic follow-up with the previous question; None when not needed."""
        if not history or not _FOLLOWUP_RE.search(q):
            return None
        if self.retriever.lookup(q)[0] is not None:
            return None  # 「那第二条呢」 names its clause itself
        last = history[-1]
        labels = "、".join(self.clauses[c].label for c in last.answer.cited_ids[:3]
                          if c in self.clauses)
        return render("followup", question=q,
                      previous_question=last.answer.rewritten_question or last.question,
                      previous_labels=labels)

    # -- answer modes -------------------------------------------------------------

    def _refusal(self, kind: str, reason: str) -> str:
        topics = "、".join(ch.heading.split("、", 1)[-1] for ch in self.document.chapters)
        first = self.document.clauses[min(2, len(self.document.clauses) - 1)]
        return render("refusal", kind=kind, reason=reason, topics=topics,
                      short_title=self.document.title.strip("《》").split("》")[0],
                      example=f"{first.title}有哪些安排？")

    def _lookup_answer(self, run: _Run, result: SearchResult) -> Iterator[str | Answer]:
        named = [h.clause for h in result.hits if "lookup" in h.sources]
        if result.lookup.kind == "chapter":
            lines = [f"{named[0].chapter}包括以下{int_to_cn(len(named))}条措施："]
            lines += [f"{c.label}：{c.title}。" for c in named]
            run.citations += [Citation(c.id, c.label, c.title, c.title in c.text) for c in named]
        else:
            c = named[0]
            lines = [f"{c.label}（{c.chapter}）：", c.body]
            run.citations.append(Citation(c.id, c.label, c.body, c.body in c.text))
        yield from run.emit("\n".join(lines))
        yield from run.emit("\n\n" + render("notice", style=run.style))
        yield run.finish(refused=False, mode="lookup")

    def _generated_answer(self, run: _Run, result: SearchResult) -> Iterator[str | Answer]:
        given = [h.clause for h in result.hits]
        tokenizer = self.retriever.index.tokenizer
        verifier = Verifier(given, self.places, self.context_terms, terms=tokenizer)
        asked = {t for t in tokenizer(self.retriever.speller.correct(run.rewritten or run.question))
                 if len(t) >= 2 and t not in self.context_terms}  # without the English expansion
        kept = 0
        allowed = {c.id for c in self._strong(result)}
        top = given[0]
        yield from run.emit(f"相关条款：{top.label}「{top.title}」\n\n")
        if self.generator is not None:
            hints = "".join(f"【{c.id}】" for c in given[:3])
            messages = [Message("system", self.system_prompt),
                        Message("user", render("answer", question=run.rewritten or run.question,
                                               hints=hints, style=run.style))]
            t = time.perf_counter()
            for produced, sentence in enumerate(_sentences(self.generator.stream(
                    messages, max_tokens=self.settings.llm_max_tokens,
                    temperature=self.settings.llm_temperature, stop=["<|im_end|>"]), run),
                    start=1):
                if produced > MAX_PRODUCED:
                    break
                checked = verifier.check(sentence)
                if not checked.ok:
                    run.dropped.append(checked.reason)
                    continue
                c = checked.citations[0]
                if c.clause_id not in allowed:
                    run.dropped.append("出处不是最相关的条款")  # true, but about something else
                    continue
                if asked and not any(t in checked.text for t in asked):
                    run.dropped.append("与问题无关")  # true but beside the point
                    continue
                text = _strip_title(checked.text, given).rstrip("。；;.")
                yield from run.emit(f"{text}〔{c.label}〕。")
                run.citations.append(c)
                kept += 1
                if kept >= MAX_SENTENCES:
                    break
            run.timings["generation"] = (time.perf_counter() - t) * 1000
        if kept == 0:
            strong = self._strong(result)
            yield from self._extractive(run, result, strong + self._complements(result, strong, asked))
            yield run.finish(refused=False, mode="extractive")
            return
        evidence = [self.clauses[cid] for cid in dict.fromkeys(c.clause_id for c in run.citations)]
        quotes = self._quotes(result, evidence[:2] + self._complements(result, evidence, asked))
        if quotes:
            yield from run.emit("\n\n原文摘录：\n" + "\n".join(f"〔{c.label}〕「{s}」" for c, s in quotes))
            run.citations += [Citation(c.id, c.label, s, s in c.text) for c, s in quotes]
        yield from run.emit("\n\n" + render("notice", style=run.style))
        yield run.finish(refused=False, mode="generated")

    def _strong(self, result: SearchResult) -> list[Clause]:
        """The top clause, plus runners-up whose fused score is nearly as high (multi-part asks)."""
        top = result.hits[:1] + [h for h in result.hits[1:3]
                                 if h.score >= self.settings.second_clause_score]
        return [h.clause for h in top]

    def _complements(self, result: SearchResult, have: list[Clause],
                     terms: set[str]) -> list[Clause]:
        """Runners-up (ranks 2–3) that answer another part of a several-part question.

        The question must join parts (和、分别、以及…), and name one of its `terms`, a distinctive
        one (found in at most RARE_TERM_CLAUSES clauses), that the runner-up contains and the
        clauses already quoted do not: 「巴中在城市定位和产业上分别怎么安排」 gets the industry
        clause as well.
        """
        if not result.hits or not _SEVERAL_PARTS_RE.search(result.query):
            return []
        top = result.hits[0].score
        out = []
        for h in result.hits[1:3]:
            if h.clause in have or h.score < COMPLEMENT_MIN_SCORE * top:
                continue
            if any(t in h.clause.text and not any(t in c.text for c in have + out)
                   and self._clause_count(t) <= RARE_TERM_CLAUSES for t in terms):
                out.append(h.clause)
        return out

    def _clause_count(self, term: str) -> int:
        if term not in self._term_counts:
            self._term_counts[term] = sum(term in c.text for c in self.retriever.index.clauses)
        return self._term_counts[term]

    def _extractive(self, run: _Run, result: SearchResult, clauses: list[Clause]) -> Iterator[str]:
        quotes = self._quotes(result, clauses, per_clause=2)
        lines = [f"{c.label}原文：「{s}」" for c, s in quotes]
        run.citations += [Citation(c.id, c.label, s, s in c.text) for c, s in quotes]
        yield from run.emit("\n".join(lines) + "\n\n" + render("notice", style=run.style))

    def _quotes(self, result: SearchResult, clauses: list[Clause],
                per_clause: int = 1) -> list[tuple[Clause, str]]:
        """The sentences of each clause that share the most question words, in text order."""
        # The query as the search read it (typos corrected, English terms expanded).
        searched = result.corrected_query or result.query
        tokens = [t for t in self.retriever.index.tokenizer(searched) if len(t) >= 2]
        out = []
        for c in clauses:
            sentences = [s.strip() for s in _SENTENCE_RE.findall(c.body) if len(s.strip()) > 4]
            if len(sentences) > 1 and c.is_measure:
                sentences = sentences[1:]  # a measure's first sentence is its title
            weight = [sum(len(t) for t in tokens if t in s) for s in sentences]
            scored = sorted(range(len(sentences)), key=lambda i: (-weight[i], i))
            best = sorted(i for i in scored[:per_clause] if weight[i] > 0) or scored[:1]
            out += [(c, sentences[i]) for i in best if i < len(sentences)]
        return out


class _Run:
    """Mutable state of one answer while it streams (kept out of the Answer record)."""

    def __init__(self, question: str, style: Style, t0: float):
        self.question, self.style, self.t0 = question, style, t0
        self.parts: list[str] = []
        self.citations: list[Citation] = []
        self.dropped: list[str] = []
        self.retrieved: tuple[str, ...] = ()
        self.rewritten: str | None = None
        self.timings: dict[str, float] = {}

    def emit(self, text: str) -> Iterator[str]:
        if text:
            if "first_token" not in self.timings:
                self.timings["first_token"] = (time.perf_counter() - self.t0) * 1000
            self.parts.append(text)
            yield text

    def finish(self, refused: bool, mode: Mode) -> Answer:
        self.timings["total"] = (time.perf_counter() - self.t0) * 1000
        return Answer(self.question, "".join(self.parts), tuple(self.citations), refused,
                      self.retrieved, mode, self.style, self.rewritten,
                      {k: round(v, 1) for k, v in self.timings.items()})


def _sentences(chunks: Iterator[str], run: _Run | None = None) -> Iterator[str]:
    """Regroup streamed model text into complete sentences (with their trailing citation marks)."""
    buf = ""
    n = 0
    try:
        for chunk in chunks:
            n += 1
            if run is not None and n == 1:
                run.timings["model_first_token"] = (time.perf_counter() - run.t0) * 1000
            if run is not None:
                run.timings["model_tokens"] = n
            buf += chunk
            parts = split_sentences(buf)
            if len(parts) < 2:
                continue
            done, rest = parts[:-1], parts[-1]
            if rest[:1] in "【[〔":  # a citation mark is still arriving for the last sentence
                done, rest = parts[:-2], "".join(parts[-2:])
            if not done:
                continue
            yield from done
            buf = buf[buf.rfind(rest):] if rest and rest in buf else rest
        if buf.strip():
            yield from split_sentences(buf)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()  # release the model lock at once when we stop early


def _strip_title(sentence: str, clauses: list[Clause]) -> str:
    """Drop a leading "<measure title>：" the model likes to echo."""
    for c in clauses:
        for sep in ("：", ":", "，", ","):
            if sentence.startswith(c.title + sep) and len(sentence) > len(c.title) + 6:
                return sentence[len(c.title) + 1:]
    return sentence


def _load_places() -> set[str]:
    from importlib.resources import files

    text = files("assistant").joinpath("places.txt").read_text("utf-8")
    return {w for line in text.splitlines() if not line.startswith("#") for w in line.split()}


__all__ = ["SENTENCE_END", "Answer", "Pipeline", "Turn", "validate_question"]
