"""The long-running service behind the web page and the HTTP API: models loaded once, a readiness
flag, and the few operations the front ends call (embed, search, outline, answer, feedback)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .citations import Citation
from .config import Settings
from .corpus import Clause
from .embedding import Embedder, Kind
from .errors import AssistantError, BusyError, GeneratorError, ServiceNotReadyError
from .feedback import DB_NAME, FeedbackItem, FeedbackStore, make_item
from .pipeline import Answer, Pipeline, Style, Turn
from .retrieval import Retriever, SearchResult

log = logging.getLogger(__name__)
CHAT_ALIAS = "policy-assistant"  # short model name accepted by /v1/chat/completions
_LABEL_RE = re.compile(r"〔([^〕]{1,16})〕")


_cancel = threading.local()  # the Event that stops the answer being computed on this thread


class _Turnstile:
    """Turn-taking for the one LLM, first come first served.

    A waiter whose request is cancelled (the client went away) leaves the line at once instead
    of holding its place until its turn comes.
    """

    def __init__(self, poll: float = 0.05):
        self._cond = threading.Condition()
        self._line: deque[object] = deque()
        self._busy = False
        self._poll = poll

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        me = object()
        with self._cond:
            self._line.append(me)
            try:
                while self._busy or self._line[0] is not me:
                    if cancel is not None and cancel.is_set():
                        return False
                    self._cond.wait(self._poll)
                self._busy = True
                return True
            finally:
                self._line.remove(me)
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        return len(self._line)


class _Interruptible:
    """Wraps the pipeline's LLM: one stream at a time, in arrival order, and a cancelled
    request stops it at the next token (or leaves the line if it is still waiting).

    The pipeline pulls tokens on the thread that advances an admitted stream, which puts the
    request's cancel Event in `_cancel` before every step.
    """

    def __init__(self, inner):
        self.inner, self.id = inner, inner.id
        self.turns = _Turnstile()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # e.g. `warm`, so the KV cache is still saved/restored

    def stream(self, messages, **kwargs) -> Iterator[str]:
        event = getattr(_cancel, "event", None)
        if not self.turns.acquire(event):
            return
        tokens = None
        try:
            tokens = self.inner.stream(messages, **kwargs)
            for token in tokens:
                event = getattr(_cancel, "event", None)
                if event is not None and event.is_set():
                    return
                yield token
        finally:
            close = getattr(tokens, "close", None)
            if close is not None:
                close()
            self.turns.release()


class _Admitted:
    """An answer stream holding one of the service's answer slots until it ends or is closed.

    Closing it (or dropping the last reference to it) stops the pipeline, which frees the LLM,
    and gives the slot back.
    """

    def __init__(self, service: Service, events: Iterator[str | Answer],
                 cancel: threading.Event | None):
        self._service, self._events, self._cancel = service, events, cancel
        self._open = True

    def __iter__(self) -> _Admitted:
        return self

    def __next__(self) -> str | Answer:
        if not self._open:
            raise StopIteration
        _cancel.event = self._cancel  # read by _Interruptible on this thread
        try:
            event = next(self._events)
        except BaseException:
            self.close()
            raise
        finally:
            _cancel.event = None
        if isinstance(event, Answer):
            self._service._remember(event)
        return event

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._events.close()
            finally:
                self._service._leave()

    def __del__(self) -> None:
        self.close()


@dataclass(frozen=True)
class Outline:
    """The document's metadata and chapters, each with its clauses (for the outline panel)."""

    title: str
    source: str
    date: str
    sha256: str
    chapters: tuple[tuple[str, tuple[Clause, ...]], ...]  # (heading, clauses)


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
        self._make_interruptible()
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
        self._admitted = 0  # answer streams open now (one generating, the rest waiting)
        self._admit_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def start(self, warm_up_in_background: bool = True) -> None:
        """Load what is missing (embedder, index, LLM); idempotent."""
        from .embedding import make_embedder
        from .index import open_index

        with self._start_lock:
            s = self.settings
            if self.embedder is None:
                t = time.perf_counter()
                self.embedder = make_embedder(s.embedder, s.embed_batch_size)
                log.info("embedder %s loaded in %.1f s", self.embedder.id, time.perf_counter() - t)
            if self.retriever is None:
                t = time.perf_counter()
                self.retriever = Retriever(open_index(s, self.embedder), self.embedder, s)
                log.info("index %s opened in %.1f s (%d clauses)", s.index_dir,
                         time.perf_counter() - t, len(self.retriever.index.clauses))
            if self.feedback is None:
                self.feedback = FeedbackStore(Path(s.data_dir) / DB_NAME)
            if self.pipeline is None:
                from .generation import make_generator

                self.pipeline = Pipeline(s, self.retriever, make_generator(s))
                self._make_interruptible()
            if not self._ready.is_set() and not self._warming:
                self._warming = True  # once, even when start() is called again meanwhile
                if warm_up_in_background:
                    threading.Thread(target=self._warm_up, name="llm-warm-up", daemon=True).start()
                else:
                    self._warm_up()

    def _make_interruptible(self) -> None:
        p = self.pipeline
        if p is not None and p.generator is not None and not isinstance(p.generator, _Interruptible):
            p.generator = _Interruptible(p.generator)

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
               cancel: threading.Event | None = None) -> Iterator[str | Answer]:
        """Verified text pieces, then the Answer (remembered for later history turns).

        Admission is decided here, before anything runs: with every answer slot taken this
        raises BusyError (→ 503 + Retry-After). Setting `cancel` (the client went away) stops
        the LLM at its next token, or takes the request out of the line; closing the returned
        iterator stops everything and frees its slot.
        """
        pipeline = self.require_pipeline()
        self._enter()
        try:
            events = pipeline.stream(question, history, style)
        except BaseException:
            self._leave()
            raise
        return _Admitted(self, events, cancel)

    def _enter(self) -> None:
        with self._admit_lock:
            capacity = self.settings.answer_queue_size
            if self._admitted >= capacity:
                log.warning("answer queue full (%d); refusing a request", capacity)
                raise BusyError(retry_after=min(60, 3 * capacity))
            self._admitted += 1

    def _leave(self) -> None:
        with self._admit_lock:
            self._admitted -= 1

    def queue_status(self) -> dict:
        gen = self.pipeline.generator if self.pipeline else None
        turns = getattr(gen, "turns", None)
        return {"admitted": self._admitted, "capacity": self.settings.answer_queue_size,
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
