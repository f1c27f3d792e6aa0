"""Score the assistant against a gold set: retrieval metrics with an ablation, written as a report."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from .gold import GoldItem, load_gold
from .retrieval import Retriever

# (name, retrieval mode, fusion, use direct lookup); the last one is the product configuration.
ABLATIONS = (
    ("dense", "dense", None, False),
    ("bm25", "bm25", None, False),
    ("fused-rrf", "fused", "rrf", False),
    ("fused", "fused", "zscore", False),
    ("fused+lookup", "fused", "zscore", True),
)
PRODUCT = "fused+lookup"


def rank_metrics(retrieved: list[str], gold: tuple[str, ...]) -> dict[str, float]:
    """hit@1, hit@3, reciprocal rank of the first gold clause, recall@5 of all gold clauses."""
    gold_set = set(gold)
    first = next((i for i, cid in enumerate(retrieved, start=1) if cid in gold_set), None)
    return {
        "hit@1": float(first == 1),
        "hit@3": float(first is not None and first <= 3),
        "mrr": 1.0 / first if first else 0.0,
        "recall@5": len(gold_set & set(retrieved[:5])) / len(gold_set),
    }


def _aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: round(mean(r[key] for r in rows), 4) for key in rows[0]} | {"n": len(rows)}


def evaluate_retrieval(items: list[GoldItem], retriever: Retriever, k: int = 5,
                       progress: bool = False) -> tuple[dict, dict[str, list[str]]]:
    """Metrics per ablation (overall and by type) and the product ranking per item."""
    from tqdm import tqdm

    answerable = [it for it in items if it.answerable]
    per_config: dict[str, dict[str, list[dict[str, float]]]] = {}
    product_rankings: dict[str, list[str]] = {}
    for it in tqdm(items, desc="检索评测", disable=not progress):
        for name, mode, fusion, lookup in ABLATIONS:
            if name != PRODUCT and not (it.answerable and it.gold_clauses):
                continue
            hits = retriever.search(it.question, k=k, mode=mode, use_lookup=lookup,
                                    fusion=fusion).hits
            ranked = [h.clause.id for h in hits]
            if name == PRODUCT:
                product_rankings[it.id] = ranked
            if it.answerable and it.gold_clauses:
                per_config.setdefault(name, {}).setdefault(it.type, []).append(
                    rank_metrics(ranked, it.gold_clauses))
    metrics: dict = {"n_items": len(items), "n_answerable": len(answerable), "ablation": {}}
    for name, by_type in per_config.items():
        rows = [r for rs in by_type.values() for r in rs]
        overall = _aggregate(rows)
        overall["multi_recall@5"] = _aggregate(by_type.get("multi", [])).get("recall@5")
        metrics["ablation"][name] = {
            "overall": overall,
            "by_type": {t: _aggregate(rs) for t, rs in sorted(by_type.items())},
        }
    return metrics, product_rankings


def write_outputs(out_dir: Path, items: list[GoldItem], rankings: dict[str, list[str]],
                  answers: dict[str, dict] | None = None) -> None:
    """One JSON line per item: id, answer, refused, citations, retrieved."""
    with open(out_dir / "outputs.jsonl", "w", encoding="utf-8") as f:
        for it in items:
            a = (answers or {}).get(it.id, {})
            row = {"id": it.id, "answer": a.get("answer", ""),
                   "direct_answer": a.get("direct_answer", ""), "mode": a.get("mode"),
                   "refused": a.get("refused"), "citations": a.get("citations", []),
                   "retrieved": rankings.get(it.id, [])}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def retrieval_report(metrics: dict) -> str:
    """Markdown tables: the ablation overall, then the product configuration by question type."""
    keys = ("hit@1", "hit@3", "mrr", "multi_recall@5", "n")
    lines = ["## Retrieval (answerable items)", "",
             "| config | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, m in metrics["ablation"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m["overall"].get(k)) for k in keys) + " |")
    product = metrics["ablation"].get(PRODUCT)
    if product:
        lines += ["", f"### By type ({PRODUCT})", "",
                  "| type | hit@1 | hit@3 | mrr | recall@5 | n |", "|---|---|---|---|---|---|"]
        for t, m in product["by_type"].items():
            lines.append(f"| {t} | " + " | ".join(
                _fmt(m.get(k)) for k in ("hit@1", "hit@3", "mrr", "recall@5", "n")) + " |")
    return "\n".join(lines) + "\n"


def retrieval_chart(metrics: dict, path: Path) -> None:
    """Grouped bar chart of hit@1 / hit@3 / MRR per ablation configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(metrics["ablation"])
    keys = ("hit@1", "hit@3", "mrr")
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        vals = [metrics["ablation"][n]["overall"][key] for n in names]
        bars = ax.bar([x + i * width for x in range(len(names))], vals, width, label=key)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([x + width for x in range(len(names))], names)
    ax.set_ylim(0, 1.08)
    ax.set_title("Retrieval ablation (answerable gold items)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


ANSWER_KEYS = ("key_phrase_recall", "citation_precision", "citation_recall", "refusal_accuracy",
               "false_refusal_rate", "invented_numbers", "pass_rate", "multi_pass_rate",
               "extractive_share", "length_ratio_p50", "first_answer_text_ms_p50",
               "first_answer_text_ms_p95", "total_ms_p50", "total_ms_p95")


def answers_report(metrics: dict) -> str:
    """Markdown: the pipeline on all items, and pipeline vs naive baseline on the same subset."""
    cols = [("pipeline (all)", metrics["pipeline"])]
    if metrics.get("baseline"):
        cols += [(f"pipeline (subset n={metrics['baseline']['n']})", metrics["pipeline_subset"]),
                 (f"naive baseline (subset n={metrics['baseline']['n']})", metrics["baseline"])]
    lines = ["## Answers", "", "| metric | " + " | ".join(c for c, _ in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for key in ANSWER_KEYS:
        lines.append(f"| {key} | " + " | ".join(_fmt(m.get(key)) for _, m in cols) + " |")
    lines += ["", "Pass rate by type (pipeline, all items): " + ", ".join(
        f"{t} {v:.2f}" for t, v in metrics["pipeline"]["pass_rate_by_type"].items())]
    lines += ["", "Answer modes (pipeline, all items): " + ", ".join(
        f"{m} {v:.1%}" for m, v in metrics["pipeline"]["mode_share"].items())]
    lines += ["", ("All answer metrics are computed on `direct_answer` (the answer without the "
                   "quoted evidence block and the closing notice); `length_ratio_p50` is the "
                   "median of direct-answer length / gold-answer length over answered items.")]
    if metrics["pipeline"]["invented_examples"]:
        lines.append(f"Invented numbers: {metrics['pipeline']['invented_examples']}")
    return "\n".join(lines) + "\n"


def answers_chart(metrics: dict, path: Path) -> None:
    """Pipeline vs naive baseline on the shared subset, for the rate metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("key_phrase_recall", "citation_precision", "citation_recall", "refusal_accuracy",
            "false_refusal_rate", "pass_rate")
    systems = [("pipeline", metrics.get("pipeline_subset") or metrics["pipeline"])]
    if metrics.get("baseline"):
        systems.append(("naive baseline", metrics["baseline"]))
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=120)
    width = 0.8 / len(systems)
    for i, (name, m) in enumerate(systems):
        vals = [m.get(k) or 0.0 for k in keys]
        bars = ax.bar([x + i * width for x in range(len(keys))], vals, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([x + width / 2 for x in range(len(keys))], [k.replace("_", "\n") for k in keys],
                  fontsize=7)
    ax.set_ylim(0, 1.1)
    ax.set_title("Answers: pipeline vs naive baseline (same items)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_eval(gold_path: Path, out_dir: Path, retriever: Retriever, pipeline=None, baseline=None,
             baseline_n: int = 40, progress: bool = False) -> dict:
    """Evaluate and write report.md, metrics.json, PNG charts and outputs.jsonl to out_dir.

    With a pipeline, every item is also answered end to end; with a baseline, the baseline and
    the pipeline are compared on the same type-stratified subset of `baseline_n` items.
    """
    items = load_gold(gold_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics, rankings = evaluate_retrieval(items, retriever, progress=progress)
    metrics["gold"] = str(gold_path)
    metrics["index"] = {k: retriever.index.manifest.get(k)
                        for k in ("embedder", "chunker", "bm25_tokenizer", "index_kind")}
    answers = None
    body = retrieval_report(metrics) + "\n![retrieval](retrieval.png)\n"
    if pipeline is not None:
        answers = _evaluate_answers(items, retriever, pipeline, baseline, baseline_n, metrics,
                                    progress)
        answers_chart(metrics, out_dir / "answers.png")
        body = answers_report(metrics) + "\n![answers](answers.png)\n\n" + body
    write_outputs(out_dir, items, rankings, answers)
    retrieval_chart(metrics, out_dir / "retrieval.png")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), "utf-8")
    header = (f"# Evaluation report\n\nGold set: `{gold_path}` — {metrics['n_items']} items, "
              f"{metrics['n_answerable']} answerable.\n\nIndex: {metrics['index']}\n\n")
    (out_dir / "report.md").write_text(header + body, "utf-8")
    return metrics


def _evaluate_answers(items, retriever, pipeline, baseline, baseline_n, metrics, progress):
    from .scoring import Result, is_refusal, run_system, score, subsample

    def ask(question: str) -> Result:
        a = pipeline.ask(question)
        # The same refusal detection as the baseline's, on the text the user reads.
        return Result(a.direct_answer, a.refused or is_refusal(a.direct_answer),
                      tuple(a.cited_ids), a.retrieved,
                      a.timings_ms.get("first_answer_text", a.timings_ms["total"]),
                      a.timings_ms["total"], a.mode, a.text)

    document = "".join(c.text for c in retriever.index.clauses)
    labels = [c.label for c in retriever.index.clauses]
    results = run_system(items, ask, progress, "回答评测")
    metrics["pipeline"] = score(items, results, document, labels)
    metrics["generator"] = getattr(pipeline.generator, "id", None)
    if baseline is not None:
        subset = subsample(items, baseline_n)
        base = run_system(subset, baseline.answer, progress, "基线评测")
        metrics["baseline"] = score(subset, base, document, labels)
        metrics["pipeline_subset"] = score(subset, {it.id: results[it.id] for it in subset},
                                           document, labels)
    return {k: {"answer": r.full_text or r.answer, "direct_answer": r.answer, "mode": r.mode,
                "refused": r.refused, "citations": list(r.cited)}
            for k, r in results.items()}
