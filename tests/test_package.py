"""The package as a user gets it: a wheel installed (not editable) into a fresh venv, every
command run from an empty directory, nothing read from or written to this checkout."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MODEL_CACHE, ROOT

pytestmark = pytest.mark.real

QUESTION = "到2022年川东北地区生产总值目标是多少？"


def _run(cmd: list, *, cwd: Path | None = None, env: dict | None = None,
         timeout: float = 900) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                         check=False, timeout=timeout)
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A wheel of this checkout, installed with --no-deps into a venv that reuses the already
    installed dependencies (--system-site-packages) instead of downloading them again."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"  # the build writes build/ and *.egg-info next to its input, not here
    shutil.copytree(ROOT / "assistant", src / "assistant",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", work / "dist", src])
    [wheel] = (work / "dist").glob("policy_assistant-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    # --ignore-installed: the checkout's own editable install is visible through the system
    # site-packages; it is shadowed by the venv, never uninstalled.
    _run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index",
          "--ignore-installed", wheel])
    return venv


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("assistant-home")


@pytest.fixture
def user(venv, home, tmp_path) -> dict:
    """A user's environment: ASSISTANT_HOME only, plus the shared model cache so the 1.1 GB
    model is not assembled again; no checkout on the path; an empty working directory."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ASSISTANT_") and k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(ASSISTANT_HOME=str(home), ASSISTANT_CACHE_DIR=str(MODEL_CACHE),
               HF_HUB_OFFLINE="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    cwd = tmp_path / "empty"
    cwd.mkdir()
    yield {"env": env, "cwd": cwd, "assistant": venv / "bin" / "assistant"}
    assert list(cwd.iterdir()) == []  # nothing is written to the working directory


def test_the_venv_runs_the_wheel_not_the_checkout(venv, user):
    code = ("import assistant, assistant.config as c, assistant.templates as t; "
            "print(assistant.__file__); print(c.Settings().source_dir); "
            "print(t.render('notice', style='public'))")
    out = _run([venv / "bin" / "python", "-c", code], cwd=user["cwd"], env=user["env"])
    module, source, notice = out.stdout.splitlines()
    assert Path(module).is_relative_to(venv), module
    assert Path(source).is_relative_to(venv) and any(Path(source).glob("*.txt")), source
    assert notice == "具体以文件原文为准。"  # the prompt templates are package data too


def test_index_search_and_ask_from_an_empty_directory(user, home):
    def run(*args: str) -> subprocess.CompletedProcess:
        return _run([user["assistant"], *args], cwd=user["cwd"], env=user["env"])

    built = run("index", "build")
    assert "30 条" in built.stdout
    assert (home / "index" / "manifest.json").is_file()

    hits = json.loads(run("search", "第十二条讲的是什么", "--json").stdout)["hits"]
    assert hits[0]["clause_id"] == "12" and hits[0]["label"] == "第（十二）条"

    answer = json.loads(run("ask", QUESTION, "--json").stdout)
    assert not answer["refused"] and "9000亿元" in answer["answer"], answer
    assert "一-2" in {c["clause_id"] for c in answer["citations"]}
    assert all(c["verified"] for c in answer["citations"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "assistant serve exited early"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("assistant serve did not answer /healthz")


def test_serve_from_an_empty_directory(user, home):
    import httpx

    port = _free_port()
    proc = subprocess.Popen([str(user["assistant"]), "serve", "--port", str(port)],
                            cwd=user["cwd"], env=user["env"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)
        assert httpx.get(f"{base}/v1/models", timeout=10).status_code == 200
        hits = httpx.post(f"{base}/v1/search", json={"query": "第十二条讲的是什么", "k": 3},
                          timeout=60).json()["hits"]
        assert hits[0]["clause_id"] == "12"
        rated = httpx.post(f"{base}/v1/feedback", timeout=30, json={
            "question": QUESTION, "answer": "…", "citations": [{"clause_id": "一-2"}],
            "rating": "down", "reason": "不完整"})
        assert rated.status_code == 201, rated.text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with sqlite3.connect(home / "data" / "feedback.sqlite3") as db:  # ASSISTANT_HOME/data
        assert db.execute("select count(*) from feedback").fetchone()[0] == 1
