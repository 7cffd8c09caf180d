"""Start ``python -m app`` in a child process for the app scripts, and measure its memory."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``with AppServer(cache_dir) as server:`` -> ``server.url``, ``server.peak_rss``."""

    def __init__(self, cache_dir: Path, heavy_limit: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(self.port), "--cache-dir", str(cache_dir),
             "--heavy-limit", str(heavy_limit)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def rss(self) -> int:
        """Resident memory of the server and all its worker processes, in bytes."""
        try:
            procs = [psutil.Process(self.proc.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.rss())
            time.sleep(0.05)

    def __enter__(self) -> "AppServer":
        from gradio_client import Client

        self._sampler.start()
        deadline = time.time() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                Client(self.url, verbose=False)
                return self
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._sampler.join(timeout=5)
        children = psutil.Process(self.proc.pid).children(recursive=True) if self.proc.poll() is None else []
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for child in children:  # the worker processes this server started
            try:
                child.terminate()
            except psutil.NoSuchProcess:
                pass
