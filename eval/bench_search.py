"""Benchmark: warm-process `assistant search` latency over the gold questions.

Prints the median (p50) and p95 per configuration and the ratio of the full hybrid search to a
dense-only baseline measured in the same run. Usage: python eval/bench_search.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _benchlib import machine
from tqdm import tqdm

from assistant.config import Settings
from assistant.gold import load_gold
from assistant.retrieval import Retriever, load_retriever

BASELINE = "dense-only (baseline)"
PRODUCT = "hybrid+lookup (product)"
CONFIGS = {
    BASELINE: {"mode": "dense", "use_lookup": False},
    "bm25-only": {"mode": "bm25", "use_lookup": False},
    PRODUCT: {"mode": "fused", "use_lookup": True},
}


def measure(retriever: Retriever, questions: list[str], repeat: int,
            progress: bool = False) -> dict[str, list[float]]:
    """Milliseconds per search for every config, `repeat` interleaved passes, memo off."""
    for q in questions:  # warm up: caches, allocators
        retriever.search(q)
    results: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in tqdm(range(repeat), desc="retrieval passes", disable=not progress):
        for name, kw in CONFIGS.items():  # interleaved, so machine noise hits all configs alike
            for q in questions:
                retriever._query_vectors.clear()  # measure a fresh question, not the memo
                t = time.perf_counter()
                retriever.search(q, **kw)
                results[name].append((time.perf_counter() - t) * 1000)
    retriever._query_vectors.clear()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold.jsonl")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    retriever = load_retriever(Settings())
    questions = [it.question for it in load_gold(Path(args.gold))]
    results = measure(retriever, questions, args.repeat)
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, python {m['python']}")
    print(f"{len(questions)} questions x {args.repeat} runs, warm process, query-vector memo off\n")
    base = statistics.median(results[BASELINE])
    print(f"{'config':26s} {'p50 ms':>8s} {'p95 ms':>8s} {'ratio p50':>10s}")
    for name, xs in results.items():
        p50 = statistics.median(xs)
        p95 = statistics.quantiles(xs, n=20)[-1]
        print(f"{name:26s} {p50:8.1f} {p95:8.1f} {p50 / base:10.2f}x")


if __name__ == "__main__":
    main()
