"""Benchmark: answer latency with a warm process over the gold questions.

Prints p50/p95 of time to first streamed text, time to the model's first token, and total time,
for the full pipeline, against a baseline measured in the same run: the same model answering the
same questions from the top-3 clauses pasted into the prompt (no cached document prefix).
Usage: python eval/bench_answers.py [--n 40] [--baseline-n 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _benchlib import machine, pct
from tqdm import tqdm

from assistant.config import Settings
from assistant.gold import GoldItem, load_gold
from assistant.pipeline import Pipeline
from assistant.scoring import NaiveBaseline, subsample


@dataclass
class AnswerTimes:
    """Milliseconds per question: the pipeline on every item, the naive baseline on a subset."""

    first: list[float] = field(default_factory=list)  # first text of the answer itself
    model_first: list[float] = field(default_factory=list)  # the model's own first token
    total: list[float] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)
    base_first: list[float] = field(default_factory=list)
    base_total: list[float] = field(default_factory=list)


def measure(pipeline, settings: Settings, items: list[GoldItem], baseline_n: int,
            progress: bool = False) -> AnswerTimes:
    """Answer every item with the pipeline, then a stratified subset with the naive baseline."""
    out = AnswerTimes()
    for it in tqdm(items, desc="answers (pipeline)", disable=not progress):
        a = pipeline.ask(it.question)
        out.first.append(a.timings_ms.get("first_answer_text", a.timings_ms["total"]))
        out.total.append(a.timings_ms["total"])
        if "model_first_token" in a.timings_ms:
            out.model_first.append(a.timings_ms["model_first_token"])
        out.modes[a.mode] = out.modes.get(a.mode, 0) + 1
    base = NaiveBaseline(pipeline.retriever, pipeline.generator, settings.llm_max_tokens)
    for it in tqdm(subsample(items, baseline_n), desc="answers (baseline)", disable=not progress):
        r = base.answer(it.question)
        out.base_first.append(r.first_answer_text_ms)
        out.base_total.append(r.total_ms)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold.jsonl")
    ap.add_argument("--n", type=int, default=40, help="stratified sample of gold questions")
    ap.add_argument("--baseline-n", type=int, default=10)
    args = ap.parse_args()
    settings = Settings()
    t = time.perf_counter()
    pipeline = Pipeline.from_settings(settings)
    pipeline.warm_up()
    start = time.perf_counter() - t
    items = subsample(load_gold(Path(args.gold)), args.n)
    r = measure(pipeline, settings, items, args.baseline_n)
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, python {m['python']}; "
          f"LLM {pipeline.generator.id}, {settings.llm_threads} threads")
    print(f"start-up to ready (index + model + KV cache): {start:.1f} s")
    print(f"{len(items)} gold questions, modes: {r.modes}\n")
    print(f"{'metric':38s} {'p50 ms':>9s} {'p95 ms':>9s}")
    n_base = len(r.base_first)
    rows = [("pipeline: first answer text", r.first),
            ("pipeline: model's first token", r.model_first),
            ("pipeline: total", r.total),
            (f"naive baseline (n={n_base}): first token", r.base_first),
            (f"naive baseline (n={n_base}): total", r.base_total)]
    for name, xs in rows:
        if xs:
            print(f"{name:38s} {pct(xs, 50):9.0f} {pct(xs, 95):9.0f}")
    if r.base_first and r.first:
        print(f"\nratio of p50 first answer text, pipeline / baseline: "
              f"{pct(r.first, 50) / pct(r.base_first, 50):.3f}")
        if r.model_first:
            print(f"ratio of p50 model's first token / baseline first token: "
                  f"{pct(r.model_first, 50) / pct(r.base_first, 50):.3f}")
        print(f"ratio of p50 total, pipeline / baseline: "
              f"{pct(r.total, 50) / pct(r.base_total, 50):.3f}")


if __name__ == "__main__":
    main()
