"""The long-running service behind the web page and the HTTP API: models loaded once, a readiness
flag, and the few operations the front ends call (embed, search, outline, answer, feedback)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .answer import Answer, Style, Turn
from .citations import Citation
from .config import Settings
from .corpus import Clause
from .embedding import Embedder, Kind
from .errors import AssistantError, BusyError, GeneratorError, ServiceNotReadyError
from .feedback import DB_NAME, FeedbackItem, FeedbackStore, make_item
from .pipeline import Pipeline
from .retrieval import Retriever, SearchResult, load_retriever
from .streaming import AnswerStream, Slots

log = logging.getLogger(__name__)
CHAT_ALIAS = "policy-assistant"  # short model name accepted by /v1/chat/completions
_LABEL_RE = re.compile(r"〔([^〕]{1,16})〕")


@dataclass(frozen=True)
class Outline:
    """The document's metadata and chapters, each with its clauses (for the outline panel)."""

    title: str
    source: str
    date: str
    sha256: str
    chapters: tuple[tuple[str, tuple[Clause, ...]], ...]  # (heading, clauses)

    def to_dict(self) -> dict:
        """The JSON shape of GET /v1/clauses: chapters with each clause's id, label and title."""
        return {"title": self.title, "source": self.source, "date": self.date,
                "document_sha256": self.sha256,
                "chapters": [{"heading": h, "clauses": [
                    {"id": c.id, "label": c.label, "title": c.title} for c in cs]}
                    for h, cs in self.chapters]}


class Service:
    """Settings, embedder, retriever, pipeline and feedback store, with a readiness flag.

    Pass pre-built parts (tests pass fakes); `start()` builds whatever is missing. Embedding,
    search and the outline work as soon as `start()` returns; answering waits for the LLM
    warm-up, which runs in a background thread and sets `ready` when done.
    """

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None,
                 retriever: Retriever | None = None, pipeline: Pipeline | None = None,
                 feedback: FeedbackStore | None = None, ready: bool = False):
        self.settings = settings
        self.retriever = retriever or (pipeline.retriever if pipeline else None)
        self.embedder = embedder or (self.retriever.embedder if self.retriever else None)
        self.pipeline = pipeline
        self.feedback = feedback
        self._ready = threading.Event()
        if ready:
            self._ready.set()
        self._warmup_error: str | None = None
        self._warming = False
        # One embedding call at a time: the model uses every core. Batching concurrent
        # requests together was measured slower here (eval/bench_embeddings_api.py).
        self._embed_lock = threading.Lock()
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._answers_lock = threading.Lock()
        self._start_lock = threading.Lock()
        # Answer streams open at once (one generating, the rest waiting for the LLM), and
        # embedding requests in flight; beyond these, requests are refused with BusyError.
        self.answer_slots = Slots(settings.answer_queue_size)
        self.embed_slots = Slots(settings.api_embed_queue)

    # -- lifecycle -------------------------------------------------------------

    def start(self, warm_up_in_background: bool = True) -> None:
        """Load what is missing (embedder, index, LLM); idempotent."""
        with self._start_lock:
            s = self.settings
            if self.retriever is None:
                t = time.perf_counter()
                self.retriever = load_retriever(s, embedder=self.embedder)
                self.embedder = self.retriever.embedder
                log.info("embedder %s and index %s loaded in %.1f s (%d clauses)", self.embedder.id,
                         s.index_dir, time.perf_counter() - t, len(self.retriever.index.clauses))
            if self.feedback is None:
                self.feedback = FeedbackStore(Path(s.data_dir) / DB_NAME)
            if self.pipeline is None:
                self.pipeline = Pipeline.from_settings(s, retriever=self.retriever)
            if not self._ready.is_set() and not self._warming:
                self._warming = True  # once, even when start() is called again meanwhile
                if warm_up_in_background:
                    threading.Thread(target=self._warm_up, name="llm-warm-up", daemon=True).start()
                else:
                    self._warm_up()

    def _warm_up(self) -> None:
        t = time.perf_counter()
        log.info("LLM warm-up: reading the document into the KV cache ...")
        try:
            self.pipeline.warm_up()
        except AssistantError as exc:  # answering then fails with this reason (also on /healthz)
            self._warmup_error = str(exc)
            self._warming = False
            log.error("LLM warm-up failed: %s", exc)
            return
        log.info("LLM warm-up done in %.1f s; ready", time.perf_counter() - t)
        self._ready.set()

    def close(self) -> None:
        """Close the feedback database (reopened on the next rating)."""
        if self.feedback is not None:
            self.feedback.close()
            self.feedback = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def status(self) -> dict:
        """What /healthz reports."""
        index = self.retriever.index if self.retriever else None
        return {
            "status": "ok" if self.ready else "loading",
            "ready": self.ready,
            "document_sha256": index.documents[0].sha256 if index else None,
            "embedder": self.embedder.id if self.embedder else None,
            "llm": self.llm_id,
            # whether the LLM failed to start; the reason (paths, addresses) is in the log only
            "warmup_failed": self._warmup_error is not None,
            "answers": self.queue_status(),
            "embeddings": {"pending": self.embed_slots.taken, "capacity": self.embed_slots.capacity},
        }

    @property
    def llm_id(self) -> str | None:
        gen = self.pipeline.generator if self.pipeline else None
        return gen.id if gen is not None else ("extractive" if self.pipeline else None)

    def chat_models(self) -> list[str]:
        """Model names /v1/chat/completions accepts: the served LLM id and a short alias."""
        return [m for m in (self.llm_id, CHAT_ALIAS) if m]

    def embedding_models(self) -> list[str]:
        return [m for m in (self.embedder.id if self.embedder else None, self.settings.embedder) if m]

    # -- retrieval side (available once start() returned) -----------------------

    def _require_retrieval(self) -> Retriever:
        if self.retriever is None or self.embedder is None:
            raise ServiceNotReadyError("服务正在启动（加载向量模型与索引），请稍后重试。", 5)
        return self.retriever

    def embed(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        """Vectors for texts; concurrent calls take turns (each uses all cores)."""
        self._require_retrieval()
        with self._embed_lock:
            return self.embedder.encode(texts, kind=kind)

    def search(self, query: str, k: int) -> SearchResult:
        return self._require_retrieval().search(query, k=k)

    def clause(self, clause_id: str) -> Clause:
        """The clause with this id; KeyError if there is none."""
        return self._require_retrieval().index.clause(clause_id)

    def outline(self) -> Outline:
        index = self._require_retrieval().index
        doc = index.documents[0]
        chapters = tuple((ch.heading, tuple(index.clause(cid) for cid in ch.clause_ids))
                         for ch in doc.chapters)
        return Outline(doc.title, doc.source, doc.date, doc.sha256, chapters)

    # -- answering (needs the LLM warmed up) --------------------------------------

    def require_pipeline(self) -> Pipeline:
        """The pipeline once the LLM is warm; otherwise why not (loading → 503, failed → 500)."""
        if self._warmup_error is not None and not self.ready:
            raise GeneratorError(f"语言模型无法启动：{self._warmup_error}")  # shown as public_message
        if self.pipeline is None or not self.ready:
            raise ServiceNotReadyError("模型正在加载（首次启动需读入整篇文件，约一分钟），请稍后重试。", 15)
        return self.pipeline

    def stream(self, question: object, history: Sequence[Turn] = (), style: Style = "public",
               cancel: threading.Event | None = None) -> AnswerStream:
        """Verified text pieces, then the Answer (remembered for later history turns).

        Admission is decided here, before anything runs: with every answer slot taken this
        raises BusyError (→ 503 + Retry-After). Setting `cancel` (the client went away) stops
        the LLM at its next token, or takes the request out of the line; closing the returned
        stream stops everything and frees its slot.
        """
        pipeline = self.require_pipeline()
        if not self.answer_slots.take():
            log.warning("answer queue full (%d); refusing a request", self.answer_slots.capacity)
            raise BusyError(retry_after=min(60, 3 * self.answer_slots.capacity))
        cancel = cancel if cancel is not None else threading.Event()
        events = self._remembering(pipeline.stream(question, history, style, cancel))  # lazy
        return AnswerStream(events, cancel=cancel, turns=pipeline.turns,
                            on_close=self.answer_slots.give_back)

    def _remembering(self, events: Iterator[str | Answer]) -> Iterator[str | Answer]:
        try:
            for event in events:
                if isinstance(event, Answer):
                    self._remember(event)
                yield event
        finally:
            events.close()

    @contextmanager
    def embedding_slot(self) -> Iterator[None]:
        """Hold one of the embedding slots for a request; BusyError when all are taken (shed
        load rather than queue: each embedding call uses every core)."""
        if not self.embed_slots.take():
            raise BusyError("向量服务繁忙，请稍后再试。", retry_after=1)
        try:
            yield
        finally:
            self.embed_slots.give_back()

    def queue_status(self) -> dict:
        turns = self.pipeline.turns if self.pipeline else None
        return {"admitted": self.answer_slots.taken, "capacity": self.answer_slots.capacity,
                "waiting_for_llm": turns.waiting if turns is not None else 0}

    def _remember(self, answer: Answer) -> None:
        with self._answers_lock:
            self._answers[answer.text] = answer
            self._answers.move_to_end(answer.text)
            while len(self._answers) > self.settings.api_answer_cache:
                self._answers.popitem(last=False)

    def turn(self, question: str, answer_text: str) -> Turn:
        """A history Turn from the text of an earlier exchange (for stateless API clients).

        The Answer comes from the recent-answers cache when this server produced it; otherwise
        its citations are recovered from the 〔label〕 marks in the text.
        """
        with self._answers_lock:
            known = self._answers.get(answer_text)
        if known is not None:
            return Turn(question, known)
        by_label = {c.label: c for c in self.retriever.index.clauses} if self.retriever else {}
        cites = tuple(Citation(by_label[m].id, m, "", False)
                      for m in dict.fromkeys(_LABEL_RE.findall(answer_text)) if m in by_label)
        return Turn(question, Answer(question, answer_text, cites, False,
                                     tuple(c.clause_id for c in cites), "generated"))

    # -- feedback --------------------------------------------------------------------

    def add_feedback(self, question: object, answer: object, citations: object, rating: object,
                     reason: object = "") -> int:
        """Validate and store one rating; returns its id."""
        if self.feedback is None:
            self.feedback = FeedbackStore(Path(self.settings.data_dir) / DB_NAME)
        item: FeedbackItem = make_item(question, answer, citations, rating, reason)
        return self.feedback.add(item)
