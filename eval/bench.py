"""Benchmark suite for the production targets: one command, a Markdown report and a JSON file.

Measures, in one run and on one machine (described in the report, with the load average at the
start and the end):
  concurrency  N users at once vs one, p50 answer time, the configured (batched) engine and the
             one-at-a-time FIFO engine interleaved in each run (eval/bench_answers.py)
  answers    TTFT p50/p95 (first streamed text and the model's own first token) and total time,
             warm process, over a stratified sample of eval/gold.jsonl; naive baseline in the
             same run (eval/bench_answers.py)
  retrieval  Retriever.search p50 over every gold question, several passes, vs dense-only
             (eval/bench_search.py)
  embeddings POST /v1/embeddings throughput vs in-process encoding (eval/bench_embeddings_api.py)
  cold start `python app.py` launch to /healthz ready=true with the KV state on disk; with
             --cold-kv also without it (one run, ~2 min)
  memory     peak RSS of the serving process (sampled while loading and answering over HTTP)
             and of this process
  index      build_index + save for the document and for a synthetic corpus in its format
Usage: python eval/bench.py [--quick] [--runs N] [--synthetic-clauses N] [--cold-kv]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_answers
import bench_embeddings_api
import bench_search
import httpx
from _benchlib import RssSampler, load_average, machine, pct, server
from _benchreport import render
from tqdm import tqdm

from assistant.config import Settings
from assistant.corpus import Document, int_to_cn
from assistant.embedding import Embedder
from assistant.gold import load_gold
from assistant.index import build_index, save_index
from assistant.pipeline import Pipeline
from assistant.scoring import subsample

EVAL = Path(__file__).resolve().parent
GB = 2**30
# The targets: figure -> (label, where in the results, scale, comparison, bound, unit).
TARGETS = {
    "first_answer_text_p50_s": ("first answer text p50 (verified text, not a header)",
                                ("answers", "first_answer_text_p50_ms"), 1e-3, "<=", 1.5, "s"),
    "total_answer_p50_s": ("full answer p50", ("answers", "total_p50_ms"), 1e-3, "<=", 5.0, "s"),
    "users_p50_ratio": ("8 users at once p50 / one user p50", ("concurrency", "ratio"), 1, "<=",
                        2.5, "x"),
    "lone_vs_fifo": ("one user p50, batched / FIFO engine (same run)",
                     ("concurrency", "lone_vs_fifo"), 1, "<=", 1.10, "x"),
    "retrieval_p50_ms": ("retrieval p50 (hybrid+lookup)", ("retrieval", "p50_ms"), 1, "<=", 30.0,
                         "ms"),
    "embedding_api_throughput_ratio": ("embedding API throughput / in-process",
                                       ("embeddings", "throughput_ratio"), 1, ">=", 0.9, "x"),
    "serve_peak_rss_gb": ("peak RSS, serving process", ("cold_start", "peak_rss_bytes"), 1 / GB,
                          "<=", 3.0, "GB"),
    "cold_start_ready_s": ("cold start to ready (KV state on disk)",
                           ("cold_start", "ready_p50_s"), 1, "<=", 20.0, "s"),
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--runs", type=int, help="repeats of each repeated measurement (3; quick 2)")
    # Both samples are type-stratified: at least one question of each of the 7 types.
    ap.add_argument("--answers", type=int, help="gold questions answered (30; quick 7)")
    ap.add_argument("--baseline-n", type=int, help="of those, by the naive baseline (10; quick 7)")
    ap.add_argument("--users", type=int, help="users at once in the concurrency phase (8)")
    ap.add_argument("--served-answers", type=int, help="answers over HTTP for RSS (6; quick 2)")
    ap.add_argument("--synthetic-clauses", type=int, help="synthetic corpus size (10000; quick 500)")
    ap.add_argument("--cold-kv", action="store_true", help="also time a start without KV state")
    ap.add_argument("--gold", type=Path, default=EVAL / "gold.jsonl")
    ap.add_argument("--out-dir", type=Path, default=EVAL / "results")
    args = ap.parse_args()
    defaults = {"runs": (3, 2), "answers": (30, 7), "baseline_n": (10, 7), "users": (8, 8),
                "served_answers": (6, 2), "synthetic_clauses": (10_000, 500)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


# ------------------------------------------------------------------ measurements


def bench_answers_in_process(pipeline, settings: Settings, args) -> dict:
    """TTFT and total over the stratified sample, and the naive baseline on a subset."""
    items = subsample(load_gold(args.gold), args.answers)
    r = bench_answers.measure(pipeline, settings, items, args.baseline_n, progress=True)
    out = {"n": len(r.first), "n_baseline": len(r.base_first), "modes": r.modes,
           "samples_ms": asdict(r)}
    for name, xs in (("first_answer_text", r.first), ("model_first_token", r.model_first),
                     ("total", r.total), ("baseline_first_token", r.base_first),
                     ("baseline_total", r.base_total)):
        if xs:
            out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = pct(xs, 50), pct(xs, 95)
    if r.base_first:
        base = out["baseline_first_token_p50_ms"]
        out["ratio_first_answer_text_to_baseline"] = out["first_answer_text_p50_ms"] / base
        if r.model_first:
            out["ratio_model_first_token_to_baseline"] = out["model_first_token_p50_ms"] / base
        out["ratio_total_to_baseline"] = out["total_p50_ms"] / out["baseline_total_p50_ms"]
    return out


def bench_concurrency(pipeline, settings: Settings, args) -> dict:
    """Lone vs N users at once, the configured engine against the FIFO engine, interleaved."""
    twin = bench_answers.fifo_twin(pipeline, settings)
    engines = {"batched": pipeline, "fifo": twin} if twin else {"fifo": pipeline}
    questions = bench_answers.model_questions(pipeline, load_gold(args.gold), args.users)
    out = bench_answers.measure_concurrency(engines, questions, args.runs, progress=True)
    main = out["engines"]["batched" if "batched" in out["engines"] else "fifo"]
    out["ratio"] = main["ratio"]
    out["lone_vs_fifo"] = main["lone_p50_med_ms"] / out["engines"]["fifo"]["lone_p50_med_ms"]
    return out


def bench_retrieval(retriever, args) -> dict:
    """Search latency per config over every gold question; p50 of all and of each pass."""
    questions = [it.question for it in load_gold(args.gold)]
    results = bench_search.measure(retriever, questions, args.runs, progress=True)
    n = len(questions)
    out = {"questions": n, "passes": args.runs, "configs": {}}
    for name, xs in results.items():
        passes = [statistics.median(xs[i * n:(i + 1) * n]) for i in range(args.runs)]
        out["configs"][name] = {"p50_ms": statistics.median(xs), "p95_ms": pct(xs, 95),
                                "pass_p50_ms": passes}
    base = out["configs"][bench_search.BASELINE]["p50_ms"]
    out["p50_ms"] = out["configs"][bench_search.PRODUCT]["p50_ms"]
    out["ratio_to_dense_only"] = out["p50_ms"] / base
    return out


def bench_embedding_api(settings: Settings, embedder: Embedder, args) -> dict:
    """The API server with the LLM disabled vs the same embedder in this process."""
    batch, singles = bench_embeddings_api.sample_texts(settings)
    with server() as srv:
        med = bench_embeddings_api.measure(srv.url, embedder, batch, singles, args.runs,
                                           progress=True)
    return {
        "runs": args.runs, "median_s": med,
        "in_process_texts_per_s": len(batch) / med["in-process"],
        "api_texts_per_s": len(batch) / med["api-float"],
        "throughput_ratio": med["in-process"] / med["api-float"],
        "throughput_ratio_base64": med["in-process"] / med["api-base64"],
        "short_texts_concurrent_ratio": med["singles-batch"] / med["singles-conc"],
    }


def _ask_over_http(url: str, model: str, questions: list[str]) -> list[float]:
    times = []
    with httpx.Client(timeout=600) as client:
        for q in tqdm(questions, desc="answers over HTTP", leave=False):
            t = time.perf_counter()
            r = client.post(url + "/v1/chat/completions", json={
                "model": model, "messages": [{"role": "user", "content": q}]})
            r.raise_for_status()
            times.append((time.perf_counter() - t) * 1000)
    return times


def bench_cold_start(args) -> dict:
    """Launch to ready, several times; on the first run also answer over HTTP and sample RSS."""
    sample = subsample(load_gold(args.gold), args.served_answers)  # >= one of each type
    questions = [it.question for it in sample[::max(1, len(sample) // args.served_answers)]]
    questions = questions[:args.served_answers]
    up, ready, peak_load, out = [], [], [], {}
    for i in tqdm(range(args.runs), desc="cold starts"):
        with server(llm=True, wait=None) as srv, RssSampler(srv.proc.pid) as rss:
            srv.wait(ready=True, timeout=600)
            t_ready = time.perf_counter()
            up.append(srv.up_s)
            ready.append(srv.ready_s)
            peak_load.append(rss.peak(until=t_ready))
            if i == 0:
                http_ms = _ask_over_http(srv.url, srv.status["llm"], questions)
                out["answering"] = {"n": len(questions), "http_total_p50_ms": pct(http_ms, 50),
                                    "peak_rss_bytes": rss.peak(since=t_ready),
                                    "http_total_ms": http_ms}
    out.update(runs=args.runs, up_s=up, ready_s=ready, up_p50_s=statistics.median(up),
               ready_p50_s=statistics.median(ready), peak_rss_loading_bytes=max(peak_load))
    out["peak_rss_bytes"] = max(out["peak_rss_loading_bytes"], out["answering"]["peak_rss_bytes"])
    return out


def bench_cold_kv(settings: Settings) -> dict:
    """One start with an empty KV-state dir (the model file already assembled): the first run."""
    from assistant.bundled_model import MODEL_FILENAME

    model = settings.llm_model or str(settings.cache_dir / MODEL_FILENAME)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
        env = {"ASSISTANT_CACHE_DIR": cache, "ASSISTANT_LLM_MODEL": model}
        with server(llm=True, env=env, wait=None) as srv:
            srv.wait(ready=True, timeout=900)
            return {"up_s": srv.up_s, "ready_s": srv.ready_s,
                    "kv_saved": any(Path(cache, "kv").glob("kv-*.npz"))}


def time_index_build(settings: Settings, embedder: Embedder, runs: int,
                     progress: bool = False) -> dict:
    """build_index + save_index into a temp dir, `runs` times; median seconds and rates."""
    times, manifest = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        s = settings.model_copy(update={"index_dir": Path(tmp) / "built"})
        for _ in range(runs):
            t = time.perf_counter()
            index = build_index(s, embedder, progress=progress)
            save_index(index, s.index_dir)
            times.append(time.perf_counter() - t)
            manifest = index.manifest
    med = statistics.median(times)
    return {"runs": runs, "seconds": times, "median_s": med, "clauses": manifest["n_clauses"],
            "chunks": manifest["n_chunks"], "documents": len(manifest["documents"]),
            "clauses_per_s": manifest["n_clauses"] / med, "chunks_per_s": manifest["n_chunks"] / med}


# ------------------------------------------------------------------ synthetic corpus

MEASURES_PER_DOC = 500  # the parser reads measure numbers up to 九百九十九 per document
MEASURES_PER_CHAPTER = 10


def write_synthetic_corpus(document: Document, n_clauses: int, out_dir: Path,
                           seed: int = 0) -> None:
    """Policy texts in the document's format (一、 chapters, （一） measures) from its phrases.

    Each measure is one sentence-like line of ~40-75 characters (one chunk), recombined from
    the document's own phrases so the tokenizer and embedder see realistic text.
    """
    rng = random.Random(seed)
    phrases = sorted({p for c in document.clauses for p in re.split(r"[，。；：、,;:]", c.body)
                      if 4 <= len(p) <= 20})
    out_dir.mkdir(parents=True, exist_ok=True)
    for d, start in enumerate(range(0, n_clauses, MEASURES_PER_DOC)):
        count = min(MEASURES_PER_DOC, n_clauses - start)
        lines = [f"《川东北经济区合成测试文件第{d + 1}号》", "来源: 基准测试", "2019年01月02日", ""]
        for m in range(1, count + 1):
            if (m - 1) % MEASURES_PER_CHAPTER == 0:
                chapter = (m - 1) // MEASURES_PER_CHAPTER + 1
                lines += ["", f"{int_to_cn(chapter)}、{rng.choice(phrases)}", ""]
            body = rng.choice(phrases) + "。"
            while len(body) < 40:
                body += rng.choice(phrases) + "，"
            lines.append(f"（{int_to_cn(m)}）{body[:75].rstrip('，')}。")
        (out_dir / f"synthetic_{d:03d}.txt").write_text("\n".join(lines) + "\n", "utf-8")


def bench_synthetic_index(settings: Settings, embedder: Embedder, document: Document,
                          n_clauses: int) -> dict:
    """Generate the synthetic corpus, then time one build + save with the real embedder."""
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as tmp:
        source = Path(tmp) / "source"
        write_synthetic_corpus(document, n_clauses, source)
        s = settings.model_copy(update={"source_dir": source})
        out = time_index_build(s, embedder, runs=1, progress=True)
    if out["clauses"] != n_clauses:
        raise RuntimeError(f"the parser read {out['clauses']} of {n_clauses} synthetic clauses")
    return out


# ------------------------------------------------------------------ the run


def run(args) -> dict:
    settings = Settings()
    kv_on_disk = any((settings.cache_dir / "kv").glob("kv-*.npz"))
    res: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": sys.argv,
                 "quick": args.quick, "machine": machine(), "load_start": load_average(),
                 "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                 "kv_state_on_disk_at_start": kv_on_disk, "phase_s": {}}
    t0 = time.perf_counter()

    def phase(name: str, fn, *a):
        """Run one measurement; a failure is recorded and the run goes on to the next."""
        t = time.perf_counter()
        try:
            res[name] = fn(*a)
        except Exception as exc:  # noqa: BLE001 - keep the other figures of a 15-minute run
            res[name] = {"error": f"{type(exc).__name__}: {exc}"}
            tqdm.write(f"{name} failed:\n{traceback.format_exc()}")
        res["phase_s"][name] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    pipeline = Pipeline.from_settings(settings)
    pipeline.warm_up()
    res["in_process_load_s"] = time.perf_counter() - t
    res["llm"] = pipeline.generator.id
    embedder = pipeline.retriever.embedder
    phase("answers", bench_answers_in_process, pipeline, settings, args)
    phase("concurrency", bench_concurrency, pipeline, settings, args)
    phase("retrieval", bench_retrieval, pipeline.retriever, args)
    phase("embeddings", bench_embedding_api, settings, embedder, args)
    phase("cold_start", bench_cold_start, args)
    if args.cold_kv:
        phase("cold_start_no_kv", bench_cold_kv, settings)
    phase("index_document", time_index_build, settings, embedder, args.runs)
    # Last: the synthetic corpus adds its terms to jieba's dictionary in this process.
    phase("index_synthetic", bench_synthetic_index, settings, embedder,
          pipeline.retriever.index.documents[0], args.synthetic_clauses)
    res["bench_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    res["load_end"] = load_average()
    res["total_s"] = time.perf_counter() - t0
    res["targets"] = {}
    for key, (label, (section, field), scale, op, bound, unit) in TARGETS.items():
        value = res.get(section, {}).get(field)
        value = None if value is None else value * scale
        res["targets"][key] = {"label": label, "value": value, "op": op, "bound": bound,
                               "unit": unit, "met": _met(value, op, bound)}
    return res


def _met(value: float | None, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value <= bound if op == "<=" else value >= bound


def main() -> None:
    args = parse_args()
    res = run(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "bench.json").write_text(
        json.dumps(res, ensure_ascii=False, indent=2) + "\n", "utf-8")
    (args.out_dir / "bench.md").write_text(render(res), "utf-8")
    print(f"wrote {args.out_dir / 'bench.md'} and bench.json in {res['total_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
