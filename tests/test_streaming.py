"""assistant.streaming on its own: slots, FIFO turns with places in line, the answer stream's
cancel/close, and the thread bridge's two faces. Orderings are forced by events, not timing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import wait_until

from assistant.streaming import AnswerStream, Queued, Slots, Turns, aiterate, iterate


def test_slots_refuse_when_full_and_come_back():
    slots = Slots(2)
    assert slots.take() and slots.take() and not slots.take()
    slots.give_back()
    assert slots.taken == 1 and slots.take()


def _queue_behind(turns: Turns, release: threading.Event, n: int):
    """One holder that keeps the LLM until `release`, then n waiters in arrival order."""
    order: list[int] = []
    cancels = [threading.Event() for _ in range(n)]
    holding = threading.Event()

    def holder() -> None:
        with turns.hold():
            holding.set()
            release.wait(10)

    def waiter(i: int) -> None:
        with turns.hold(cancels[i]) as ours:
            if ours:
                order.append(i)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert holding.wait(10)
    for i in range(n):
        threads.append(threading.Thread(target=waiter, args=(i,)))
        threads[-1].start()
        wait_until(lambda k=i + 1: turns.waiting == k)
    return threads, cancels, order


def test_turns_are_fifo_and_report_places_in_line():
    turns, release = Turns(), threading.Event()
    threads, cancels, order = _queue_behind(turns, release, 3)
    assert [turns.ahead(c) for c in cancels] == [1, 2, 3]  # the holder counts as ahead
    release.set()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2] and turns.waiting == 0


def test_a_cancelled_waiter_leaves_the_line_and_the_rest_move_up():
    turns, release = Turns(), threading.Event()
    threads, cancels, order = _queue_behind(turns, release, 3)
    cancels[0].set()
    wait_until(lambda: turns.waiting == 2)
    assert [turns.ahead(c) for c in cancels] == [None, 1, 2]
    release.set()
    for t in threads:
        t.join(10)
    assert order == [1, 2]


def test_turns_admit_up_to_their_capacity_at_once_and_queue_the_rest_in_order():
    turns, releases = Turns(capacity=2), [threading.Event(), threading.Event()]
    holding = [threading.Event(), threading.Event()]

    def holder(i: int) -> None:
        with turns.hold() as ours:
            assert ours
            holding[i].set()
            releases[i].wait(10)

    holders = [threading.Thread(target=holder, args=(i,)) for i in range(2)]
    for t in holders:
        t.start()
    assert all(h.wait(10) for h in holding)  # both hold a turn at the same time
    cancels = [threading.Event() for _ in range(3)]
    order: list[int] = []

    def waiter(i: int) -> None:
        with turns.hold(cancels[i]) as ours:
            if ours:
                order.append(i)

    waiters = []
    for i in range(3):
        waiters.append(threading.Thread(target=waiter, args=(i,)))
        waiters[-1].start()
        wait_until(lambda k=i + 1: turns.waiting == k)
    assert [turns.ahead(c) for c in cancels] == [2, 3, 4]  # both holders count as ahead
    releases[0].set()
    for t in waiters:
        t.join(10)
    assert order == [0, 1, 2] and turns.waiting == 0
    releases[1].set()
    for t in holders:
        t.join(10)


def test_turns_need_a_positive_capacity():
    with pytest.raises(ValueError):
        Turns(capacity=0)


def _events(items, closed: list):
    try:
        yield from items
    finally:
        closed.append(True)


def test_answer_stream_gives_its_slot_back_once_on_close_cancel_or_drop():
    slots, closed = Slots(3), []
    streams = [AnswerStream(_events(["a", "b"], closed), on_close=slots.give_back)
               for _ in range(3) if slots.take()]
    assert list(streams[0]) == ["a", "b"] and slots.taken == 2  # ran to its end
    streams[1].cancel()
    assert list(streams[1]) == [] and slots.taken == 1  # cancelled before it started
    streams[2].close()
    streams[2].close()
    assert slots.taken == 0
    assert slots.take()
    dropped = AnswerStream(_events(["a"], closed), on_close=slots.give_back)
    del dropped
    assert slots.taken == 0


def test_an_error_in_the_stream_closes_it():
    slots = Slots(1)
    slots.take()

    def broken():
        yield "a"
        raise ValueError("boom")

    stream = AnswerStream(broken(), on_close=slots.give_back)
    with pytest.raises(ValueError):
        list(iterate(stream))
    assert slots.taken == 0


def _waiting_answer(turns: Turns, started: threading.Event):
    def events(cancel: threading.Event):
        with turns.hold(cancel) as ours:
            if ours:
                started.set()
                yield "answer"
    return events


@pytest.mark.parametrize("face", ["sync", "async"])
def test_bridge_shows_the_place_in_line_then_the_answer(face):
    turns, release, started = Turns(), threading.Event(), threading.Event()
    holding = threading.Event()

    def hold_the_llm() -> None:
        with turns.hold():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_llm)
    holder.start()
    assert holding.wait(10)
    cancel = threading.Event()
    stream = AnswerStream(_waiting_answer(turns, started)(cancel), cancel=cancel, turns=turns)
    seen: list = []

    def on_event(event) -> None:
        seen.append(event)
        if isinstance(event, Queued):
            release.set()  # the holder finishes once the place in line was shown

    if face == "sync":
        for event in iterate(stream, poll=0.02):
            on_event(event)
    else:
        async def consume() -> None:
            async for event in aiterate(stream, poll=0.02):
                on_event(event)

        asyncio.run(consume())
    holder.join(10)
    assert seen == [Queued(1), "answer"] and Queued(1).text == "排队中，前面还有 1 位"


def test_closing_the_sync_face_cancels_the_answer_on_its_thread():
    gate, closed = threading.Event(), []

    def slow():
        try:
            yield "first"
            gate.wait(10)
            yield "second"
        finally:
            closed.append(True)

    stream = AnswerStream(slow())
    events = iterate(stream)
    assert next(events) == "first"
    events.close()
    assert stream.cancel_event.is_set()
    gate.set()
    wait_until(lambda: closed == [True])
