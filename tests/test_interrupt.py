"""The evaluation CLI stopped from outside, as a user or a scheduler stops it: Ctrl-C at any
point keeps every row written before, SIGTERM does the same, and SIGKILL leaves no worker
process running on without it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from PIL import Image

from app_support import as_at_a_terminal
from denoisers import report

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = '''
import os, time
from denoisers.base import Denoiser
from denoisers.registry import register


@register
class Slow(Denoiser):
    name, label = "slow", "Slow copy"
    separate_process = os.environ.get("SLOW_SEPARATE") == "1"

    def weights_id(self, sigma):
        return "slow-v1"

    def _denoise(self, noisy, sigma):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0.3")))
        return noisy
'''


def _images(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def _old_results(path: Path, rows: int) -> pd.DataFrame:
    """A large results file of an earlier run, of other images, written before the
    ``clean_sha256`` column existed, so that a new run rewrites it before any work."""
    table = pd.DataFrame({"image": [f"old{i:06d}.png" for i in range(rows)], "method": "slow", "sigma": 25.0,
                          "seed": 0, "psnr": np.round(20 + np.arange(rows) % 1000 / 100, 4), "ssim": 0.5,
                          "seconds": 0.1, "weights": "slow-v1", "hf": 1.0, "hf_clean": 2.0})
    table.to_csv(path, index=False)
    return table


def _command(tmp_path: Path, data: Path, out: Path, *extra: str) -> list[str]:
    (tmp_path / "slow_plugin.py").write_text(PLUGIN)
    return [sys.executable, "-m", "denoisers.evaluate", "--plugin", str(tmp_path / "slow_plugin.py"),
            "--data", str(data), "--sigma", "25", "--methods", "slow", "--out", str(out), *extra]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
    env.pop("PYTHONWARNINGS", None)
    return env


def _rows(path: Path) -> set[tuple]:
    table = report.read_results(path)
    return set(zip(table["image"], table["method"], table["sigma"], table["seed"], table["psnr"]))


def test_ctrl_c_at_any_point_keeps_every_earlier_row(tmp_path):
    data = _images(tmp_path / "data", 3)
    out = tmp_path / "out"
    out.mkdir()
    old = _old_results(out / "results.csv", 150_000)
    before = set(zip(old["image"], old["method"], old["sigma"], old["seed"], old["psnr"]))
    command = _command(tmp_path, data, out)
    outcomes = []
    # From start-up (imports, reading and rewriting the large file) to the runs themselves; on
    # a busy machine start-up is slower, so later points are added until one lands in the runs.
    delays = [1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.5]
    while delays:
        delay = delays.pop(0)
        process = subprocess.Popen(command, cwd=ROOT, env=_env(), preexec_fn=as_at_a_terminal,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        outcomes.append((delay, process.returncode))
        assert before <= _rows(out / "results.csv"), f"rows lost by Ctrl-C after {delay} s:\n{err}"
        assert not list(out.glob(".*.part")), "a temporary file was left behind"
        if "to do" in err:  # past start-up: the run says it was interrupted, no traceback
            assert process.returncode in (0, 130), err
            assert "Traceback" not in err, err
            if process.returncode == 130:
                assert "interrupted" in err
        if not delays and not any(code == 130 for _, code in outcomes) and delay < 60:
            delays.append(delay * 1.5)
    assert any(code == 130 for _, code in outcomes), outcomes
    # The same command then finishes the run, with the earlier rows and the new ones.
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = report.read_results(out / "results.csv")
    assert before <= _rows(out / "results.csv")
    assert sorted(set(after["image"]) - set(old["image"])) == ["img0.png", "img1.png", "img2.png"]
    assert len(after) == len(old) + 3


def _descendants_when_working(process: subprocess.Popen, deadline_s: float = 60) -> list[psutil.Process]:
    """The evaluation's child processes once a worker process exists (its job running)."""
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        children = parent.children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        if workers:
            time.sleep(1.0)  # let the worker start its job
            return parent.children(recursive=True)
        time.sleep(0.1)
    raise AssertionError(f"no worker process started within {deadline_s} s")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_evaluation_leaves_no_worker_behind(tmp_path, how):
    data = _images(tmp_path / "data", 2)
    out = tmp_path / "out"
    process = subprocess.Popen(_command(tmp_path, data, out), cwd=ROOT,
                               env=_env(SLOW_SEPARATE="1", SLOW_SECONDS="120"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        children = _descendants_when_working(process)
        assert children
        process.send_signal(how)
        _, err = process.communicate(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"still running after {how.name}: {[p.cmdline() for p in alive]}"
        if how == signal.SIGTERM:
            assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
            assert report.read_results(out / "results.csv").empty  # the header, no half row
    finally:
        if process.poll() is None:
            process.kill()
        for child in psutil.Process().children(recursive=True):
            if child.pid != process.pid and "spawn_main" in " ".join(child.cmdline()):
                child.kill()
