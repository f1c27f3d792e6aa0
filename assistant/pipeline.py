"""ask → Answer: screen, resolve follow-ups, retrieve, decide answerability, generate, verify, stream.

The model never speaks unchecked: its output is cut into sentences and each one is verified
against the clause text before it is streamed; what fails is re-cited or dropped, and if nothing
survives the answer falls back to quoting the most relevant sentences of the top clauses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import chain
from typing import Literal

from .answer import Answer, Mode, Style, Turn, validate_question
from .answerability import AnswerabilityJudge, kind_pattern
from .citations import Citation, Verifier, places_in
from .config import Settings
from .corpus import Clause, Sentence, int_to_cn, normalize
from .embedding import Embedder
from .evidence import (PartAnswer, SentenceRanker, asks_location, asks_outline, asks_overview,
                       asks_yes_no, conjuncts, coordinate, counted_in, grammar, line_events, line_opening,
                       split_question, trim, without_residence)
from .followup import FOLLOWUP_RE, Rewrite, rewrite, substitute
from .generation import Generator, Message
from .lexical import gazetteer
from .parts import PartWriter, Plan
from .retrieval import Retriever, SearchResult
from .safety import screen, set_aside, without_markup
from .streaming import Turns
from .templates import render

# A question joining several parts (「城市定位和产业」「分别」「交通、城市、物流」).
# A question joining several things (「A和B」「分别」「以及」「从…到…」).
_SEVERAL_THINGS_RE = re.compile(r"[和与及、]|分别|以及|方面|两块|两个|从.+到")
COMPLEMENT_MIN_SCORE = 0.5  # a runner-up quoted as a complement scores at least this × the top
# A part going on from the one before (「…？在新兴产业上又要建哪些基地？」).
_GOES_ON = re.compile(r"又|还要|还有|也要|也有|同时|此外|另外")
PART_TOP_K = 2  # each part of a several-part question adds its own top clauses to the evidence
# Evidence shown to the model per part: its best sentence, cut to the phrases with the part's
# terms (at most 2 × 40 characters). Every prompt token costs ~11 ms before the first one
# is written (~90 tok/s on 2 cores); measured on gold, two sentences per part doubled that.
EVIDENCE_PER_PART = 1
PROMPT_QUOTE_CHARS = 40
RETRY_QUOTE_CHARS = 60  # asked again, the model sees more of the sentence (up to 2 × this)
RARE_TERM_CLAUSES = 6  # a term in more clauses than this says nothing about which one answers


class Pipeline:
    """The answer pipeline over one retriever and one (optional) generator."""

    def __init__(self, settings: Settings, retriever: Retriever, generator: Generator | None,
                 turns: Turns | None = None):
        self.settings, self.retriever, self.generator = settings, retriever, generator
        # Answers take turns on the LLM, as many at once as it has batch slots.
        self.turns = (turns if turns is not None
                      else Turns(capacity=getattr(generator, "slots", 1)))
        index = retriever.index
        self.clauses = {c.id: c for c in index.clauses}
        self.document = index.documents[0]
        names, counties = gazetteer()
        self.places = set(names)
        text = "".join(c.text for c in index.clauses)
        self.vocabulary = frozenset(normalize(text))
        self.judge = AnswerabilityJudge(text, places=frozenset(self.places),
                                        titles=tuple(d.title for d in index.documents),
                                        counties=counties)
        # Words any answer may use without support: the region the document is about (the
        # places and zones its title names) and words naming the province as a whole.
        titles = " ".join(d.title for d in index.documents)
        zones = re.findall(r"([\u4e00-\u9fff]{2,4})(经济区|城市群|新区)", titles)
        self.context_terms = ({p for p in self.places if p in titles}
                              | {z for pair in zones for z in (pair[0], "".join(pair))}
                              | {"四川", "全省", "我省", "文件", "政策"})
        # What every sentence is about, named or not: a sentence is not the answer for saying it.
        self.subject = frozenset(self.context_terms | {d.title for d in index.documents})
        self.writer = PartWriter(self.clauses, self.places, self.context_terms, self.judge,
                                 titles, self.judge.abbreviated)
        self.system_prompt = render(
            "system", title=self.document.title, source=self.document.source,
            date=self.document.date,
            clauses="\n".join(f"【{c.id}】{c.text}" for c in index.clauses)
            if settings.llm_document_in_prompt else "",
        )

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None,
                      generator: Generator | None = None, *, retriever: Retriever | None = None,
                      progress: bool = False) -> Pipeline:
        """The pipeline the settings describe (parts given are used as they are); models load
        lazily, warm_up() reads the document into the LLM's cache now."""
        from .generation import make_generator
        from .retrieval import load_retriever

        if retriever is None:
            retriever = load_retriever(settings, embedder=embedder, progress=progress)
        return cls(settings, retriever, generator or make_generator(settings))

    # -- public API ----------------------------------------------------------

    def warm_up(self) -> str:
        """Read the fixed system prompt (the whole document) into the model's KV cache once.

        Backends that can persist that cache (llama-cpp) restore it from settings.cache_dir.
        """
        self.retriever.search("川东北经济区")  # loads jieba's dictionaries and the query path
        if self.generator is None:
            return "no-model"
        # The user turn's fixed opening (the answer prompt's instruction) is cached with it.
        messages = [Message("system", self.system_prompt), Message("user", render("opening"))]
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

    def stream(self, question: object, history: Sequence[Turn] = (), style: Style = "public",
               cancel: threading.Event | None = None) -> Iterator[str | Answer]:
        """Yield verified text pieces as they are ready, then the final Answer; setting `cancel`
        stops the model at its next token, or before its turn on the LLM."""
        t0 = time.perf_counter()
        q = validate_question(question, self.settings.max_question_chars)
        style = style if style in ("public", "official") else "public"
        run = _Run(q, style, t0, cancel, self.turns)
        verdict = screen(q)
        # 「你觉得这份文件对…是怎么安排的」: the framing is set aside when a document question
        # remains; that question is answered, with a note that the framing was not.
        aside = set_aside(q, verdict)
        if verdict.verdict != "ok" and aside is None:
            yield from run.emit(self._refusal(verdict.verdict, ""))
            yield run.finish(refused=True, mode="refused")
            return
        run.aside = verdict.verdict if aside else ""
        # Markup is screened above (</system>), then set aside: the text it wraps is the question.
        plain = without_markup(aside or q)
        if not plain:  # nothing but markup: no question to answer
            yield from run.emit(self._refusal("off_topic", ""))
            yield run.finish(refused=True, mode="refused")
            return
        follow = self._resolve_followup(plain, history)
        # What is set aside (a framing, markup) leaves a standalone question that differs from q.
        rewritten = follow.question if follow else (plain if plain != q else None)
        run.rewritten = rewritten
        run.standalone = bool(follow and follow.standalone) or (follow is None and plain != q)
        t = time.perf_counter()
        # A rewrite carries the previous answer's labels (第（七）条): context, not a lookup.
        # 「达州人…」: the asker's place; 「《…实施意见》里…」: the document itself.
        asked = run.asked = self.judge.without_own_titles(self.judge.without_foreign_preamble(
            without_residence(rewritten or q, self.places)))
        if follow is None and asks_outline(asked):
            yield from self._outline_answer(run)
            return
        result = self.retriever.search(asked, k=self.settings.top_k,
                                       use_lookup=follow is None)
        if follow is not None:
            result = self._prefer(result, history, follow)
        run.timings["retrieval"] = (time.perf_counter() - t) * 1000
        run.retrieved = tuple(h.clause.id for h in result.hits)
        verdict_doc = self.judge.judge(asked, result, result.lexical_matches or 0)
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
        yield from self._lookup_closed(run, "\n".join(lines))

    def _outline_answer(self, run: _Run) -> Iterator[str | Answer]:
        """「这份文件主要讲了什么」「分为几个部分」: the document's chapters and the measures under
        each, from its structure (no model); each chapter cites its first clause's title."""
        doc = self.document
        measures = [c for c in doc.clauses if c.is_measure]
        count = f"{int_to_cn(len(doc.chapters))}个部分"
        if measures:
            count += f"、{int_to_cn(len(measures))}条措施"
        named = re.match(r"《[^》]+》", doc.title or "")
        lines = [f"{named.group(0) if named else '这份文件'}共{count}："]
        for ch in doc.chapters:
            own = [self.clauses[cid] for cid in ch.clause_ids if cid in self.clauses]
            numbered = [c for c in own if c.is_measure]
            span = ""
            if len(numbered) == 1:
                span = f"（{numbered[0].label}）"
            elif numbered:
                span = f"（{numbered[0].label.removesuffix('条')}至{numbered[-1].label.removeprefix('第')}）"
            lines.append(f"{ch.heading}{span}")
            if own:  # a paragraph's title is cut (…): its first sentence is quoted
                first = own[0]
                quote = first.title if first.title in first.text else first.text.split("。")[0]
                run.citations.append(Citation(first.id, first.label, quote, quote in first.text))
        yield from self._lookup_closed(run, "\n".join(lines))

    def _lookup_closed(self, run: _Run, direct: str) -> Iterator[str | Answer]:
        """A model-free direct answer, then the notice, then the Answer (mode lookup)."""
        yield from run.emit(direct)
        run.direct = "".join(run.parts)
        yield from run.emit(_aside_note(run.aside))
        yield from run.emit("\n\n" + render("notice", style=run.style))
        yield run.finish(refused=False, mode="lookup")

    def _locate_answer(self, run: _Run, plans: Sequence[Plan]) -> Iterator[str | Answer]:
        """「…写在哪一条」: the clause of each part's best evidence sentence, with that sentence
        quoted (「教育和医疗分别在哪一条」: a line per part)."""
        lines = []
        for plan in plans:
            best = plan.holding[0]
            c = self.clauses[best.clause_id]
            title = f"「{c.title.rstrip('。')}」" if c.id.isdigit() else ""
            quoted = [best]
            # 「社保跨地区办理、治安上互相配合…归在哪一条」: a second sentence of that clause when
            # it holds words of the question the first does not.
            own = plan.own or plan.question
            for s in plan.holding[1:]:
                if s.clause_id == best.clause_id and any(
                        len(t) >= 2 and t in own and t in s.text and t not in best.text
                        for t in plan.terms):
                    quoted.append(s)
                    break
            quotes = "".join(f"「{trim(s.text, plan.terms) or s.text}」" for s in quoted)
            run.citations += [Citation(c.id, c.label, s.text, True, s.id) for s in quoted]
            lines.append(f"写在{c.label}{title}：{quotes}")
        yield from self._lookup_closed(run, "\n".join(lines))

    def _generated_answer(self, run: _Run, result: SearchResult) -> Iterator[str | Answer]:
        """Answer each part of the question from its own evidence sentences, streaming per part."""
        given = [h.clause for h in result.hits]
        scores = [h.score for h in result.hits]
        if run.rewritten is None or run.standalone:
            questions = self._elliptic_parts(split_question(run.asked))
        else:
            questions = [result.corrected_query or result.query]
        owns = [self.retriever.speller.correct(q) for q in questions]  # typos corrected once
        if len(questions) > 1:
            # Each part is searched too: a part's clause may rank below the whole question's top
            # ones (「嘉陵江上要推进哪个航电枢纽？…在生态上又要建设什么示范区？」 → 第（一）条).
            have = {c.id for c in given}
            wider = list({h.clause.id: h.clause for own in owns
                          for h in self.retriever.search(own, k=PART_TOP_K, use_lookup=False).hits
                          if h.clause.id not in have}.values())
            # (scored below every clause found for the whole question: a part naming little of
            # its own, 「最后要共同打造什么」, is still answered from those)
            given, scores = given + wider, scores + [0.0] * len(wider)
            run.retrieved += tuple(c.id for c in wider)  # after the question's own top k
        verifier, ranker = self._evidence(given, scores)
        plans = [self._plan(own, ranker) for own in owns]
        for i in range(1, len(owns)):
            # 「南充在循环经济方面…？在新兴产业上又要建哪些基地？」: a part going on (又, 还, 也)
            # without a place of its own asks of the place of the part before, when the text
            # says it of that place in a sentence the part alone could rest on too (not
            # 「南充的定位？嘉陵江流域又要建什么示范区？」: 南充's sentences are about another thing).
            before = places_in(owns[i - 1], self.places)
            if before and not places_in(owns[i], self.places) and _GOES_ON.search(owns[i]):
                lead = "和".join(before)
                plan = self._plan(lead + owns[i], ranker)
                if plan.holding and plan.holding[0] in plans[i].eligible:
                    questions[i], owns[i], plans[i] = lead + questions[i], lead + owns[i], plan
        for i in range(1, len(owns)):
            # 「文件提到贫困县全部摘帽吗？要在哪一年完成？」: a date or quantity asked by a part
            # naming nothing of its own is of the thing the part before named: asked of it, or
            # refused when no sentence naming it gives one (「成南达万高铁总投资是多少？预计哪一年
            # 建成通车？」: another thing's 到2022年…初步建成 does not answer it).
            # (the nearest part before that names a thing: 「…总投资多少？装机容量多大？哪年建成？」)
            before = next((plans[j] for j in range(i - 1, -1, -1)
                           if self.writer.rare_words(plans[j])), plans[i - 1])
            thing = self.writer.thing_before(plans[i], before)
            if thing:
                lead = "".join(thing)
                plan = self._plan(lead + owns[i], ranker)
                if plan.holding and any(t in plan.holding[0].text for t in thing):
                    questions[i], owns[i], plans[i] = lead + questions[i], lead + owns[i], plan
                else:
                    plans[i] = self.writer.naming_only(plans[i], thing)
        if len(questions) == 1 and (items := conjuncts(owns[0])) is not None:
            # 「A和B怎么安排」 is two parts when A and B are answered in different clauses.
            split = coordinate(owns[0])
            halves = self.writer.apart(
                [self._plan(h, ranker) for h in split],
                items[1:3])
            if all(h.holding for h in halves) and len(
                    {h.holding[0].clause_id for h in halves}) == 2:
                questions, plans = split, halves
        if len(questions) == 1 and asks_overview(owns[0]) and not asks_location(owns[0]):
            # 「南充机场有哪些安排」: what each clause says of it, a part per clause, also of the
            # clauses naming it that the search did not rank among the top ones.
            have = {c.id for c in given}
            wider = [self.clauses[i] for i in self.writer.naming(self.writer.thing(plans[0]))
                     if i not in have]
            if wider:
                low = min((h.score for h in result.hits), default=1.0)
                given, scores = given + wider, scores + [low] * len(wider)
                verifier, ranker = self._evidence(given, scores)
                plans = [self._plan(owns[0], ranker)]
            if spread := self.writer.spread(plans[0]):
                questions, plans = questions * len(spread), spread
        if not any(plan.holding for plan in plans):  # no evidence holds what is asked: no model
            reason = "；".join(dict.fromkeys(self.writer.missing(plan) for plan in plans))
            yield from run.emit(self._refusal("not_covered", reason))
            yield run.finish(refused=True, mode="refused")
            return
        if all(asks_location(q) and p.holding for q, p in zip(questions, plans)):
            yield from self._locate_answer(run, plans)
            return
        events = self._model_lines(run, questions, plans)
        settled: dict[int, PartAnswer] = {}
        held: dict[int, _Held] = {}  # parts written after a failed one: shown once it is settled
        failed: list[int] = []
        retry = events is not None and self.settings.llm_retry
        try:
            for i, plan in enumerate(plans):
                sink = _Held(run) if failed else run
                # The first of several parts is not retried: every later part would wait for
                # the retry (measured: first text 10–15 s on three-part gold answers).
                part = yield from self.writer.write(
                    sink, i, plan, events, verifier, _taken(settled),
                    final=not retry or (i == 0 and len(plans) > 1))
                if part.mode == "retry":
                    failed.append(i)  # nothing shown yet
                    continue
                settled[i] = part
                if isinstance(sink, _Held):
                    held[i] = sink
            if failed:
                # Ask once more for the parts whose lines failed, with more of each one's
                # evidence sentence and the instruction to copy from it: measured on gold, most
                # failed lines restated the question or explained from general knowledge. The
                # other parts keep their lines.
                events.close()
                events = self._model_lines(run, [questions[i] for i in failed],
                                           [plans[i] for i in failed], retry=True)
                run.timings["retry"] = len(failed)
                for k, i in enumerate(failed):
                    held[i] = _Held(run)
                    settled[i] = yield from self.writer.write(
                        held[i], i, plans[i], events, verifier, _taken(settled), line_no=k)
                for i in sorted(held):
                    yield from held[i].release()
        finally:
            if events is not None:
                events.close()  # stops the model now, also when the reader hangs up mid-answer
        answers = [settled[i] for i in sorted(settled)]
        if len(answers) == 1 and answers[0].mode != "not_covered":
            yield from self._complement(run, result, answers, plans[0])
        covered = [p for p in answers if p.mode != "not_covered"]
        run.direct = "".join(run.parts)
        quotes = [s for p in covered for s in p.evidence]
        block = "\n".join(f"〔{self._sentence_label(s)}〕「{s.text}」" for s in dict.fromkeys(quotes))
        yield from run.emit("\n\n原文摘录：\n" + block)
        yield from run.emit(_aside_note(run.aside))
        yield from run.emit("\n\n" + render("notice", style=run.style))
        mode: Mode = ("partial" if len(covered) < len(answers)
                      else "generated" if any(p.mode == "generated" for p in answers)
                      else "extractive")
        yield run.finish(refused=False, mode=mode)

    def _evidence(self, clauses: list[Clause], scores: list[float]
                  ) -> tuple[Verifier, SentenceRanker]:
        """The verifier and the sentence ranker over the clauses an answer may rest on."""
        return (Verifier(clauses, self.places, self.context_terms,
                         terms=self.retriever.index.tokenizer, vocabulary=self.vocabulary),
                self._ranker(clauses, scores))

    def _ranker(self, clauses: list[Clause], scores: list[float]) -> SentenceRanker:
        return SentenceRanker(clauses, scores, self.retriever.index.tokenizer,
                              self.retriever.sentence_similarity,
                              self.settings.sentence_dense_weight, self.subject)

    def _plan(self, own: str, ranker: SentenceRanker) -> Plan:
        """One part's plan, searched as the glossary expands it (English terms, everyday words)."""
        return self.writer.plan(self.retriever.glossary.expand(own), ranker, own)

    def _elliptic_parts(self, parts: list[str]) -> list[str]:
        """A later part that names only a new place (「巴中的定位是什么？南充呢？」) asks the part
        before it of that place, as a follow-up turn does (→ 「南充的定位是什么？」)."""
        out = list(parts)
        for i in range(1, len(out)):
            named = places_in(out[i], self.places)
            bare = out[i]
            for p in named:
                bare = bare.replace(p, "")
            if named and _ELLIPTIC.fullmatch(bare.strip()):
                standalone = substitute(out[i - 1], named, self.places)
                out[i] = standalone or out[i]
        return out

    def _model_lines(self, run: _Run, questions: list[str], plans: list[Plan],
                     retry: bool = False):
        """The model's answer lines as phrase-by-phrase events (None without a model).

        The document is in the cached system prompt; the user turn adds each part's best
        evidence sentences (trimmed to the phrases that hold its terms) before the question, so
        the model answers from the sentences its line is then checked against: measured on the
        gold set, without them most lines restated the question or invented what was asked."""
        if self.generator is None:
            return None
        parts = [{"question": q, "yes_no": asks_yes_no(q),
                  "evidence": [trim(s.text, plan.terms, RETRY_QUOTE_CHARS if retry
                                    else PROMPT_QUOTE_CHARS, kind_pattern(q), counted_in(q))
                               or s.text[:2 * PROMPT_QUOTE_CHARS]
                               for s in plan.holding[:EVIDENCE_PER_PART]]}
                 for q, plan in zip(questions, plans, strict=True)]
        if retry:  # more of each part's evidence sentence (a retried part has one), copy only
            prompt = render("retry", parts=parts, style=run.style)
        else:
            prompt = render("answer", question=run.rewritten or run.question, parts=parts,
                            style=run.style)
        messages = [Message("system", self.system_prompt), Message("user", prompt)]
        whether = [p["yes_no"] for p in parts]
        # The first line's opening (tag, quote) is read with the prompt where the backend can.
        prefill = line_opening(whether[0]) if getattr(self.generator, "prefills", False) else ""
        tokens = self.generator.stream(
            messages, max_tokens=self.settings.llm_max_tokens * len(questions),
            temperature=self.settings.llm_temperature,
            grammar=grammar(len(questions), whether, prefilled=bool(prefill)),
            **({"prefill": prefill} if prefill else {}))
        return line_events(chain([prefill], _timed(tokens, run)))

    def _complement(self, run: _Run, result: SearchResult, answers: list[PartAnswer],
                    plan: Plan) -> Iterator[str]:
        """The best sentence of a runner-up clause (ranks 2–3) that answers another aspect of a
        one-part question asking for several things, quoted."""
        if not _SEVERAL_THINGS_RE.search(result.query):
            return
        have = {s.clause_id for p in answers for s in p.evidence}
        shown = "".join(s.text for p in answers for s in p.evidence)
        top = result.hits[0].score
        # A distinctive term of the question (in few clauses) that the evidence shown lacks.
        rare = [t for t in plan.terms if self.writer.clause_count(t) <= RARE_TERM_CLAUSES
                and t not in shown]
        for h in result.hits[1:3]:
            if h.clause.id in have or h.score < COMPLEMENT_MIN_SCORE * top:
                continue
            best = [s for s in plan.eligible if s.clause_id == h.clause.id
                    and any(t in s.text for t in rare)][:1]
            if best:
                part = PartAnswer(answers[0].question, "quoted",
                                  trim(best[0].text, plan.terms) or best[0].text, tuple(best))
                answers.append(part)
                yield from run.emit(self.writer.text(part, run, first=False))
                return

    def _sentence_label(self, s: Sentence) -> str:
        return f"{self.clauses[s.clause_id].label}第{s.n}句"


class _Run:
    """Mutable state of one answer while it streams (kept out of the Answer record)."""

    def __init__(self, question: str, style: Style, t0: float,
                 cancel: threading.Event | None = None, turns: Turns | None = None):
        self.question, self.style, self.t0 = question, style, t0
        self.cancel, self.turns = cancel, turns if turns is not None else Turns()
        self.parts: list[str] = []
        self.direct: str | None = None  # set once the direct answer is complete
        self.citations: list[Citation] = []
        self.retrieved: tuple[str, ...] = ()
        self.rewritten: str | None = None
        self.standalone = False  # the rewrite is a plain question (a follow-up's entity substituted)
        self.aside = ""  # the screen whose framing was set aside (opinion, off_topic), if any
        self.asked = question  # the question as searched and split (context and titles removed)
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


class _Held:
    """A part's text and citations kept back until the parts before it are shown."""

    def __init__(self, run: _Run):
        self.run, self.question = run, run.question
        self.citations: list[Citation] = []
        self.pieces: list[str] = []

    @property
    def parts(self) -> list[str]:  # what the reader will have seen before this part
        return self.run.parts

    def emit(self, text: str) -> Iterator[str]:
        if text:
            self.pieces.append(text)
        return iter(())

    def release(self) -> Iterator[str]:
        self.run.citations += self.citations
        for text in self.pieces:
            yield from self.run.emit(text)


def _taken(settled: dict[int, PartAnswer]) -> dict[str, str]:
    """Evidence sentence id → the text an answered part's line said from it."""
    return {s.id: p.text for p in settled.values() if p.mode == "generated" for s in p.evidence}


def _timed(chunks: Iterator[str], run: _Run) -> Iterator[str]:
    """Pass model tokens through once this answer's turn on the LLM has come, noting when the
    model's own first token came; stop between tokens once the answer is cancelled."""
    n, t = 0, time.perf_counter()
    with run.turns.hold(run.cancel) as ours:
        run.timings["queue_wait"] = (time.perf_counter() - t) * 1000
        try:
            for chunk in chunks if ours else ():
                if run.cancel is not None and run.cancel.is_set():
                    return
                n += 1
                if n == 1:
                    run.timings["model_first_token"] = (time.perf_counter() - run.t0) * 1000
                run.timings["model_tokens"] = n
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()  # frees the model before the next answer's turn


# What is left of a part that names only a place and asks 「…呢」 (「那南充呢？」「还有南充呢」).
_ELLIPTIC = re.compile(r"(?:那|那么|还有|另外)?(?:和|与|跟)?(?:的)?呢?[？?。]?")


def _aside_note(verdict: str) -> str:
    """What the answer says of a framing it set aside (after the quoted evidence)."""
    if verdict == "opinion":
        return "\n\n说明：我不对政策作评价或预测，以上只介绍文件原文的内容。"
    if verdict == "off_topic":
        return "\n\n说明：我只回答问题中与文件有关的部分。"
    return ""


__all__ = ["Pipeline"]
