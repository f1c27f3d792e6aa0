"""One LLM for every user: bounded admission, one stream at a time in arrival order, cancelled
requests free their place at once, full queue → 503 / 「当前咨询人数较多」, embeddings never wait.

The generator here is gated: it holds the LLM until the test opens the gate, so every ordering
below is forced by the test, not by timing.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from conftest import fake_parts, live_server, wait_until

from assistant.answer import Answer
from assistant.api import create_app
from assistant.errors import BusyError
from assistant.pipeline import Pipeline
from assistant.service import Service
from assistant.ui import _ask

REPLY = "回答：到2022年,川东北经济区地区生产总值力争突破9000亿元。\n回答：区域协同发展机制更加完善。"
# The first piece is the whole first line: a part is shown once its line ends, and the model
# still holds the LLM while it writes the second part's line.
FIRST = REPLY.index("\n") + 1
QUESTION = "到2022年川东北地区生产总值要达到多少？区域协同发展机制要怎样？"


class GatedGenerator:
    """Streams REPLY, but after the first piece produces only empty tokens until `gate` opens;
    counts concurrent streams."""

    id = "gated"

    def __init__(self):
        self.gate = threading.Event()
        self.active = self.max_active = self.started = 0
        self.order: list[str] = []  # the user message of each stream, in the order they ran
        self._lock = threading.Lock()

    def stream(self, messages, *, max_tokens=320, temperature=0.0, stop=None, grammar=None):
        with self._lock:
            self.active += 1
            self.started += 1
            self.max_active = max(self.max_active, self.active)
            self.order.append(messages[-1].content)
        try:
            for i in [0, *range(FIRST, len(REPLY), 4)]:
                yield REPLY[i:FIRST] if i == 0 else REPLY[i:i + 4]
                deadline = time.monotonic() + 30
                while not self.gate.wait(0.01):  # empty tokens, as a model "thinking" would
                    assert time.monotonic() < deadline, "gate never opened"
                    yield ""
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return fake_parts(tmp_path_factory.mktemp("conc"), answer_queue_size=3)


def make_service(parts) -> tuple[Service, GatedGenerator]:
    settings, _, retriever = parts
    gen = GatedGenerator()
    return Service(settings, pipeline=Pipeline(settings, retriever, gen), ready=True), gen


def test_admission_is_bounded_and_a_closed_stream_frees_its_slot(parts):
    service, gen = make_service(parts)
    streams = [service.stream(QUESTION) for _ in range(3)]
    with pytest.raises(BusyError) as exc:
        service.stream(QUESTION)
    assert "当前咨询人数较多" in str(exc.value) and exc.value.retry_after > 0
    assert service.queue_status()["admitted"] == 3
    streams[0].close()  # never started: the slot comes back anyway
    streams[1] = None  # dropped without closing: the slot comes back too
    assert service.queue_status()["admitted"] == 1
    again = service.stream(QUESTION)
    gen.gate.set()
    answers = [e for s in (again, streams[2]) for e in s if isinstance(e, Answer)]
    assert [a.cited_ids for a in answers] == [["一-2"], ["一-2"]]
    assert service.queue_status()["admitted"] == 0


def test_streams_take_turns_in_arrival_order_and_never_overlap(parts):
    service, gen = make_service(parts)
    questions = [QUESTION, "2022年川东北经济区生产总值目标是多少", "川东北经济区2022年地区生产总值要突破多少"]
    results: dict[int, list] = {}

    def ask(i: int) -> None:
        results[i] = list(service.stream(questions[i]))

    threads = []
    for i in range(3):
        threads.append(threading.Thread(target=ask, args=(i,)))
        threads[-1].start()
        # the next one arrives only once this one holds the LLM or waits in line
        wait_until(lambda n=i + 1: gen.started + service.queue_status()["waiting_for_llm"] == n)
    gen.gate.set()
    for t in threads:
        t.join(30)
    assert gen.max_active == 1 and gen.started == 3
    assert [next(q for q in questions if q in m) for m in gen.order] == questions
    for i in range(3):
        text = "".join(e for e in results[i] if isinstance(e, str))
        assert results[i][-1].text == text and "9000亿元" in text


def test_a_cancelled_waiter_leaves_the_line_at_once(parts):
    service, gen = make_service(parts)
    first = service.stream(QUESTION)
    assert isinstance(next(first), str)  # the first part, verified; the LLM still holds for the second
    holder = threading.Thread(target=lambda: list(first))
    holder.start()
    wait_until(lambda: gen.started == 1)
    cancel = threading.Event()
    waiter_done = threading.Event()

    def wait_in_line() -> None:
        list(service.stream(QUESTION, cancel=cancel))
        waiter_done.set()

    threading.Thread(target=wait_in_line).start()
    wait_until(lambda: service.queue_status()["waiting_for_llm"] == 1)
    cancel.set()
    assert waiter_done.wait(10)  # left while the first answer still holds the LLM
    assert gen.started == 1 and service.queue_status()["admitted"] == 1
    gen.gate.set()
    holder.join(30)
    assert service.queue_status() == {"admitted": 0, "capacity": 3, "waiting_for_llm": 0}


def _hold_the_llm(service: Service, gen: GatedGenerator) -> threading.Thread:
    """One answer that has started and holds the LLM until the gate opens, read on a thread."""
    first = service.stream(QUESTION)
    assert isinstance(next(first), str)
    holder = threading.Thread(target=lambda: list(first))
    holder.start()
    wait_until(lambda: gen.started == 1)
    return holder


def test_a_waiting_page_user_sees_their_place_in_line(parts):
    service, gen = make_service(parts)
    holder = _hold_the_llm(service, gen)
    steps = _ask(service, QUESTION, "public", [])
    next(steps)  # the question shown as pending
    html, turns, _ = next(steps)
    assert "排队中，前面还有 1 位" in html and turns == []
    gen.gate.set()
    html, turns, _ = list(steps)[-1]
    assert len(turns) == 1 and "9000亿元" in html and "排队中" not in html
    holder.join(30)


def test_ui_says_busy_and_keeps_the_question(parts):
    service, gen = make_service(parts)
    held = [service.stream(QUESTION) for _ in range(3)]
    html, turns, box = list(_ask(service, "水利工程有哪些", "public", []))[-1]
    assert "当前咨询人数较多，请稍后再试" in html and box == "水利工程有哪些" and turns == []
    for s in held:
        s.close()
    gen.gate.set()
    html, turns, box = list(_ask(service, QUESTION, "public", []))[-1]
    assert len(turns) == 1 and box == ""


def _chat(question: str, stream: bool = True) -> dict:
    return {"model": "policy-assistant", "stream": stream,
            "messages": [{"role": "user", "content": question}]}


def test_api_full_queue_is_503_with_retry_after_and_embeddings_do_not_wait(parts):
    service, gen = make_service(parts)
    with live_server(create_app(service, ui=False)) as url, httpx.Client(base_url=url,
                                                                          timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json=_chat(QUESTION)) as first:
            lines = first.iter_lines()
            assert json.loads(next(line for line in lines if line.startswith("data:"))[5:])
            wait_until(lambda: gen.started == 1)  # holds the LLM (gate closed)
            # Embeddings and search are served while the answer is still generating.
            r = client.post("/v1/embeddings", json={"model": "fake", "input": ["川东北"]})
            assert r.status_code == 200 and gen.active == 1
            assert client.post("/v1/search", json={"query": "水利", "k": 2}).status_code == 200
            # Fill the remaining slots with waiting requests, then one too many.
            waiting = [threading.Thread(target=client.post, args=("/v1/chat/completions",),
                                        kwargs={"json": _chat(QUESTION, stream=False)})
                       for _ in range(2)]
            for t in waiting:
                t.start()
            wait_until(lambda: service.queue_status()["admitted"] == 3)
            busy = client.post("/v1/chat/completions", json=_chat(QUESTION))
            assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
            err = busy.json()["error"]
            assert err["code"] == "queue_full" and "当前咨询人数较多" in err["message"]
            gen.gate.set()
            text = "".join(json.loads(line[5:])["choices"][0]["delta"].get("content", "")
                           for line in lines if line.startswith("data: {"))
            assert "9000亿元" in text
        for t in waiting:
            t.join(30)
        wait_until(lambda: service.queue_status()["admitted"] == 0)
        assert gen.max_active == 1 and gen.started == 3


def test_api_waiting_stream_gets_its_place_in_line_as_a_comment(parts):
    service, gen = make_service(parts)
    holder = _hold_the_llm(service, gen)
    with live_server(create_app(service, ui=False)) as url, \
            httpx.Client(base_url=url, timeout=30) as client, \
            client.stream("POST", "/v1/chat/completions", json=_chat(QUESTION)) as r:
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith(":")) == ": 排队中，前面还有 1 位"
        gen.gate.set()
        text = "".join(json.loads(line[5:])["choices"][0]["delta"].get("content", "")
                       for line in lines if line.startswith("data: {"))
    assert "9000亿元" in text
    holder.join(30)


def test_api_client_that_disconnects_frees_its_slot_at_once(parts):
    service, gen = make_service(parts)
    with live_server(create_app(service, ui=False)) as url:
        with httpx.Client(base_url=url, timeout=30) as client, \
                client.stream("POST", "/v1/chat/completions", json=_chat(QUESTION)) as r:
            lines = r.iter_lines()  # kept: dropping it would close the response early
            next(lines)
            wait_until(lambda: gen.started == 1)
        # The connection is closed while the LLM is still held (the gate never opened).
        wait_until(lambda: service.queue_status()["admitted"] == 0 and gen.active == 0)
        gen.gate.set()
        with httpx.Client(base_url=url, timeout=30) as client:
            r = client.post("/v1/chat/completions", json=_chat(QUESTION, stream=False))
            assert r.status_code == 200 and "9000亿元" in r.json()["choices"][0]["message"]["content"]


def test_an_abandoned_page_answer_still_frees_the_llm(parts):
    """A page callback that is never resumed nor closed (tab closed mid-answer) must not keep
    the LLM: the answer runs to its end on its own thread."""
    service, gen = make_service(parts)
    steps = _ask(service, QUESTION, "public", [])
    next(steps)  # the question shown as pending
    next(steps)  # the first piece of the answer
    wait_until(lambda: gen.started == 1)
    gen.gate.set()
    wait_until(lambda: service.queue_status()["admitted"] == 0 and gen.active == 0)
    assert steps.gi_frame is not None  # still suspended, never closed
    steps.close()


class GatedEmbedder:
    """A fake embedder whose encode blocks until `gate` opens (the second call onwards)."""

    id = "gated-embedder"

    def __init__(self, inner):
        self.inner, self.gate, self.entered = inner, threading.Event(), 0
        self.dim = inner.dim

    def encode(self, texts, kind="passage"):
        self.entered += 1
        assert self.gate.wait(30), "gate never opened"
        return self.inner.encode(texts, kind)


def test_embedding_floods_are_shed_with_503_not_queued_forever(parts):
    settings, embedder, retriever = parts
    settings = settings.model_copy(update={"api_embed_queue": 2})
    gated = GatedEmbedder(embedder)
    service = Service(settings, embedder=gated, retriever=retriever, ready=True)
    body = {"model": "fake", "input": "川东北"}
    with live_server(create_app(service, ui=False)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        held = [threading.Thread(target=client.post, args=("/v1/embeddings",), kwargs={"json": body})
                for _ in range(2)]
        for t in held:
            t.start()
        # one computing, one waiting for the model
        wait_until(lambda: client.get("/healthz").json()["embeddings"]["pending"] == 2)
        assert gated.entered == 1
        shed = client.post("/v1/embeddings", json=body)
        assert shed.status_code == 503 and shed.json()["error"]["code"] == "queue_full"
        assert shed.headers["Retry-After"] == "1" and "繁忙" in shed.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200  # the loop itself stays responsive
        gated.gate.set()
        for t in held:
            t.join(30)
        assert client.post("/v1/embeddings", json=body).status_code == 200
