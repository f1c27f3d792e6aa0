"""One part of a question: which sentences may answer it, and its line checked as it streams.

A part's *plan* is made before the model runs (the candidate sentences that hold what the part
asks); `PartWriter.write` then reads the model's line for that part phrase by phrase, shows each
prefix that passes verification against one evidence sentence, and otherwise falls back to the
part's best evidence quoted, or says what the text does not give.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from .answerability import AnswerabilityJudge
from .citations import (ASKING_WORDS, CONNECTIVES, Citation, Verifier, places_in, resolve_ref,
                        strip_marks)
from .corpus import Clause, Sentence, arabic_numbers
from .evidence import MAX_ANSWER_CHARS, NOT_COVERED, PartAnswer, SentenceRanker, align, trim

UNVERIFIED_CHARS = 40  # a line with no verified phrase by now is not waited for any longer
_CLAUSE_REF_RE = re.compile(r"第\s*[（(]?\s*[0-9一二三四五六七八九十]+\s*[)）]?\s*条")


class Sink(Protocol):
    """Where a part's text and citations go (the pipeline's running answer)."""

    citations: list[Citation]

    def emit(self, text: str) -> Iterator[str]: ...


@dataclass(frozen=True)
class Plan:
    """What is known about one part of the question before the model writes."""

    question: str
    terms: list[str]
    candidates: list[Sentence]
    holding: list[Sentence]  # the best candidates that hold what the part asks (a date...)
    eligible: list[Sentence]  # every candidate that does: what the model's line may rest on


class PartWriter:
    """Plans and writes the parts of an answer over one document's clauses."""

    def __init__(self, clauses: dict[str, Clause], places: set[str], context_terms: set[str],
                 judge: AnswerabilityJudge):
        self.clauses, self.places, self.context_terms = clauses, places, context_terms
        self.judge = judge

    def plan(self, question: str, ranker: SentenceRanker, own: str = "") -> Plan:
        """One part's content words, ranked candidate sentences, and those that hold its answer.

        `question` is the part as searched (typos corrected, English terms expanded); `own` is
        the part as the user wrote it: the thing a quantity question measures is taken from it.
        """
        named = places_in(question, self.places)
        terms = self._terms(question, ranker)
        candidates = ranker.rank(question)
        mine = self._terms(own, ranker) if own else terms
        # The longest words only: 城镇化率, not also 城镇 and 城镇化.
        # English words stand in the searched text as their Chinese equivalents.
        content = [t for t in mine if t not in named and not t.isascii()
                   and not any(t != o and t in o for o in mine)]
        asked = list(dict.fromkeys(terms + named + re.findall(r"\d+", arabic_numbers(question))))
        eligible = [s for s in candidates
                    if self.verdict(question, (s,), content).answerable
                    and self.judge.relevant(question, s.text, self.context_terms)
                    and self.judge.covers(asked, self.clauses[s.clause_id].text)]
        # A part about a named place rests on sentences that name it: 「达州的定位」 must not be
        # answered with 南充's sentence of the same clause.
        naming = [s for s in eligible if any(p in s.text for p in named)]
        eligible = naming or eligible
        top = set(candidates[:4]) | set(naming[:2])
        return Plan(question, terms, candidates, [s for s in eligible if s in top], eligible)

    def _terms(self, text: str, ranker: SentenceRanker) -> list[str]:
        return [t for t in ranker.terms(text) if not ASKING_WORDS.fullmatch(t)
                and not any(t in c for c in self.context_terms)]

    def missing(self, plan: Plan) -> str:
        """Why no evidence answers this part, in Chinese."""
        verdict = self.verdict(plan.question, tuple(plan.candidates[:1]))
        return verdict.reason or "文件没有写这方面的内容"

    def write(self, run: Sink, index: int, plan: Plan, events, verifier: Verifier):
        """Stream one part: the model's line phrase by phrase while each prefix checks out
        against one evidence sentence, else that part's best evidence quoted, else what the
        text does not give. Returns the PartAnswer."""
        question, terms, holding = plan.question, plan.terms, plan.holding
        sep = "" if index == 0 else "\n"
        shown, evidence, line = "", None, ""
        for n, text, done in events_for(events, index):
            if len(text) >= MAX_ANSWER_CHARS:
                break  # cut off by the length limit: keep what was verified up to a phrase end
            line = _strip_title(strip_marks(text)[0], list(self.clauses.values()))
            if not holding or NOT_COVERED in line:
                continue
            body = line.rstrip("，,、；;：:。！？!?")
            if len(body) < 6 or not _adds_to(body, question, verifier):
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
            part = PartAnswer(question, "not_covered", "", (), self.missing(plan))
        else:  # the model's own "文件未涉及" is not trusted over evidence that holds the answer
            best = holding[0]
            part = PartAnswer(question, "quoted", trim(best.text, terms) or best.text, (best,),
                              "回答未通过核对" if line else "模型未作答")
        yield from run.emit(self.text(part, run, first=index == 0))
        return part

    def verdict(self, question: str, evidence: tuple[Sentence, ...],
                          terms: list[str] | tuple[str, ...] = ()):
        context = "".join(self.clauses[s.clause_id].text for s in evidence)
        return self.judge.check_evidence(question, "".join(s.text for s in evidence), context,
                                         terms)

    def text(self, part: PartAnswer, run: Sink, first: bool) -> str:
        """What one part reads as, with its citations recorded."""
        sep = "" if first else "\n"
        if part.mode == "not_covered":
            return f"{sep}{part.reason}。"
        labels = "、".join(dict.fromkeys(self.clauses[s.clause_id].label for s in part.evidence))
        quoted = {c.sentence_id for c in run.citations}
        run.citations += [Citation(s.clause_id, self.clauses[s.clause_id].label, s.text, True, s.id)
                          for s in part.evidence]
        if part.mode == "generated":
            return f"{sep}{part.text.rstrip('。；;.')}〔{labels}〕。"
        if all(s.id in quoted for s in part.evidence):  # the same sentence answers this part too
            return f"{sep}同上（{labels}）。"
        return f"{sep}{labels}写明：「{part.text}」"


def events_for(events, index: int):
    """The events of line `index` (earlier unread lines are skipped; None: no model)."""
    if events is None:
        return
    for n, text, done in events:
        if n < index:
            continue
        yield n, text, done
        if done:
            return



def _adds_to(line: str, question: str, verifier: Verifier) -> bool:
    """The line names something the question did not (「…有以下安排」「招商引资机制写在」 do not)."""
    words = verifier.terms(line) if verifier.terms else re.findall(r"[\u4e00-\u9fff]{2}", line)
    return any(len(w) >= 2 and w not in question and w not in CONNECTIVES
               and w not in ("以下", "如下", "下列", "这些", "方面") for w in words)


_FRAMING_RE = re.compile(r"^(?:根据|依据|按照)[^，,：:。]{0,8}[，,：:]\s*")


def _strip_title(sentence: str, clauses: list[Clause]) -> str:
    """Drop a leading "<measure title>：" or 「根据文件原文，」 the model likes to echo."""
    sentence = _FRAMING_RE.sub("", sentence)
    for c in clauses:
        for sep in ("：", ":", "，", ","):
            if sentence.startswith(c.title + sep) and len(sentence) > len(c.title) + 6:
                return sentence[len(c.title) + 1:]
    return sentence


