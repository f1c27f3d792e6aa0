"""Find the clauses that answer a question: dense + BM25 fused by reciprocal rank, and a direct
lookup for questions that name a clause or chapter by number (no model needed for those)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .config import Settings
from .corpus import CN_NUM, Clause, Sentence, cn_to_int
from .embedding import Embedder
from .index import ClauseIndex
from .lexical import Glossary, Speller

Mode = Literal["fused", "dense", "bm25"]


@dataclass(frozen=True)
class Hit:
    """A retrieved clause, its fused score and which retrievers found it."""

    clause: Clause
    score: float
    sources: tuple[str, ...]  # subset of ("lookup", "dense", "bm25")

    def to_dict(self) -> dict:
        """The JSON shape shared by `assistant search --json` and POST /v1/search."""
        c = self.clause
        return {"clause_id": c.id, "label": c.label, "chapter": c.chapter, "title": c.title,
                "score": round(self.score, 4), "text": c.text}


@dataclass(frozen=True)
class Lookup:
    """A clause or chapter the question names by number ("第十二条", "第三章")."""

    kind: Literal["clause", "chapter"]
    number: int
    found: bool


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    lookup: Lookup | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    corrected_query: str | None = None  # after typo correction and English-term expansion
    lexical_matches: int | None = None  # clauses sharing a content word (None: BM25 not run)

    def to_dict(self) -> dict:
        """The JSON shape shared by `assistant search --json` and POST /v1/search."""
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits],
                "timings_ms": self.timings_ms}


_NUM = rf"(?:[{CN_NUM}]+|\d+)"
_CHAPTER_RE = re.compile(rf"第\s*({_NUM})\s*(?:章|部分|大项|大部分|节)")
_CLAUSE_EXPLICIT_RE = re.compile(rf"第\s*[（(]?\s*({_NUM})\s*[)）]?\s*(?:条|项|款)|[（(]\s*({_NUM})\s*[)）]")
_CLAUSE_BARE_RE = re.compile(rf"^\s*({_NUM})\s*(?:条|项)")
_FILLER_RE = re.compile(
    r"^[\s，,。.？?！!：:]*(?:的)?(?:是|讲|说|写|规定|提)?(?:的)?(?:什么|啥|了啥|了什么|些什么|哪些)?"
    r"(?:内容|措施|要求)?(?:呢|吗|啊)?[\s，,。.？?！!]*$"
)


def _to_int(num: str) -> int:
    return int(num) if num.isdigit() else cn_to_int(num)


def parse_lookup(question: str) -> tuple[str, int] | None:
    """("clause", n) or ("chapter", n) when the question names one by number, else None."""
    if m := _CHAPTER_RE.search(question):
        return "chapter", _to_int(m[1])
    if m := _CLAUSE_EXPLICIT_RE.search(question):
        return "clause", _to_int(m[1] or m[2])
    if (m := _CLAUSE_BARE_RE.match(question)) and _FILLER_RE.match(question[m.end():]):
        return "clause", _to_int(m[1])
    return None


def rrf(rankings: list[tuple[list[str], float]], k: int) -> dict[str, float]:
    """Weighted reciprocal-rank fusion of ranked id lists."""
    scores: dict[str, float] = {}
    for ids, weight in rankings:
        for rank, cid in enumerate(ids, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return scores


def zscore_fusion(runs: list[tuple[dict[str, float], float]]) -> dict[str, float]:
    """Weighted sum of per-retriever z-scored scores over the union of candidates.

    A candidate one retriever did not return gets that retriever's lowest returned score.
    Unlike RRF this keeps *how much* better the top clause is, which matters when one retriever
    is confident and the other is guessing.
    """
    candidates = {cid for scores, _ in runs for cid in scores}
    fused = dict.fromkeys(candidates, 0.0)
    for scores, weight in runs:
        if not scores:
            continue
        floor = min(scores.values())
        vals = np.array([scores.get(cid, floor) for cid in candidates], dtype=np.float64)
        std = vals.std() or 1.0
        for cid, v in zip(candidates, (vals - vals.mean()) / std):
            fused[cid] += weight * float(v)
    return fused


class Retriever:
    """Dense + BM25 + direct lookup over one loaded index."""

    def __init__(self, index: ClauseIndex, embedder: Embedder, settings: Settings):
        self.index, self.embedder, self.settings = index, embedder, settings
        self._by_number = {int(c.id): c for c in index.clauses if c.id.isdigit()}
        self.speller = Speller(index.documents, index.tokenizer)
        # A word the documents themselves use (民宿) is searched as it is, not translated.
        text = "".join(d.text for d in index.documents)
        self.glossary = Glossary.bundled().without_words_in(text).with_abbreviations(text)
        self._query_vectors: dict[str, np.ndarray] = {}

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector, memoised (a bounded cache: repeated questions are common)."""
        vec = self._query_vectors.get(query)
        if vec is None:
            vec = self.embedder.encode([query], kind="query")
            if len(self._query_vectors) >= 1024:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            self._query_vectors[query] = vec
        return vec

    # -- single retrievers -------------------------------------------------

    def dense(self, query: str) -> tuple[list[str], dict[str, float]]:
        """Clause ids by their best chunk's cosine similarity to the query."""
        qv = self.embed_query(query)
        n = self.index.vectors_index.ntotal
        scores, rows = self.index.vectors_index.search(qv, min(n, max(64, 20 * self.settings.top_k)))
        best: dict[str, float] = {}
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            cid = self.index.chunks[row].clause_id
            if score > best.get(cid, -np.inf):
                best[cid] = float(score)
        return sorted(best, key=best.get, reverse=True), best

    def sentence_similarity(self, query: str, sentences: Sequence[Sentence]) -> np.ndarray:
        """Cosine similarity of the query to each evidence sentence (vectors from the index)."""
        rows = [self.index.sentence_rows[s.id] for s in sentences]
        return self.index.sentence_vectors[rows] @ self.embed_query(query)[0]

    def bm25(self, query: str) -> tuple[list[str], dict[str, float]]:
        """Clause ids by BM25 score over the tokenised clause text (zero scores dropped)."""
        tokens = self.index.tokenizer(query)
        if not tokens:
            return [], {}
        scores = self.index.bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")
        ids = [self.index.clauses[i].id for i in order if scores[i] > 0]
        return ids, {self.index.clauses[i].id: float(scores[i]) for i in order if scores[i] > 0}

    def lookup(self, question: str) -> tuple[Lookup | None, list[Clause]]:
        """Clauses named by number in the question (a clause, or all clauses of a chapter)."""
        ref = parse_lookup(question)
        if ref is None:
            return None, []
        kind, number = ref
        if kind == "clause":
            clauses = [self._by_number[number]] if number in self._by_number else []
        else:
            chapters = [ch for ch in self.index.chapters() if ch.num == number]
            clauses = [self.index.clause(cid) for ch in chapters for cid in ch.clause_ids]
        return Lookup(kind, number, bool(clauses)), clauses

    # -- the public entry point --------------------------------------------

    def search(self, query: str, k: int | None = None, mode: Mode = "fused",
               use_lookup: bool = True, fusion: str | None = None) -> SearchResult:
        """Top-k clauses for the query; named clauses (direct lookup) come first."""
        k = k or self.settings.top_k
        fusion = fusion or self.settings.fusion
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        corrected = self.glossary.expand(self.speller.correct(query))
        timings["rewrite"] = (time.perf_counter() - t0) * 1000
        runs: list[tuple[list[str], dict[str, float], float, str]] = []
        lexical: int | None = None
        if mode in ("fused", "dense"):
            t = time.perf_counter()
            ids, scores = self.dense(corrected)
            timings["dense"] = (time.perf_counter() - t) * 1000
            runs.append((ids, scores, self.settings.dense_weight, "dense"))
        if mode in ("fused", "bm25"):
            t = time.perf_counter()
            ids, scores = self.bm25(corrected)
            lexical = len(ids)
            timings["bm25"] = (time.perf_counter() - t) * 1000
            runs.append((ids, scores, self.settings.bm25_weight, "bm25"))
        if fusion == "rrf" or len(runs) == 1:
            fused = rrf([(ids, w) for ids, _, w, _ in runs], self.settings.rrf_k)
        else:
            fused = zscore_fusion([(scores, w) for _, scores, w, _ in runs])
        order = sorted(fused, key=lambda cid: -fused[cid])
        ref, named = self.lookup(corrected) if use_lookup else (None, [])
        hits = [Hit(c, 1.0, ("lookup",)) for c in named]
        seen = {c.id for c in named}
        lo, hi = (min(fused.values()), max(fused.values())) if fused else (0.0, 1.0)
        for cid in order:
            if len(hits) >= max(k, len(named)):
                break
            if cid not in seen:
                found_by = tuple(name for ids, _, _, name in runs if cid in ids[: 2 * k])
                hits.append(Hit(self.index.clause(cid), (fused[cid] - lo) / ((hi - lo) or 1.0),
                                found_by))
                seen.add(cid)
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(query, hits, ref, {n: round(v, 2) for n, v in timings.items()},
                            corrected if corrected != query else None, lexical)


def load_retriever(settings: Settings, embedder: Embedder | None = None,
                   progress: bool = False) -> Retriever:
    """The configured (or given) embedder and the (re)built index, wired into a Retriever."""
    from .embedding import make_embedder
    from .index import open_index

    if embedder is None:
        embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    return Retriever(open_index(settings, embedder, progress=progress), embedder, settings)
