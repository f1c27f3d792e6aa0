"""assistant.batching's scheduler on a fake llama.cpp: admission, shared prefix, batches that
mix prompt chunks with other sequences' next tokens, stopping, cancelling and freeing slots.
Orderings are forced by the fake's gate, not by timing."""

from __future__ import annotations

import threading

import pytest
from conftest import wait_until

from assistant.batching import Request, Scheduler, common_prefix
from assistant.errors import GeneratorError

EOS = 0


class FakeNative:
    """Each sequence 'generates' the bytes of a fixed reply, one byte per token (so a Chinese
    character spans three tokens), then EOS; records every batch and KV operation."""

    def __init__(self, replies: dict[int, bytes], n_ctx: int = 4096, n_batch: int = 16):
        self.n_ctx, self.n_batch = n_ctx, n_batch
        self.replies = replies  # first prompt token -> reply bytes
        self.batches: list[list[tuple[int, int, int, bool]]] = []
        self.cells: dict[int, set[int]] = {}  # seq -> positions it holds
        self.first: dict[int, int] = {}  # seq -> first prompt token it read (its request)
        self.written: dict[int, int] = {}
        self.samplers = 0
        self.gate: threading.Semaphore | None = None  # set: each decode takes one permit

    def decode(self, entries):
        if self.gate is not None:
            self.gate.acquire()
        self.batches.append(list(entries))
        for token, pos, seq, _ in entries:
            assert pos not in self.cells.setdefault(seq, set()), "position decoded twice"
            self.cells[seq].add(pos)
            if seq not in self.first and seq != 0:
                self.first[seq] = token
        self.last = entries

    def new_sampler(self, temperature, grammar):
        if grammar == "bad":
            raise GeneratorError("GBNF 语法无法解析")
        self.samplers += 1
        return object()

    def sample(self, sampler, index):
        _, _, seq, wants = self.last[index]
        assert wants
        key = self.first.get(seq, 0)
        n = self.written.get(seq, 0)
        self.written[seq] = n + 1
        reply = self.replies[key]
        return reply[n] + 1 if n < len(reply) else EOS  # token = byte + 1

    def free_sampler(self, sampler):
        self.samplers -= 1

    def piece(self, token):
        return bytes([token - 1])

    def is_eog(self, token):
        return token == EOS

    def seq_cp(self, src, dst, p0, p1):
        self.cells[dst] = {p for p in self.cells.get(src, set()) if p0 <= p < p1}
        self.first.pop(dst, None)
        self.written.pop(dst, None)

    def seq_rm(self, seq):
        self.cells.pop(seq, None)
        self.first.pop(seq, None)
        self.written.pop(seq, None)


PREFIX = [900 + i for i in range(40)]


def _request(first: int, suffix: int = 5, max_tokens: int = 50) -> Request:
    return Request(PREFIX + [first] + [7] * (suffix - 1), max_tokens)


@pytest.fixture
def make():
    made: list[Scheduler] = []

    def build(replies, slots=2, **kw):
        native = FakeNative(replies, **{k: v for k, v in kw.items() if k in ("n_ctx", "n_batch")})
        sched = Scheduler(native, slots, chunk=kw.get("chunk", 4))
        made.append(sched)
        sched.call(lambda: sched.read_prefix(PREFIX))
        return native, sched

    yield build
    for s in made:
        s.close()


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0 and common_prefix([1, 2], [1, 2]) == 2


def test_prefix_is_read_once_and_shared_by_copy(make):
    native, sched = make({1: "南充".encode(), 2: "达州".encode()})
    prefix_batches = len(native.batches)
    a, b = _request(1), _request(2)
    sched.submit(a)
    sched.submit(b)
    assert "".join(a.pieces()) == "南充" and "".join(b.pieces()) == "达州"
    # After the prefix, no batch re-reads a prefix position for a request's sequence.
    for batch in native.batches[prefix_batches:]:
        assert all(pos >= len(PREFIX) for _, pos, seq, _ in batch if seq != 0)
    assert set(native.cells) == {0} and native.samplers == 0  # both sequences freed


def test_multibyte_characters_split_across_tokens_come_out_whole(make):
    text = "川东北经济区：四川省。"
    _, sched = make({1: text.encode()})
    req = _request(1)
    sched.submit(req)
    pieces = list(req.pieces())
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_prompt_chunks_ride_along_with_other_sequences_tokens(make):
    native, sched = make({1: b"a" * 30, 2: b"b" * 5}, chunk=4)
    native.gate = threading.Semaphore(0)
    first = _request(1, suffix=3)
    sched.submit(first)
    native.gate.release(3)  # first's prompt in one batch, then two of its tokens
    wait_until(lambda: native.written.get(1, 0) >= 3)
    second = _request(2, suffix=10)
    sched.submit(second)
    native.gate.release(1000)
    assert "".join(second.pieces()) == "bbbbb" and "".join(first.pieces()) == "a" * 30
    mixed = [b for b in native.batches if {s for *_, s, _ in b} == {1, 2}]
    assert mixed, "the second prompt was never read alongside the first answer's tokens"
    for batch in mixed:
        reading = [e for e in batch if e[2] == 2 and not e[3]]
        assert len(reading) <= 4  # chunk cap while another sequence is writing


def test_requests_beyond_the_slots_wait_in_order(make):
    native, sched = make({i: bytes([96 + i]) * 3 for i in range(1, 5)}, slots=2)
    native.gate = threading.Semaphore(0)
    reqs = [_request(i) for i in range(1, 5)]
    for r in reqs:
        sched.submit(r)
    native.gate.release(1)
    wait_until(lambda: sched.active == 2)
    assert {native.first[s] for s in native.first} == {1, 2}  # the first two, in order
    native.gate.release(1000)
    assert ["".join(r.pieces()) for r in reqs] == ["aaa", "bbb", "ccc", "ddd"]


def test_max_tokens_ends_a_sequence(make):
    native, sched = make({1: b"abcdefgh"})
    req = Request(PREFIX + [1, 7], max_tokens=3)
    sched.submit(req)
    assert "".join(req.pieces()) == "abc"
    assert set(native.cells) == {0}


def test_cancelling_one_stream_frees_its_slot_and_leaves_the_others(make):
    native, sched = make({1: b"x" * 200, 2: b"y" * 20, 3: b"z" * 4}, slots=2)
    native.gate = threading.Semaphore(0)
    long, short = _request(1), _request(2)
    sched.submit(long)
    sched.submit(short)
    native.gate.release(5)
    wait_until(lambda: native.written.get(1, 0) >= 3)
    third = _request(3)
    sched.submit(third)  # waits: both slots taken
    long.cancelled.set()
    sched.wake()
    native.gate.release(1000)
    assert "".join(short.pieces()) == "y" * 20
    assert "".join(third.pieces()) == "zzzz"  # got the cancelled stream's slot
    assert len("".join(long.pieces())) < 200  # it ended when cancelled
    wait_until(lambda: sched.active == 0)
    assert set(native.cells) == {0} and native.samplers == 0


def test_a_prompt_that_can_never_fit_is_refused(make):
    _, sched = make({1: b"a"}, n_ctx=60)
    req = _request(1, suffix=10, max_tokens=50)
    sched.submit(req)
    with pytest.raises(GeneratorError, match="ASSISTANT_LLM_CONTEXT"):
        list(req.pieces())
    ok = Request(PREFIX + [1], max_tokens=5)
    sched.submit(ok)
    assert "".join(ok.pieces()) == "a"


def test_a_bad_grammar_fails_only_its_request(make):
    _, sched = make({1: b"ok"})
    bad = Request(PREFIX + [1], 5, grammar="bad")
    sched.submit(bad)
    with pytest.raises(GeneratorError):
        list(bad.pieces())
    good = _request(1)
    sched.submit(good)
    assert "".join(good.pieces()) == "ok"


def test_a_failing_decode_reaches_every_open_answer(make):
    native, sched = make({1: b"a" * 10, 2: b"b" * 10})
    boom = GeneratorError("llama_decode 失败")

    def decode(entries):
        raise boom

    native.decode = decode
    reqs = [_request(1), _request(2)]
    for r in reqs:
        sched.submit(r)
    for r in reqs:
        with pytest.raises(GeneratorError):
            list(r.pieces())
    assert sched.active == 0
