"""Answers from one LLM to many users: bounded admission, FIFO turns on the model, an answer
stream that holds its slot, and one thread bridge with a sync face (the page) and an async
face (the HTTP API).

Cancellation is one threading.Event per answer, owned by its AnswerStream and handed to the
pipeline, which checks it between model tokens; the same Event identifies the answer in the
LLM's line, so a cancelled waiter leaves the line at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass

POLL_S = 0.25  # how often a consumer waiting for the next event re-reads its place in line


class Slots:
    """A bounded count of requests admitted at once: a full count refuses, it never waits."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._taken >= self.capacity:
                return False
            self._taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._taken -= 1

    @property
    def taken(self) -> int:
        return self._taken


class Turns:
    """Turn-taking on the one LLM, first come first served, `capacity` answers at a time (the
    generator's batch slots; 1 for a backend that answers one question at a time).

    A waiter is known by its cancel Event: once that is set it leaves the line at once instead
    of holding its place until its turn comes.
    """

    def __init__(self, poll: float = 0.05, capacity: int = 1):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._cond = threading.Condition()
        self._line: deque[threading.Event] = deque()
        self._busy = 0  # answers holding a turn
        self._poll = poll
        self.capacity = capacity

    @contextmanager
    def hold(self, cancel: threading.Event | None = None) -> Iterator[bool]:
        """Wait for the LLM and hold it for the block; yields False (not holding it) when
        `cancel` was set while waiting."""
        ours = self._acquire(cancel if cancel is not None else threading.Event())
        try:
            yield ours
        finally:
            if ours:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _acquire(self, me: threading.Event) -> bool:
        with self._cond:
            self._line.append(me)
            try:
                while self._busy >= self.capacity or self._line[0] is not me:
                    if me.is_set():
                        return False
                    self._cond.wait(self._poll)
                self._busy += 1
                return True
            finally:
                self._line.remove(me)
                self._cond.notify_all()

    def ahead(self, cancel: threading.Event) -> int | None:
        """How many answers are before this one (those generating included); None when it is
        not waiting for the LLM."""
        with self._cond:
            for i, waiter in enumerate(self._line):
                if waiter is cancel:
                    return i + self._busy
        return None

    @property
    def waiting(self) -> int:
        return len(self._line)


@dataclass(frozen=True)
class Queued:
    """Not part of the answer: the request waits for the LLM with `ahead` answers before it."""

    ahead: int

    @property
    def text(self) -> str:
        return f"排队中，前面还有 {self.ahead} 位"


class AnswerStream:
    """One admitted answer: iterate it for the pipeline's events.

    It holds its admission slot until it ends or is closed. `cancel()` (from any thread) stops
    the model at its next token, or takes the answer out of the LLM's line, and ends the
    iteration; `close()` (from the iterating thread, or when it is not being iterated) ends the
    pipeline and gives the slot back. Dropping the last reference closes it too.
    """

    def __init__(self, events: Iterator, *, cancel: threading.Event | None = None,
                 turns: Turns | None = None, on_close: Callable[[], None] | None = None):
        self._events, self._turns, self._on_close = events, turns, on_close
        self.cancel_event = cancel if cancel is not None else threading.Event()
        self._open = True
        self._closing = threading.Lock()

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self):
        if not self._open or self.cancel_event.is_set():
            self.close()
            raise StopIteration
        try:
            return next(self._events)
        except BaseException:
            self.close()
            raise

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def ahead(self) -> int | None:
        """Answers before this one in the LLM's line; None when it is not waiting for it."""
        return self._turns.ahead(self.cancel_event) if self._turns is not None else None

    def close(self) -> None:
        with self._closing:
            if not self._open:
                return
            self._open = False
        try:
            close = getattr(self._events, "close", None)
            if close is not None:
                close()
        finally:
            if self._on_close is not None:
                self._on_close()

    def __del__(self) -> None:
        self.close()


# -- the thread bridge: the stream runs on a worker thread; a consumer reads its events -------

_DONE = object()


def _pump(stream: AnswerStream, put: Callable[[tuple], None]) -> None:
    """Run the stream to its end on this worker thread, handing over (event, error) pairs."""
    try:
        for event in stream:
            put((event, None))
    except BaseException as exc:  # noqa: BLE001 -- re-raised on the consumer's side
        put((None, exc))
    finally:
        stream.close()
        put((_DONE, None))


class _Reader:
    """The consumer's side, shared by both faces: unpack handed-over items, and while nothing
    comes, report a changed place in line."""

    def __init__(self, stream: AnswerStream):
        self.stream, self.shown = stream, None

    def idle(self) -> Queued | None:
        ahead = self.stream.ahead
        if ahead and ahead != self.shown:
            self.shown = ahead
            return Queued(ahead)
        return None

    @staticmethod
    def unpack(item: tuple):
        event, error = item
        if error is not None:
            raise error
        return event


def iterate(stream: AnswerStream, poll: float = POLL_S) -> Iterator:
    """The sync face (Gradio callbacks): the answer's events, with Queued while it waits.

    The stream runs on a thread of its own, so an abandoned consumer (a tab closed mid-answer,
    its callback never resumed nor closed) cannot hold the LLM; closing this iterator cancels
    the answer.
    """
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    reader = _Reader(stream)
    threading.Thread(target=_pump, args=(stream, handoff.put), name="answer-stream",
                     daemon=True).start()
    try:
        while True:
            try:
                item = handoff.get(timeout=poll)
            except queue.Empty:
                if (queued := reader.idle()) is not None:
                    yield queued
                continue
            if (event := reader.unpack(item)) is _DONE:
                return
            yield event
    finally:
        stream.cancel()


async def aiterate(stream: AnswerStream, executor: Executor | None = None,
                   poll: float = POLL_S) -> AsyncIterator:
    """The async face (FastAPI handlers): the same events, the stream run in `executor`.

    When the consumer stops early (the client went away), the answer is cancelled and the
    worker closes it after its current step, which frees the LLM and the slot.
    """
    loop = asyncio.get_running_loop()
    handoff: asyncio.Queue = asyncio.Queue()
    reader = _Reader(stream)

    def put(item: tuple) -> None:
        try:
            loop.call_soon_threadsafe(handoff.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down)
            stream.cancel()

    loop.run_in_executor(executor, _pump, stream, put)
    try:
        while True:
            try:
                item = await asyncio.wait_for(handoff.get(), poll)
            except TimeoutError:
                if (queued := reader.idle()) is not None:
                    yield queued
                continue
            if (event := reader.unpack(item)) is _DONE:
                return
            yield event
    finally:
        stream.cancel()
