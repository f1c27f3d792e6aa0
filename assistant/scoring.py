"""Score full answers against the gold set, and run the naive baseline they are compared with."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import mean, quantiles

from .citations import _ARABIC_RE, _CN_NUM_RE, resolve_ref, strip_marks
from .corpus import cn_number_value, normalize
from .generation import Generator, Message
from .gold import GoldItem
from .retrieval import Retriever

REFUSAL_MARKERS = ("文件未涉及", "未涉及", "没有提到", "没有相关", "无法回答", "没有涉及", "不知道",
                   "抱歉")


@dataclass(frozen=True)
class Result:
    """What the scorer needs from any system's answer to one gold item."""

    answer: str  # the direct answer the user reads (what every answer metric is computed on)
    refused: bool
    cited: tuple[str, ...]
    retrieved: tuple[str, ...]
    first_answer_text_ms: float
    total_ms: float
    mode: str = "generated"
    full_text: str = ""  # everything streamed, quotes and notice included (for outputs.jsonl)


def is_refusal(text: str) -> bool:
    """The refusal detection applied to any system's text (the pipeline's refusals match too)."""
    return any(m in text for m in REFUSAL_MARKERS)


def invented_numbers(text: str, document: str, labels: Iterable[str] = ()) -> list[str]:
    """Numbers in the answer that occur nowhere in the document (Arabic, or 九千-style).

    Clause labels (`一、总体要求 第1段`) are references the system adds, not claims: removed first.
    """
    for label in sorted(labels, key=len, reverse=True):
        text = text.replace(label, "")
    doc = normalize(document)
    doc_numbers = set(_ARABIC_RE.findall(doc))
    bad = [n for n in _ARABIC_RE.findall(normalize(text)) if n not in doc_numbers]
    for run in _CN_NUM_RE.findall(text):
        value = cn_number_value(run)
        if run not in doc and (value is None or str(value) not in doc_numbers):
            bad.append(run)
    return bad


def _pct(xs: list[float], q: int) -> float:
    if not xs:
        return 0.0
    if len(xs) == 1:
        return xs[0]
    return quantiles(xs, n=100, method="inclusive")[q - 1]


def score(items: list[GoldItem], results: dict[str, Result], document: str,
          labels: Iterable[str] = ()) -> dict:
    """Key-phrase recall, pass rate by type, citation P/R, refusals, invented numbers, latency."""
    answerable = [it for it in items if it.answerable]
    refusable = [it for it in items if not it.answerable]
    kp, cp, cr, passes = [], [], [], {}
    invented: list[str] = []
    ratios: list[float] = []
    modes: dict[str, int] = {}
    for it in items:
        r = results[it.id]
        modes[r.mode] = modes.get(r.mode, 0) + 1
        if it.answerable and not r.refused and it.answer:
            ratios.append(len(r.answer) / len(it.answer))
        invented += invented_numbers(r.answer, document, labels)
        if it.answerable:
            text = normalize(r.answer)
            found = [p for p in it.must_include if normalize(p) in text]
            if it.must_include:  # exported feedback may not have them filled in yet
                kp.append(len(found) / len(it.must_include) if not r.refused else 0.0)
            hit = set(r.cited) & set(it.gold_clauses)
            if r.cited:
                cp.append(len(hit) / len(set(r.cited)))
            if it.gold_clauses:
                cr.append(len(hit) / len(set(it.gold_clauses)))
            ok = not r.refused and len(found) == len(it.must_include) and bool(hit)
        else:
            ok = r.refused
        passes.setdefault(it.type, []).append(float(ok))
    first = [results[it.id].first_answer_text_ms for it in items]
    total = [results[it.id].total_ms for it in items]
    answered = sum(v for m, v in modes.items() if m != "refused")
    return {
        "n": len(items),
        "key_phrase_recall": round(mean(kp), 4) if kp else None,
        "citation_precision": round(mean(cp), 4) if cp else None,
        "citation_recall": round(mean(cr), 4) if cr else None,
        "refusal_accuracy": round(mean(float(results[it.id].refused) for it in refusable), 4)
        if refusable else None,
        "false_refusal_rate": round(mean(float(results[it.id].refused) for it in answerable), 4)
        if answerable else None,
        "invented_numbers": len(invented),
        "invented_examples": invented[:10],
        "pass_rate": round(mean(x for xs in passes.values() for x in xs), 4),
        "pass_rate_by_type": {t: round(mean(xs), 4) for t, xs in sorted(passes.items())},
        "multi_pass_rate": round(mean(passes["multi"]), 4) if passes.get("multi") else None,
        "mode_share": {m: round(v / len(items), 4) for m, v in sorted(modes.items())},
        "extractive_share": round(modes.get("extractive", 0) / answered, 4) if answered else None,
        "length_ratio_p50": round(_pct(ratios, 50), 2) if ratios else None,
        "first_answer_text_ms_p50": round(_pct(first, 50), 1),
        "first_answer_text_ms_p95": round(_pct(first, 95), 1),
        "total_ms_p50": round(_pct(total, 50), 1), "total_ms_p95": round(_pct(total, 95), 1),
    }


class NaiveBaseline:
    """Top-3 fused clauses pasted into a plain grounded prompt; no screening, no verification."""

    def __init__(self, retriever: Retriever, generator: Generator, max_tokens: int = 150):
        self.retriever, self.generator, self.max_tokens = retriever, generator, max_tokens

    def answer(self, question: str) -> Result:
        t0 = time.perf_counter()
        hits = self.retriever.search(question, k=3, use_lookup=False).hits
        context = "\n".join(f"【{h.clause.id}】{h.clause.text}" for h in hits)
        messages = [
            Message("system", "你是一个乐于助人的政策问答助手。"),
            Message("user", f"请根据下面的文件内容回答问题，并用【编号】注明出处。如果文件没有相关内容，"
                            f"请回答“文件未涉及”。\n\n{context}\n\n问题：{question}"),
        ]
        parts, first = [], None
        for piece in self.generator.stream(messages, max_tokens=self.max_tokens):
            first = first if first is not None else (time.perf_counter() - t0) * 1000
            parts.append(piece)
        text = "".join(parts)
        known = {h.clause.id: h.clause for h in hits}
        _, refs = strip_marks(text)
        refs += re.findall(r"第\s*[（(]?[一二三四五六七八九十\d]+[)）]?\s*条", text)
        cited = tuple(dict.fromkeys(c for c in (resolve_ref(r, known) for r in refs) if c))
        total = (time.perf_counter() - t0) * 1000
        refused = is_refusal(text)
        return Result(text, refused, cited, tuple(h.clause.id for h in hits), first or total,
                      total, "refused" if refused else "generated", text)


def run_system(items: Iterable[GoldItem], answer: Callable[[str], Result],
               progress: bool = False, desc: str = "") -> dict[str, Result]:
    """Answer every item with one system, with a progress bar."""
    from tqdm import tqdm

    items = list(items)
    return {it.id: answer(it.question) for it in tqdm(items, desc=desc, disable=not progress)}


def subsample(items: list[GoldItem], n: int) -> list[GoldItem]:
    """A deterministic, type-stratified subset of about n items (every k-th item of each type)."""
    if n <= 0 or n >= len(items):
        return list(items)
    by_type: dict[str, list[GoldItem]] = {}
    for it in items:
        by_type.setdefault(it.type, []).append(it)
    out = []
    for group in by_type.values():
        take = max(1, round(n * len(group) / len(items)))
        step = len(group) / take
        out += [group[int(i * step)] for i in range(take)]
    return out
