"""Benchmark: answer latency with a warm process over the gold questions.

Prints p50/p95 of time to first streamed text, time to the model's first token, and total time,
for the full pipeline, against a baseline measured in the same run: the same model answering the
same questions from the top-3 clauses pasted into the prompt (no cached document prefix).
With --users N: N model-answered questions asked one at a time (lone) and all at once, through
the configured engine and through the one-at-a-time llama.cpp path (FIFO turns), interleaved.
Usage: python eval/bench_answers.py [--n 40] [--baseline-n 10] [--users 8 --runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
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


def model_questions(pipeline, items: list[GoldItem], n: int) -> list[str]:
    """The first n questions (fact, number, list) that this pipeline answers with the model."""
    out = []
    for it in items:
        if it.type in ("fact", "number", "list") and pipeline.ask(it.question).mode == "generated":
            out.append(it.question)
            if len(out) == n:
                break
    return out


def _totals(pipeline, questions: list[str], together: bool) -> list[float]:
    """Total answer time (ms) of each question, asked one after another or all at once."""
    if not together:
        return [pipeline.ask(q).timings_ms["total"] for q in questions]
    out: dict[int, float] = {}

    def ask(i: int) -> None:
        out[i] = pipeline.ask(questions[i]).timings_ms["total"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [out[i] for i in range(len(questions))]


def measure_concurrency(engines: dict, questions: list[str], runs: int,
                        progress: bool = False) -> dict:
    """Per engine: p50 of a lone user and of len(questions) users at once, per run
    (engines and modes interleaved in every run); medians over runs and their ratios."""
    per: dict = {name: {"lone_p50_ms": [], "users_p50_ms": []} for name in engines}
    for _ in tqdm(range(runs), desc="concurrency runs", disable=not progress):
        for name, pipeline in engines.items():
            per[name]["lone_p50_ms"].append(pct(_totals(pipeline, questions, False), 50))
            per[name]["users_p50_ms"].append(pct(_totals(pipeline, questions, True), 50))
    out = {"users": len(questions), "runs": runs, "questions": questions, "engines": {}}
    for name, r in per.items():
        lone, users = statistics.median(r["lone_p50_ms"]), statistics.median(r["users_p50_ms"])
        out["engines"][name] = {**r, "lone_p50_med_ms": lone, "users_p50_med_ms": users,
                                "ratio": users / lone,
                                "slots": engines[name].turns.capacity}
    return out


def print_concurrency(c: dict) -> None:
    fifo = c["engines"].get("fifo")
    print(f"\n{c['users']} model-answered questions, {c['runs']} interleaved runs (medians)")
    print(f"{'engine':22s} {'slots':>5s} {'lone p50':>9s} {'users p50':>10s} {'ratio':>6s} "
          f"{'lone/FIFO':>9s}")
    for name, e in c["engines"].items():
        vs = e["lone_p50_med_ms"] / fifo["lone_p50_med_ms"] if fifo else float("nan")
        print(f"{name:22s} {e['slots']:5d} {e['lone_p50_med_ms']:9.0f} "
              f"{e['users_p50_med_ms']:10.0f} {e['ratio']:6.2f} {vs:9.3f}")


def fifo_twin(pipeline, settings: Settings):
    """The same pipeline on the one-at-a-time llama.cpp path (None if it already is one)."""
    from assistant.generation import make_generator

    if getattr(pipeline.generator, "slots", 1) == 1:
        return None
    one = settings.model_copy(update={"llm_parallel": 1})
    twin = Pipeline(one, pipeline.retriever, make_generator(one))
    twin.warm_up()
    return twin


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", default="eval/gold.jsonl")
    ap.add_argument("--n", type=int, default=40, help="stratified sample of gold questions")
    ap.add_argument("--baseline-n", type=int, default=10)
    ap.add_argument("--users", type=int, default=0, help="also: N users at once vs one (8)")
    ap.add_argument("--runs", type=int, default=3, help="interleaved concurrency runs")
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
    if args.users:
        twin = fifo_twin(pipeline, settings)
        engines = {"batched": pipeline, "fifo": twin} if twin else {"fifo": pipeline}
        questions = model_questions(pipeline, load_gold(Path(args.gold)), args.users)
        print_concurrency(measure_concurrency(engines, questions, args.runs, progress=True))


if __name__ == "__main__":
    main()
