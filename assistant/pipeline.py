"""ask → Answer: screen, resolve follow-ups, retrieve, decide answerability, generate, verify, stream.

The model never speaks unchecked: its output is cut into sentences and each one is verified
against the clause text before it is streamed; what fails is re-cited or dropped, and if nothing
survives the answer falls back to quoting the most relevant sentences of the top clauses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .answerability import AnswerabilityJudge
from .citations import Citation, Verifier, resolve_ref, strip_marks
from .config import Settings
from .corpus import Clause, Sentence, arabic_numbers, int_to_cn, normalize
from .errors import QuestionError
from .evidence import (MAX_ANSWER_CHARS, NOT_COVERED, PartAnswer, SentenceRanker, align, grammar, line_events,
                       split_question, trim)
from .followup import FOLLOWUP_RE, Rewrite, places_in, rewrite
from .generation import Generator, Message
from .retrieval import Retriever, SearchResult
from .safety import clean_question, screen
from .templates import render

Style = Literal["public", "official"]
# generated: every part has the model's verified line (or a quoted complement); partial: some
# part is not in the document; extractive: every line failed, the evidence is quoted instead.
Mode = Literal["generated", "partial", "extractive", "lookup", "refused"]

# A question joining several parts (「城市定位和产业」「分别」「交通、城市、物流」).
UNVERIFIED_CHARS = 40  # a line with no verified phrase by now is not waited for any longer
# Words that carry no topic: question words, totals, counts like 三条 or 几个.
_GENERIC_TERM_RE = re.compile(r"[一二三四五六七八九十两几多]+[条个项所家类座大种点]|一共|总共|分别|各自|具体|"
                              r"主要|哪些|哪个|哪几|什么|怎么|如何|多少|有没有|是否|可以|能否")
_CLAUSE_REF_RE = re.compile(r"第\s*[（(]?\s*[0-9一二三四五六七八九十]+\s*[)）]?\s*条")
_SEVERAL_PARTS_RE = re.compile(r"[和与及、]|分别|以及|方面|两块|两个|从.+到")
COMPLEMENT_MIN_SCORE = 0.5  # a runner-up quoted as a complement scores at least this × the top
RARE_TERM_CLAUSES = 6  # a term in more clauses than this says nothing about which one answers
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Answer:
    """What the user gets: text, verified citations, and how it was produced."""

    question: str
    text: str  # everything streamed: direct answer, quoted evidence, notice
    citations: tuple[Citation, ...]  # those of the direct answer, one per evidence sentence
    refused: bool
    retrieved: tuple[str, ...]
    mode: Mode
    style: Style = "public"
    rewritten_question: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    direct_answer: str = ""  # the answer itself, without quoted evidence and notice

    @property
    def cited_ids(self) -> list[str]:
        return list(dict.fromkeys(c.clause_id for c in self.citations))

    def to_dict(self) -> dict:
        """The JSON shape shared by `assistant ask --json`, the HTTP API and the evaluator."""
        return {
            "question": self.question, "answer": self.text, "direct_answer": self.direct_answer,
            "refused": self.refused, "mode": self.mode,
            "rewritten_question": self.rewritten_question,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": list(self.retrieved),
            "timings_ms": {k: self.timings_ms.get(k) for k in TIMINGS},
        }


# first_answer_text: the first text of the answer itself (for a generated answer, after the model
# wrote and the verifier passed it); model_first_token: the model's own first token.
TIMINGS = ("retrieval", "first_answer_text", "model_first_token", "total")


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
        self.vocabulary = frozenset(normalize("".join(c.text for c in index.clauses)))
        self.judge = AnswerabilityJudge("".join(c.text for c in index.clauses),
                                        places=frozenset(self.places))
        # Words any answer may use without support: the region the document is about (the
        # places and zones its title names) and words naming the province as a whole.
        titles = " ".join(d.title for d in index.documents)
        zones = re.findall(r"([\u4e00-\u9fff]{2,4})(经济区|城市群|新区)", titles)
        self.context_terms = ({p for p in self.places if p in titles}
                              | {z for pair in zones for z in (pair[0], "".join(pair))}
                              | {"四川", "全省", "我省", "文件", "政策"})
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
            yield run.finish(refused=True, mode="refused")
            return
        follow = self._resolve_followup(q, history)
        rewritten = follow.question if follow else None
        run.rewritten, run.standalone = rewritten, bool(follow and follow.standalone)
        t = time.perf_counter()
        # A rewrite carries the previous answer's labels (第（七）条): context, not a lookup.
        result = self.retriever.search(rewritten or q, k=self.settings.top_k,
                                       use_lookup=rewritten is None)
        if follow is not None:
            result = self._prefer(result, history, follow)
        run.timings["retrieval"] = (time.perf_counter() - t) * 1000
        run.retrieved = tuple(h.clause.id for h in result.hits)
        verdict_doc = self.judge.judge(rewritten or q, result, result.lexical_matches or 0)
        if not verdict_doc.answerable:
            yield from run.emit(self._refusal("not_covered", verdict_doc.reason))
            yield run.finish(refused=True, mode="refused")
            return
        if result.lookup is not None and result.lookup.found:
            yield from self._lookup_answer(run, result)
            return
        yield from self._generated_answer(run, result)

    # -- follow-ups -------------------------------------------------------------

    def _resolve_followup(self, q: str, history: Sequence[Turn]) -> Rewrite | None:
        """Make an elliptic follow-up standalone from the previous turn; None when not needed."""
        if not history or not FOLLOWUP_RE.search(q):
            return None
        if self.retriever.lookup(q)[0] is not None:
            return None  # 「那第二条呢」 names its clause itself
        last = history[-1]
        labels = "、".join(self.clauses[c].label for c in last.answer.cited_ids[:3]
                          if c in self.clauses)
        return rewrite(q, last.answer.rewritten_question or last.question, labels, self.places)

    @staticmethod
    def _prefer(result: SearchResult, history: Sequence[Turn], rewritten: Rewrite) -> SearchResult:
        """Put the previous answer's evidence clauses that name the new entity first."""
        if not rewritten.entities:
            return result
        previous = history[-1].answer.cited_ids
        first = [h for h in result.hits if h.clause.id in previous
                 and all(e in h.clause.text for e in rewritten.entities)]
        return replace(result, hits=first + [h for h in result.hits if h not in first])

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
        run.direct = "".join(run.parts)
        yield from run.emit("\n\n" + render("notice", style=run.style))
        yield run.finish(refused=False, mode="lookup")

    def _generated_answer(self, run: _Run, result: SearchResult) -> Iterator[str | Answer]:
        """Answer each part of the question from its own evidence sentences, streaming per part."""
        given = [h.clause for h in result.hits]
        tokenizer = self.retriever.index.tokenizer
        verifier = Verifier(given, self.places, self.context_terms, terms=tokenizer,
                            vocabulary=self.vocabulary)
        ranker = SentenceRanker(given, [h.score for h in result.hits], tokenizer)
        if run.rewritten is None or run.standalone:
            questions = split_question(run.rewritten or run.question)
        else:
            questions = [result.corrected_query or result.query]
        plans = [self._plan(self.retriever.glossary.expand(self.retriever.speller.correct(q)),
                            ranker) for q in questions]
        if not any(plan.holding for plan in plans):  # no evidence holds what is asked: no model
            reason = "；".join(dict.fromkeys(self._missing(plan) for plan in plans))
            yield from run.emit(self._refusal("not_covered", reason))
            yield run.finish(refused=True, mode="refused")
            return
        events = self._model_lines(run, given, questions)
        answers: list[PartAnswer] = []
        for i, plan in enumerate(plans):
            answers.append((yield from self._part(run, i, plan, events, verifier)))
        if events is not None:
            events.close()
        if len(answers) == 1:
            yield from self._complement(run, result, answers, ranker)
        covered = [p for p in answers if p.mode != "not_covered"]
        run.direct = "".join(run.parts)
        quotes = [s for p in covered for s in p.evidence]
        block = "\n".join(f"〔{self._sentence_label(s)}〕「{s.text}」" for s in dict.fromkeys(quotes))
        yield from run.emit("\n\n原文摘录：\n" + block)
        yield from run.emit("\n\n" + render("notice", style=run.style))
        mode: Mode = ("partial" if len(covered) < len(answers)
                      else "generated" if any(p.mode == "generated" for p in answers)
                      else "extractive")
        yield run.finish(refused=False, mode=mode)

    def _model_lines(self, run: _Run, given: list[Clause], questions: list[str]):
        """The model's answer lines as phrase-by-phrase events (None without a model)."""
        if self.generator is None:
            return None
        hints = "".join(f"【{c.id}】" for c in given[:3])
        messages = [Message("system", self.system_prompt),
                    Message("user", render("answer", question=run.rewritten or run.question,
                                           hints=hints,
                                           parts=questions if len(questions) > 1 else [],
                                           style=run.style))]
        tokens = self.generator.stream(
            messages, max_tokens=self.settings.llm_max_tokens * len(questions),
            temperature=self.settings.llm_temperature, grammar=grammar(len(questions)))
        return line_events(_timed(tokens, run))

    def _plan(self, question: str, ranker: SentenceRanker) -> _Plan:
        """One part's content words, ranked candidate sentences, and those that hold its answer."""
        named = places_in(question, self.places)
        terms = [t for t in ranker.terms(question) if not _GENERIC_TERM_RE.fullmatch(t)
                 and not any(t in c for c in self.context_terms)]
        candidates = ranker.rank(question)
        content = [t for t in terms if t not in named]
        asked = list(dict.fromkeys(terms + named + re.findall(r"\d+", arabic_numbers(question))))
        eligible = [s for s in candidates
                    if self._evidence_verdict(question, (s,), content).answerable
                    and self.judge.relevant(question, s.text, self.context_terms)
                    and self.judge.covers(asked, self.clauses[s.clause_id].text)]
        # A part about a named place rests on sentences that name it: 「达州的定位」 must not be
        # answered with 南充's sentence of the same clause.
        naming = [s for s in eligible if any(p in s.text for p in named)]
        eligible = naming or eligible
        top = set(candidates[:4]) | set(naming[:2])
        return _Plan(question, terms, candidates, [s for s in eligible if s in top], eligible)

    def _missing(self, plan: _Plan) -> str:
        """Why no evidence answers this part, in Chinese."""
        verdict = self._evidence_verdict(plan.question, tuple(plan.candidates[:1]))
        return verdict.reason or "文件没有写这方面的内容"

    def _part(self, run: _Run, index: int, plan: _Plan, events, verifier: Verifier):
        """Stream one part: the model's line phrase by phrase while each prefix checks out
        against one evidence sentence, else that part's best evidence quoted, else what the
        text does not give. Returns the PartAnswer."""
        question, terms, holding = plan.question, plan.terms, plan.holding
        sep = "" if index == 0 else "\n"
        shown, evidence, line = "", None, ""
        for n, text, done in self._events_for(events, index):
            if len(text) >= MAX_ANSWER_CHARS:
                break  # cut off by the length limit: keep what was verified up to a phrase end
            line = _strip_title(strip_marks(text)[0], list(self.clauses.values()))
            if not holding or NOT_COVERED in line:
                continue
            body = line.rstrip("，,、；;：:。！？!?")
            if len(body) < 6 or not _adds_to(body, question):
                continue
            # 「写在第14条」: a reference to the evidence's own clause is checked, not its number.
            refs = [m.group(0) for m in _CLAUSE_REF_RE.finditer(body)]
            s = align(_CLAUSE_REF_RE.sub("", body), plan.eligible, verifier, question)
            if s is not None and any(resolve_ref(r, self.clauses) != s.clause_id for r in refs):
                s = None
            if s is None or not (any(t in body or t in s.text for t in terms) or not terms):
                if done or shown or len(body) > UNVERIFIED_CHARS:
                    break  # stop at the last verified phrase (or give up on this line)
                continue
            evidence = s
            new = body[len(shown):] if body.startswith(shown) else ""
            if new:
                yield from run.emit((sep if not shown else "") + new)
                shown = body
        if evidence is not None and shown:
            label = self.clauses[evidence.clause_id].label
            run.citations.append(Citation(evidence.clause_id, label, evidence.text, True,
                                          evidence.id))
            yield from run.emit(f"〔{label}〕。")
            return PartAnswer(question, "generated", shown, (evidence,))
        if not holding:
            part = PartAnswer(question, "not_covered", "", (), self._missing(plan))
        else:  # the model's own "文件未涉及" is not trusted over evidence that holds the answer
            best = holding[0]
            part = PartAnswer(question, "quoted", trim(best.text, terms) or best.text, (best,),
                              "回答未通过核对" if line else "模型未作答")
        yield from run.emit(self._part_text(part, run, first=index == 0))
        return part

    @staticmethod
    def _events_for(events, index: int):
        """The events of line `index` (earlier unread lines are skipped; None: no model)."""
        if events is None:
            return
        for n, text, done in events:
            if n < index:
                continue
            yield n, text, done
            if done:
                return

    def _evidence_verdict(self, question: str, evidence: tuple[Sentence, ...],
                          terms: list[str] | tuple[str, ...] = ()):
        context = "".join(self.clauses[s.clause_id].text for s in evidence)
        return self.judge.check_evidence(question, "".join(s.text for s in evidence), context,
                                         terms)

    def _part_text(self, part: PartAnswer, run: _Run, first: bool) -> str:
        """What one part reads as, with its citations recorded."""
        sep = "" if first else "\n"
        if part.mode == "not_covered":
            return f"{sep}{part.reason}。"
        labels = "、".join(dict.fromkeys(self.clauses[s.clause_id].label for s in part.evidence))
        run.citations += [Citation(s.clause_id, self.clauses[s.clause_id].label, s.text, True, s.id)
                          for s in part.evidence]
        if part.mode == "generated":
            return f"{sep}{part.text.rstrip('。；;.')}〔{labels}〕。"
        return f"{sep}{labels}写明：「{part.text}」"

    def _complement(self, run: _Run, result: SearchResult, answers: list[PartAnswer],
                    ranker: SentenceRanker) -> Iterator[str]:
        """A runner-up clause that answers another aspect of a one-part question, quoted."""
        have = [self.clauses[s.clause_id] for p in answers for s in p.evidence]
        terms = {t for t in ranker.terms(result.corrected_query or result.query)
                 if t not in self.context_terms}
        for clause in self._complements(result, have, terms):
            best = [s for s in ranker.rank(result.query) if s.clause_id == clause.id][:1]
            if best:
                part = PartAnswer(answers[0].question, "quoted",
                                  trim(best[0].text, list(terms)) or best[0].text, tuple(best))
                answers.append(part)
                yield from run.emit(self._part_text(part, run, first=False))

    def _sentence_label(self, s: Sentence) -> str:
        return f"{self.clauses[s.clause_id].label}第{s.n}句"

    def _complements(self, result: SearchResult, have: list[Clause],
                     terms: set[str]) -> list[Clause]:
        """Runners-up (ranks 2–3) that answer another part of a several-part question.

        The question must join parts (和、分别、以及…), and name one of its `terms`, a distinctive
        one (found in at most RARE_TERM_CLAUSES clauses), that the runner-up contains and the
        clauses already quoted do not.
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


@dataclass(frozen=True)
class _Plan:
    """What is known about one part of the question before the model writes."""

    question: str
    terms: list[str]
    candidates: list[Sentence]
    holding: list[Sentence]  # the best candidates that hold what the part asks (a date...)
    eligible: list[Sentence]  # every candidate that does: what the model's line may rest on


class _Run:
    """Mutable state of one answer while it streams (kept out of the Answer record)."""

    def __init__(self, question: str, style: Style, t0: float):
        self.question, self.style, self.t0 = question, style, t0
        self.parts: list[str] = []
        self.direct: str | None = None  # set once the direct answer is complete
        self.citations: list[Citation] = []
        self.retrieved: tuple[str, ...] = ()
        self.rewritten: str | None = None
        self.standalone = False  # the rewrite is a plain question (a follow-up's entity substituted)
        self.timings: dict[str, float] = {}

    def emit(self, text: str) -> Iterator[str]:
        if text:
            if "first_answer_text" not in self.timings:
                self.timings["first_answer_text"] = (time.perf_counter() - self.t0) * 1000
            self.parts.append(text)
            yield text

    def finish(self, refused: bool, mode: Mode) -> Answer:
        self.timings["total"] = (time.perf_counter() - self.t0) * 1000
        text = "".join(self.parts)
        return Answer(self.question, text, tuple(self.citations), refused,
                      self.retrieved, mode, self.style, self.rewritten,
                      {k: round(v, 1) for k, v in self.timings.items()},
                      direct_answer=(self.direct if self.direct is not None else text).strip())


def _timed(chunks: Iterator[str], run: _Run) -> Iterator[str]:
    """Pass model tokens through, noting when the model's own first token came."""
    n = 0
    try:
        for chunk in chunks:
            n += 1
            if n == 1:
                run.timings["model_first_token"] = (time.perf_counter() - run.t0) * 1000
            run.timings["model_tokens"] = n
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()  # release the model lock at once when we stop early


def _adds_to(line: str, question: str, min_new: int = 4) -> bool:
    """The line says something the question did not (「招商引资机制写在」 does not)."""
    grams = {line[i:i + 2] for i in range(len(line) - 1)}
    return len({g for g in grams if g not in question}) >= min_new


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


__all__ = ["TIMINGS", "Answer", "Pipeline", "Turn", "validate_question"]
