"""Start ``python -m app`` in a child process for the app scripts, and measure its memory."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def opened_view(url: str, chromium: str, viewport: dict, timeout_ms: int = 900_000):
    """A page of a headless ``chromium`` (its path) at ``viewport``, opened on ``url`` and
    returned once its comparison is done; the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=viewport)
            page.goto(url)
            page.wait_for_function("document.querySelector('#status') && "
                                   "document.querySelector('#status').innerText.includes('Done')",
                                   timeout=timeout_ms)
            yield page
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``with AppServer(cache_dir) as server:`` -> ``server.url``, ``server.peak_rss``.

    The server's stderr goes to a temporary log file (a pipe nobody reads would block the
    server once its buffer fills); its tail is shown when the server fails to start.
    """

    def __init__(self, cache_dir: Path, heavy_limit: int = 2, start_timeout: float = 180) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.start_timeout = start_timeout
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
        fd, name = tempfile.mkstemp(prefix="app-server-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        with open(self.log_path, "ab") as log:  # append mode: our reads never move the child's writes
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "--port", str(self.port), "--cache-dir", str(cache_dir),
                 "--heavy-limit", str(heavy_limit)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
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
        deadline = time.time() + self.start_timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the app exited with code {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    Client(self.url, verbose=False)
                    return self
                except Exception:
                    if time.time() > deadline:
                        print(f"the app did not answer within {self.start_timeout:g} s; its log ends:\n"
                              f"{self.log_tail()}", file=sys.stderr)
                        raise
                    time.sleep(1)
        except BaseException:
            self.__exit__()  # __exit__ is not called when __enter__ raises: stop the server here
            raise

    def log_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` bytes of the server's stderr."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._sampler.is_alive():
            self._sampler.join(timeout=5)
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True) if self.proc.poll() is None else []
        except psutil.NoSuchProcess:
            children = []
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
        self.log_path.unlink(missing_ok=True)
