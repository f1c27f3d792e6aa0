"""Benchmark: cost of storing a rating with synchronous=FULL (the product) vs NORMAL, WAL mode.

FULL fsyncs the WAL on every commit, so a stored rating survives a power cut; NORMAL survives a
killed process but may lose the last commits on power loss. Prints the median milliseconds per
FeedbackStore.add over interleaved runs, and the ratio FULL / NORMAL.
Usage: python eval/bench_feedback_sync.py [--rows 200] [--repeat 5] [--dir /path/on/target/disk]
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.feedback import FeedbackStore, make_item


def ms_per_add(path: Path, synchronous: str, rows: int) -> float:
    store = FeedbackStore(path)
    store._conn.execute(f"PRAGMA synchronous={synchronous}")
    item = make_item("到2022年川东北地区生产总值要达到多少", "力争突破9000亿元" * 10,
                     [{"clause_id": "一-2", "quote": "9000亿元", "verified": True}], "down", "不全")
    t = time.perf_counter()
    for _ in range(rows):
        store.add(item)
    elapsed = time.perf_counter() - t
    store.close()
    return 1000 * elapsed / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=None, help="where the database goes (its disk)")
    args = ap.parse_args()
    results: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for run in range(args.repeat):
            for mode, values in results.items():  # interleaved: machine noise hits both alike
                values.append(ms_per_add(Path(tmp) / f"{mode}-{run}.sqlite3", mode, args.rows))
    print(platform.platform(), platform.processor() or platform.machine(), f"sqlite {sqlite3.sqlite_version}")
    for mode, values in results.items():
        print(f"{mode:7s} {statistics.median(values):7.3f} ms per rating (median of {args.repeat})")
    ratio = statistics.median(results["FULL"]) / statistics.median(results["NORMAL"])
    print(f"FULL / NORMAL = {ratio:.2f}x")


if __name__ == "__main__":
    main()
