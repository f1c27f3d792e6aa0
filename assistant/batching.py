"""Serialised embedding with optional micro-batching of concurrent requests.

The embedding model uses every core for one call, so concurrent requests run one at a time. With
micro-batching on, a request that arrives while the model is busy (or within a few milliseconds
of another) waits in a queue; the worker then encodes everything queued of the same kind in one
call, which is cheaper than the same texts one request at a time (eval/bench_embeddings_api.py).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .embedding import Embedder, Kind


@dataclass
class _Request:
    texts: list[str]
    kind: Kind
    future: Future = field(default_factory=Future)


class EmbedQueue:
    """encode(texts, kind) from any thread; one model call at a time, batched when window_ms > 0."""

    def __init__(self, embedder: Embedder, window_ms: float = 5.0, max_batch: int = 256):
        self.embedder, self.window, self.max_batch = embedder, window_ms / 1000.0, max_batch
        self._lock = threading.Lock()  # one model call at a time: all cores, no oversubscription
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._closed = False
        self._worker: threading.Thread | None = None
        self.calls = 0  # model calls made (for tests and the benchmark)

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        """The texts' vectors; blocks until they are computed."""
        if self.window <= 0:
            with self._lock:
                self.calls += 1
                return self.embedder.encode(texts, kind=kind)
        request = _Request(list(texts), kind)
        with self._cond:
            if self._closed:
                raise RuntimeError("embedding queue is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="embed-batcher", daemon=True)
                self._worker.start()
            self._queue.append(request)
            self._cond.notify()
        return request.future.result()

    def _take(self) -> list[_Request] | None:
        """Wait for a request, give others window seconds to join, return one kind's batch."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed and not self._queue:
                return None
            deadline = time.monotonic() + self.window
            while (remaining := deadline - time.monotonic()) > 0 and \
                    sum(len(r.texts) for r in self._queue) < self.max_batch:
                self._cond.wait(remaining)
            kind, batch, size, rest = self._queue[0].kind, [], 0, []
            for r in self._queue:
                if r.kind == kind and (not batch or size + len(r.texts) <= self.max_batch):
                    batch.append(r)
                    size += len(r.texts)
                else:
                    rest.append(r)
            self._queue = rest
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            texts = [t for r in batch for t in r.texts]
            try:
                with self._lock:
                    self.calls += 1
                    vectors = self.embedder.encode(texts, kind=batch[0].kind)
            except BaseException as exc:  # noqa: BLE001 -- handed to every waiting caller
                for r in batch:
                    r.future.set_exception(exc)
                continue
            start = 0
            for r in batch:
                r.future.set_result(vectors[start:start + len(r.texts)])
                start += len(r.texts)

    def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30)
