"""Benchmark: warm-process `assistant search` latency over the gold questions.

Prints the median (p50) and p95 per configuration and the ratio of the full hybrid search to a
dense-only baseline measured in the same run. Usage: python eval/bench_search.py [--repeat 5]
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

from assistant.config import Settings
from assistant.evaluation import load_gold
from assistant.retrieval import load_retriever

CONFIGS = {
    "dense-only (baseline)": {"mode": "dense", "use_lookup": False},
    "bm25-only": {"mode": "bm25", "use_lookup": False},
    "hybrid+lookup (product)": {"mode": "fused", "use_lookup": True},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold.jsonl")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    retriever = load_retriever(Settings())
    questions = [it.question for it in load_gold(Path(args.gold))]
    for q in questions:  # warm up: caches, allocators
        retriever.search(q)
    retriever._query_vectors.clear()
    results: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeat):
        for name, kw in CONFIGS.items():  # interleaved, so machine noise hits all configs alike
            for q in questions:
                retriever._query_vectors.clear()  # measure a fresh question, not the memo
                t = time.perf_counter()
                retriever.search(q, **kw)
                results[name].append((time.perf_counter() - t) * 1000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{len(questions)} questions x {args.repeat} runs, warm process, query-vector memo off\n")
    base = statistics.median(results["dense-only (baseline)"])
    print(f"{'config':26s} {'p50 ms':>8s} {'p95 ms':>8s} {'ratio p50':>10s}")
    for name, xs in results.items():
        p50 = statistics.median(xs)
        p95 = statistics.quantiles(xs, n=20)[-1]
        print(f"{name:26s} {p50:8.1f} {p95:8.1f} {p50 / base:10.2f}x")


if __name__ == "__main__":
    main()
