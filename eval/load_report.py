"""The load run's figures, verdict, Markdown report and plot, from its raw record (load.json).

eval/load.py calls `write`; to render the report again from a saved run:
Usage: python eval/load_report.py eval/results/load.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from _benchlib import pct

DELIBERATE = "503 queue_full"  # the status of a chat request refused by the bounded queue
OK = ("200", "201")


def _p(xs: list[float], q: int) -> float | None:
    return round(pct(xs, q), 1) if xs else None


def _latencies(samples: list[dict]) -> dict:
    ok = [s["latency_ms"] for s in samples if s["status"] in OK]
    return {"requests": len(samples), "ok": len(ok), "p50_ms": _p(ok, 50), "p95_ms": _p(ok, 95),
            "max_ms": max(ok, default=None),
            "statuses": dict(sorted(Counter(s["status"] for s in samples).items()))}


def _chat(raw: dict) -> dict:
    chats = [s for s in raw["samples"] if s["endpoint"].startswith("chat") and s["status"] == "200"]
    ttft = [s["ttft_ms"] for s in chats if s["ttft_ms"] is not None]
    total = [s["latency_ms"] for s in chats]
    # Queue wait (for the LLM's turn) and the rest (retrieval, prompt, decoding), split.
    waits = [s.get("queue_wait_ms") or 0.0 for s in chats]
    generation = [t - w for t, w in zip(total, waits, strict=True)]
    modes = defaultdict(list)
    for s in chats:
        modes[s["mode"] or "?"].append(s["latency_ms"])
    return {"answers": len(chats), "ttft_p50_ms": _p(ttft, 50), "ttft_p95_ms": _p(ttft, 95),
            "total_p50_ms": _p(total, 50), "total_p95_ms": _p(total, 95),
            "queue_wait_p50_ms": _p(waits, 50), "queue_wait_p95_ms": _p(waits, 95),
            "generation_p50_ms": _p(generation, 50), "generation_p95_ms": _p(generation, 95),
            "by_mode": {m: {"n": len(v), "p50_ms": _p(v, 50), "p95_ms": _p(v, 95)}
                        for m, v in sorted(modes.items())},
            "queue_full": sum(s["status"] == DELIBERATE for s in raw["samples"]),
            "queue_full_wait_s": raw["queue_full_wait_s"]}


def summarize(raw: dict) -> dict:
    """Per-endpoint latency and status counts, chat TTFT, embedding rate, RSS, the checks."""
    duration = raw["config"]["duration"]
    by_endpoint: dict[str, list[dict]] = defaultdict(list)
    for s in raw["samples"]:
        by_endpoint[s["endpoint"]].append(s)
    emb = by_endpoint["embeddings"]
    mem = [mb for _, mb in raw["rss"]]
    return {
        "endpoints": {name: _latencies(xs) for name, xs in sorted(by_endpoint.items())},
        "chat": _chat(raw),
        "embeddings": {"scheduled": len(emb) + raw["skipped_embeddings"],
                       "skipped_client_backlog": raw["skipped_embeddings"],
                       "achieved_rate": round(sum(s["status"] == "200" and s["t"] < duration
                                                  for s in emb) / duration, 1),
                       "send_lag_ms": raw["send_lag_ms"]},
        "rss_mb": {"start": mem[0] if mem else None, "peak": max(mem, default=None),
                   "end": mem[-1] if mem else None},
        "isolation": {"streams_checked": raw["streams_checked"],
                      "lookups_checked": raw["lookups_checked"],
                      "interleaved_or_broken": len(raw["bad_streams"])},
        "feedback": raw["feedback"], "server_5xx": len(raw["server_5xx"]),
    }


def failures(raw: dict, summary: dict) -> list[str]:
    """Why the run failed (empty: it passed)."""
    out = []
    if summary["server_5xx"]:
        out.append(f"{summary['server_5xx']} server errors (5xx other than 503 queue_full, or "
                   "an error inside a stream)")
    if summary["isolation"]["interleaved_or_broken"]:
        out.append(f"{summary['isolation']['interleaved_or_broken']} interleaved or broken streams")
    fb = summary["feedback"]
    if fb["missing"] or fb["different"] or fb["duplicate_ids"]:
        out.append(f"feedback lost: {len(fb['missing'])} missing, {len(fb['different'])} "
                   f"different, {len(fb['duplicate_ids'])} duplicate ids")
    if raw["server_died_at_s"] is not None or raw["exit_code"] not in (0, -15):
        out.append(f"the server died (seen at {raw['server_died_at_s']} s; exit code "
                   f"{raw['exit_code']})")
    return out


def plot(raw: dict, path: Path) -> None:
    """Server RSS (top) and latency (bottom, log scale) against time since the load started."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot([t for t, _ in raw["rss"]], [mb for _, mb in raw["rss"]], color="tab:purple")
    top.set_ylabel("server RSS (MB)")
    top.set_title("Load run: server RSS and latency over time")
    for name, color in (("chat", "tab:blue"), ("chat (follow-up)", "tab:cyan")):
        ok = [s for s in raw["samples"] if s["endpoint"] == name and s["status"] == "200"]
        first = [s for s in ok if s["ttft_ms"] is not None]
        bottom.scatter([s["t"] + s["latency_ms"] / 1000 for s in ok],
                       [s["latency_ms"] / 1000 for s in ok], s=14, color=color,
                       label=f"{name}: total (at its end)")
        bottom.scatter([s["t"] + s["ttft_ms"] / 1000 for s in first],
                       [s["ttft_ms"] / 1000 for s in first], s=12, marker="x", color=color,
                       label=f"{name}: first content")
    for name, color in (("embeddings", "tab:orange"), ("healthz", "tab:green")):
        per_second = defaultdict(list)
        for s in raw["samples"]:
            if s["endpoint"] == name and s["status"] == "200":
                per_second[int(s["t"])].append(s["latency_ms"])
        secs = sorted(per_second)
        bottom.plot(secs, [_p(per_second[t], 95) / 1000 for t in secs], color=color,
                    label=f"{name}: p95 per second of sending")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (s)")
    bottom.set_xlabel("seconds since the load started (dashed: end of the load window)")
    for ax in (top, bottom):
        ax.axvline(raw["config"]["duration"], color="grey", linestyle="--", linewidth=1)
    bottom.legend(fontsize=7, loc="best", framealpha=0.6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _header(raw: dict, fails: list[str]) -> list[str]:
    cfg, m, health = raw["config"], raw["machine"], raw["health"]
    out = ["# Load run", "", f"**{'FAIL: ' + '; '.join(fails) if fails else 'PASS'}**", ""]
    if cfg["quick"] or cfg["duration"] < 60:
        out += ["> **Quick run**: short and small, noisy; not the reference figures.", ""]
    return out + [
        "| machine | |", "|---|---|",
        f"| CPU | {m['cpu']} ({m['arch']}), {m['cores']} logical cores |",
        f"| RAM | {m['ram_gb']} GB |", f"| OS | {m['os']} |",
        f"| Python | {m['python']}, llama-cpp-python {m['llama_cpp_python']} |",
        f"| commit | {m['commit']} |",
        (f"| load average (1/5/15 min) | before {m['load_avg_before']}, after "
         f"{m['load_avg_after']} |"), "",
        (f"Server: `python app.py` on 127.0.0.1 with a fresh data dir; LLM "
         f"`{health.get('llm')}`, embedder `{health.get('embedder')}`; ready {raw['startup_s']} s "
         "after launch. The load client runs on the same machine."), "",
        (f"Load: {cfg['duration']:g} s; {cfg['sessions']} chat sessions (stream=true; gold "
         "questions mixed with direct clause lookups, some follow-ups with history, feedback on "
         f"some answers); /v1/embeddings open loop at {cfg['rate']:g} requests/s of 1-4 texts "
         "(latency counted from the scheduled send time). Answers in flight at the end of the "
         f"window were given up to {cfg['grace']:g} s more ({raw['sessions_cut_at_grace']} "
         "sessions cut then)."), "",
    ]


def _body(s: dict, cfg: dict) -> list[str]:
    c, emb, fb, iso = s["chat"], s["embeddings"], s["feedback"], s["isolation"]
    lag = emb["send_lag_ms"]
    return [
        (f"Chat: {c['answers']} answers; first content p50 {_ms(c['ttft_p50_ms'])} ms, p95 "
         f"{_ms(c['ttft_p95_ms'])} ms; total p50 {_ms(c['total_p50_ms'])} ms, p95 "
         f"{_ms(c['total_p95_ms'])} ms. Deliberate 503 queue_full: {c['queue_full']} "
         f"({c['queue_full_wait_s']} s spent waiting Retry-After)."), "",
        (f"Of the total, waiting for a turn on the LLM: p50 {_ms(c['queue_wait_p50_ms'])} ms, p95 "
         f"{_ms(c['queue_wait_p95_ms'])} ms; the rest (retrieval, prompt, decoding): p50 "
         f"{_ms(c['generation_p50_ms'])} ms, p95 {_ms(c['generation_p95_ms'])} ms."), "",
        "By answer mode: " + "; ".join(f"{k} n={v['n']} p50 {_ms(v['p50_ms'])} ms, p95 "
                                       f"{_ms(v['p95_ms'])} ms" for k, v in c["by_mode"].items()),
        "",
        (f"Embeddings: {emb['scheduled']} scheduled; achieved {emb['achieved_rate']}/s of "
         f"{cfg['rate']:g}/s; {emb['skipped_client_backlog']} not sent (client backlog full); "
         f"client send lag p50 {_ms(lag['p50'])} ms, p95 {_ms(lag['p95'])} ms, max "
         f"{_ms(lag['max'])} ms"
         + (" — **the client fell behind its schedule: the machine, not only the server, limited "
            "the rate**." if (lag["p95"] or 0) > 100 else ".")), "",
        (f"Server RSS (with children), sampled every second: start {s['rss_mb']['start']} MB, "
         f"peak {s['rss_mb']['peak']} MB, end {s['rss_mb']['end']} MB."), "",
        (f"Stream isolation: {iso['streams_checked']} streams checked ({iso['lookups_checked']} "
         "direct lookups compared with GET /v1/clauses/{id}); interleaved or broken: "
         f"{iso['interleaved_or_broken']}."), "",
        (f"Feedback: {fb['acknowledged']} acknowledged, {fb['rows_in_db']} rows in the database "
         f"after the server stopped; missing {len(fb['missing'])}, different "
         f"{len(fb['different'])}, duplicate ids {len(fb['duplicate_ids'])}, rows never "
         f"acknowledged {fb['unacknowledged_rows']}."), "",
        f"Server errors (5xx other than queue_full, errors inside streams): {s['server_5xx']}.",
    ]


def report_md(raw: dict, summary: dict, fails: list[str]) -> str:
    lines = _header(raw, fails) + [
        "| endpoint | requests | ok | p50 ms | p95 ms | max ms | statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in summary["endpoints"].items():
        statuses = ", ".join(f"{k}: {v}" for k, v in e["statuses"].items())
        lines.append(f"| {name} | {e['requests']} | {e['ok']} | {_ms(e['p50_ms'])} | "
                     f"{_ms(e['p95_ms'])} | {_ms(e['max_ms'])} | {statuses} |")
    lines += ["", *_body(summary, raw["config"])]
    for e in raw["server_5xx"][:10] + raw["bad_streams"][:10]:
        lines.append(f"- `{json.dumps(e, ensure_ascii=False)[:300]}`")
    examples = raw.get("transport_examples", {})
    if examples:
        lines += ["", "Transport errors (first message of each kind):", ""]
        lines += [f"- {kind}: `{message}`" for kind, message in sorted(examples.items())]
    if raw["server_log_errors"]:
        lines += ["", "Server log lines about errors:", "", "```",
                  *raw["server_log_errors"][:20], "```"]
    lines += ["", "![server RSS and latency over time](load.png)", ""]
    return "\n".join(lines)


def write(raw: dict, out: Path) -> list[str]:
    """load.json (raw record + summary), load.md and load.png in `out`; returns the failures."""
    summary = summarize(raw)
    fails = failures(raw, summary)
    out.mkdir(parents=True, exist_ok=True)
    record = {**raw, "summary": summary, "failures": fails}
    (out / "load.json").write_text(json.dumps(record, ensure_ascii=False, indent=1),
                                   encoding="utf-8")
    (out / "load.md").write_text(report_md(raw, summary, fails), encoding="utf-8")
    plot(raw, out / "load.png")
    return fails


if __name__ == "__main__":
    path = Path(sys.argv[1])
    write(json.loads(path.read_text(encoding="utf-8")), path.parent)
    print((path.parent / "load.md").read_text(encoding="utf-8"))
