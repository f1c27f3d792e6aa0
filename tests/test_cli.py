"""The command line, run as a user would (real embedder, real index, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True,
                          check=False, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.mark.real
def test_index_build_then_search_json(tmp_path):
    env = {"ASSISTANT_INDEX_DIR": str(tmp_path / "idx")}
    built = run("index", "build", env_extra=env)
    assert built.returncode == 0, built.stderr
    assert "30 条" in built.stdout and "嵌入条款" in built.stderr  # tqdm progress bar
    out = run("search", "升钟水库灌区二期什么时候建", "-k", "3", "--json", env_extra=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["query"] == "升钟水库灌区二期什么时候建"
    assert len(data["hits"]) == 3
    assert set(data["hits"][0]) == {"clause_id", "label", "chapter", "title", "score", "text"}
    assert data["hits"][0]["clause_id"] == "3" and data["hits"][0]["label"] == "第（三）条"
    assert "total" in data["timings_ms"]


@pytest.mark.real
def test_eval_retrieval_only_writes_report(tmp_path):
    gold = tmp_path / "gold.jsonl"
    rows = [
        {"id": "a", "question": "第十二条讲什么", "type": "locate", "gold_clauses": ["12"],
         "must_include": ["现代服务业"], "answer": "…"},
        {"id": "b", "question": "大熊猫国家公园", "type": "fact", "gold_clauses": ["16"],
         "must_include": ["大熊猫国家公园"], "answer": "…"},
        {"id": "c", "question": "今天天气怎么样", "type": "unanswerable", "gold_clauses": [],
         "must_include": [], "answer": "文件未涉及"},
    ]
    gold.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    out_dir = tmp_path / "out"
    res = run("eval", "--gold", str(gold), "--out", str(out_dir), "--retrieval-only",
              env_extra={"ASSISTANT_INDEX_DIR": str(tmp_path / "idx")})
    assert res.returncode == 0, res.stderr
    for name in ("report.md", "metrics.json", "retrieval.png", "outputs.jsonl"):
        assert (out_dir / name).stat().st_size > 0
    outputs = [json.loads(x) for x in (out_dir / "outputs.jsonl").read_text("utf-8").splitlines()]
    assert [o["id"] for o in outputs] == ["a", "b", "c"]
    assert set(outputs[0]) == {"id", "answer", "direct_answer", "mode", "refused", "citations",
                               "retrieved"}
    assert outputs[0]["retrieved"][0] == "12" and outputs[0]["answer"] == ""
    metrics = json.loads((out_dir / "metrics.json").read_text("utf-8"))
    assert metrics["ablation"]["fused+lookup"]["overall"]["hit@1"] == 1.0
    assert Path(out_dir / "retrieval.png").read_bytes()[:4] == b"\x89PNG"


def test_errors_are_clear_not_tracebacks(tmp_path):
    res = run("search", "   ", env_extra={"ASSISTANT_INDEX_DIR": str(tmp_path / "idx")})
    assert res.returncode == 2 and "问题不能为空" in res.stderr and "Traceback" not in res.stderr
    res = run("eval", "--gold", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"),
              "--retrieval-only", env_extra={"ASSISTANT_INDEX_DIR": str(tmp_path / "idx")})
    assert res.returncode == 2 and "Traceback" not in res.stderr
