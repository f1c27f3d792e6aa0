"""Benchmark: answer latency with a warm process over the gold questions.

Prints p50/p95 of time to first streamed text, time to the model's first token, and total time,
for the full pipeline, against a baseline measured in the same run: the same model answering the
same questions from the top-3 clauses pasted into the prompt (no cached document prefix).
Usage: python eval/bench_answers.py [--n 40] [--baseline-n 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.cli import load_pipeline
from assistant.config import Settings
from assistant.evaluation import load_gold
from assistant.scoring import NaiveBaseline, subsample


def pct(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold.jsonl")
    ap.add_argument("--n", type=int, default=40, help="stratified sample of gold questions")
    ap.add_argument("--baseline-n", type=int, default=10)
    args = ap.parse_args()
    settings = Settings()
    t = time.perf_counter()
    pipeline = load_pipeline(settings)
    start = time.perf_counter() - t
    items = subsample(load_gold(Path(args.gold)), args.n)
    first, model_first, total, modes = [], [], [], {}
    for it in items:
        a = pipeline.ask(it.question)
        first.append(a.timings_ms.get("first_token", a.timings_ms["total"]))
        total.append(a.timings_ms["total"])
        if "model_first_token" in a.timings_ms:
            model_first.append(a.timings_ms["model_first_token"])
        modes[a.mode] = modes.get(a.mode, 0) + 1
    base = NaiveBaseline(pipeline.retriever, pipeline.generator, settings.llm_max_tokens)
    b_first, b_total = [], []
    for it in subsample(items, args.baseline_n):
        r = base.answer(it.question)
        b_first.append(r.first_token_ms)
        b_total.append(r.total_ms)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}; LLM {pipeline.generator.id}, {settings.llm_threads} threads")
    print(f"start-up to ready (index + model + KV cache): {start:.1f} s")
    print(f"{len(items)} gold questions, modes: {modes}\n")
    print(f"{'metric':38s} {'p50 ms':>9s} {'p95 ms':>9s}")
    rows = [("pipeline: first streamed text", first),
            ("pipeline: model's first token", model_first),
            ("pipeline: total", total),
            (f"naive baseline (n={len(b_first)}): first token", b_first),
            (f"naive baseline (n={len(b_first)}): total", b_total)]
    for name, xs in rows:
        if xs:
            print(f"{name:38s} {pct(xs, 50):9.0f} {pct(xs, 95):9.0f}")
    if b_first and first:
        print(f"\nratio of p50 first token, pipeline / baseline: "
              f"{pct(first, 50) / pct(b_first, 50):.3f}; model's first token / baseline: "
              f"{pct(model_first, 50) / pct(b_first, 50):.3f}")
        print(f"ratio of p50 total, pipeline / baseline: {pct(total, 50) / pct(b_total, 50):.3f}")


if __name__ == "__main__":
    main()
