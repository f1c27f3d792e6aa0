"""Batched decoding: several answers from one llama.cpp context at once.

One scheduler thread owns the context. The fixed prompt prefix (the whole document) is read
once into sequence 0; a new answer copies those cells to its own sequence id (the cells are
shared, not recomputed), then its own tokens are read in chunks mixed into the same
`llama_batch` as the other answers' next tokens, and after that each answer adds one token per
step. Sampling (grammar, greedy or temperature) is per sequence.

The scheduler talks to llama.cpp only through `Native`, so its logic runs in fast tests on a
fake; `assistant/llama_batched.py` has the real one and the Generator built on it.
"""

from __future__ import annotations

import codecs
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import GeneratorError

_END = object()  # a request's last item: nothing more will come


class Native(Protocol):
    """The llama.cpp operations the scheduler needs; every call comes from its one thread."""

    n_ctx: int
    n_batch: int

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> None: ...
    # entries: (token, position, sequence id, wants logits); raises GeneratorError on failure

    def new_sampler(self, temperature: float, grammar: str | None) -> Any: ...
    def sample(self, sampler: Any, index: int) -> int: ...  # index of an entry with logits
    def free_sampler(self, sampler: Any) -> None: ...
    def piece(self, token: int) -> bytes: ...
    def is_eog(self, token: int) -> bool: ...
    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None: ...
    def seq_rm(self, seq: int) -> None: ...


@dataclass(eq=False)
class Request:
    """One answer asked of the scheduler; its text pieces arrive on `out`."""

    tokens: list[int]
    max_tokens: int
    temperature: float = 0.0
    grammar: str | None = None
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def pieces(self) -> Iterator[str]:
        """The reply's text as it comes; raises what the scheduler failed with."""
        while (item := self.out.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item


class _Seq:
    """A request being answered in a sequence of the context."""

    def __init__(self, seq_id: int, req: Request, start: int, sampler: Any):
        self.id, self.req, self.sampler = seq_id, req, sampler
        self.pending = req.tokens[start:]  # prompt tokens not yet read
        self.pos = start
        self.next_token: int | None = None  # sampled, not yet decoded
        self.generated = 0
        self.cells = len(self.pending) + req.max_tokens  # KV cells it may take
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")


def cut_at_stop(chunks: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """Yield text until a stop string appears, holding back only a tail that could start one."""
    stop = [s for s in stop if s]
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        hits = [i for i in (buffer.find(s) for s in stop) if i >= 0]
        if hits:
            if min(hits):
                yield buffer[:min(hits)]
            return
        hold = max((k for s in stop for k in range(1, len(s)) if buffer.endswith(s[:k])),
                   default=0)
        if len(buffer) > hold:
            yield buffer[:len(buffer) - hold]
            buffer = buffer[len(buffer) - hold:]
    if buffer:
        yield buffer


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Scheduler:
    """Admits up to `slots` requests at once (first come first served) and steps them together.

    `chunk` caps how many prompt tokens ride along with the other sequences' next tokens in
    one step, so an answer being read does not stall the ones being written for long.
    """

    def __init__(self, native: Native, slots: int, chunk: int = 64):
        self._native, self.slots, self._chunk = native, slots, chunk
        self._free = list(range(1, slots + 1))
        self._waiting: deque[Request] = deque()
        self._active: list[_Seq] = []
        self._jobs: deque[Callable[[], None]] = deque()
        self.prefix: list[int] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="llm-batch", daemon=True)
        self._thread.start()

    # -- from any thread ------------------------------------------------------

    def submit(self, req: Request) -> None:
        with self._cond:
            if self._closed:
                raise GeneratorError("模型已关闭")
            self._waiting.append(req)
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the scheduler thread between two steps and return its result."""
        done: queue.SimpleQueue = queue.SimpleQueue()

        def job() -> None:
            try:
                done.put((fn(), None))
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller
                done.put((None, exc))

        with self._cond:
            self._jobs.append(job)
            self._cond.notify()
        result, error = done.get()
        if error is not None:
            raise error
        return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    @property
    def active(self) -> int:
        return len(self._active)

    # -- the scheduler thread -------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._jobs or self._waiting or self._active or self._closed):
                    self._cond.wait()
                if self._closed:
                    break
                jobs = list(self._jobs)
                self._jobs.clear()
            for job in jobs:
                job()
            try:
                self._drop_cancelled()
                self._admit()
                if self._active:
                    self._step()
            except Exception as exc:  # noqa: BLE001 -- every open answer learns of it
                for s in list(self._active):
                    self._finish(s, exc)
        for s in list(self._active):
            self._finish(s, GeneratorError("模型已关闭"))
        for req in self._waiting:
            req.out.put(_END)

    def _drop_cancelled(self) -> None:
        for s in [s for s in self._active if s.req.cancelled.is_set()]:
            self._finish(s)

    def _admit(self) -> None:
        n_ctx = self._native.n_ctx
        while self._free:
            with self._cond:
                if not self._waiting:
                    return
                req = self._waiting[0]
                if req.cancelled.is_set():
                    self._waiting.popleft()
                    req.out.put(_END)
                    continue
                # At least the last prompt token is read, for its logits.
                start = min(common_prefix(self.prefix, req.tokens), len(req.tokens) - 1)
                need = len(req.tokens) - start + req.max_tokens
                taken = len(self.prefix) + sum(s.cells for s in self._active)
                if taken + need > n_ctx:
                    if self._active:
                        return  # room comes back as answers finish
                    self._waiting.popleft()
                    req.out.put(GeneratorError(
                        f"提示词过长：需要 {len(self.prefix) + need} 个位置，上下文只有 {n_ctx}。"
                        "请调大 ASSISTANT_LLM_CONTEXT 或减少 ASSISTANT_TOP_K。"))
                    continue
                self._waiting.popleft()
            seq_id = self._free.pop(0)
            try:
                sampler = self._native.new_sampler(req.temperature, req.grammar)
            except GeneratorError as exc:
                self._free.insert(0, seq_id)
                req.out.put(exc)
                continue
            if start:
                self._native.seq_cp(0, seq_id, 0, start)
            self._active.append(_Seq(seq_id, req, start, sampler))

    def _step(self) -> None:
        """One llama_decode: every writing sequence's next token, then prompt chunks."""
        entries: list[tuple[int, int, int, bool]] = []
        outputs: list[tuple[int, _Seq]] = []
        for s in self._active:
            if s.next_token is not None:
                outputs.append((len(entries), s))
                entries.append((s.next_token, s.pos, s.id, True))
        room = self._native.n_batch - len(entries)
        budget = min(room, self._chunk) if entries else room
        reads: list[tuple[_Seq, int]] = []
        for s in self._active:
            if not s.pending or budget <= 0:
                continue
            take = s.pending[:budget]
            last = len(take) == len(s.pending)
            for j, tok in enumerate(take):
                if last and j == len(take) - 1:
                    outputs.append((len(entries), s))
                entries.append((tok, s.pos + j, s.id, last and j == len(take) - 1))
            reads.append((s, len(take)))
            budget -= len(take)
        self._native.decode(entries)
        for _, s in outputs:
            if s.next_token is not None:
                s.pos, s.next_token = s.pos + 1, None
        for s, n in reads:
            s.pos, s.pending = s.pos + n, s.pending[n:]
        for index, s in outputs:
            self._emit(s, self._native.sample(s.sampler, index))

    def _emit(self, s: _Seq, token: int) -> None:
        if self._native.is_eog(token):
            self._finish(s)
            return
        s.generated += 1
        if text := s.decoder.decode(self._native.piece(token)):
            s.req.out.put(text)
        if s.generated >= s.req.max_tokens:
            self._finish(s)
        else:
            s.next_token = token

    def _finish(self, s: _Seq, error: BaseException | None = None) -> None:
        """End a sequence: flush its text, free its cells, sampler and id."""
        if error is None and (tail := s.decoder.decode(b"", final=True)):
            s.req.out.put(tail)
        s.req.out.put(error if error is not None else _END)
        if error is not None:
            s.req.out.put(_END)
        self._active.remove(s)
        self._native.seq_rm(s.id)
        self._native.free_sampler(s.sampler)
        self._free.append(s.id)
        self._free.sort()

    # -- jobs (run on the scheduler thread through call()) ---------------------

    def read_prefix(self, tokens: list[int]) -> None:
        """Decode tokens into sequence 0 as the shared prefix (replacing the old one)."""
        self._native.seq_rm(0)
        self.prefix = []
        step = self._native.n_batch
        for i in range(0, len(tokens), step):
            self._native.decode([(t, i + j, 0, False) for j, t in enumerate(tokens[i:i + step])])
        self.prefix = list(tokens)

    def touch(self) -> None:
        """One token through a spare sequence: pages the weights in before the first user."""
        if self.prefix and self._free:
            seq = self._free[-1]
            self._native.seq_cp(0, seq, 0, len(self.prefix))
            self._native.decode([(self.prefix[-1], len(self.prefix), seq, True)])
            self._native.seq_rm(seq)
