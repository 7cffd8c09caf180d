"""The CLIs on a Dask cluster (``--cluster``): a real scheduler and two workers, each its own
process on 127.0.0.1 started with the venv's ``dask scheduler`` / ``dask worker``. The results
equal a local run's; a worker with other weights is refused; Ctrl-C keeps whole rows; a worker
killed mid-job leaves its job to the other. The checks of addresses and results need no cluster."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app_support import as_at_a_terminal
from denoisers import cluster, report
from denoisers.io import read_image, write_png

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Shared by every test (a worker keeps a plugin once loaded, so there is one file): the sleep is
# read from seconds.txt beside it, and each job leaves marks/<pid>-<input digest>.
PLUGIN = '''
import hashlib, os, time
from pathlib import Path
from denoisers.base import Denoiser
from denoisers.registry import register

HERE = Path(__file__).resolve().parent


@register
class Slow(Denoiser):
    name, label = "slow", "Slow copy"

    def weights_id(self, sigma):
        return os.environ.get("SLOW_WEIGHTS", "slow-v1")

    def _denoise(self, noisy, sigma):
        digest = hashlib.sha256(noisy.tobytes()).hexdigest()[:12]
        (HERE / "marks" / f"{os.getpid()}-{digest}").touch()
        time.sleep(float((HERE / "seconds.txt").read_text()))
        return noisy
'''


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("PYTHONWARNINGS", cluster.ENV, "SLOW_WEIGHTS"):
        env.pop(name, None)
    return {**env, **extra}


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.plugin = folder / "slow_plugin.py"
        self.plugin.write_text(PLUGIN)
        (folder / "marks").mkdir()
        self.sleep(0.2)
        self.scheduler_file = folder / "scheduler.json"
        self.logs = []
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", str(self.scheduler_file))
        self.workers = [self._start("worker", "--scheduler-file", str(self.scheduler_file), "--nthreads", "1",
                                    "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}")
                        for i in range(2)]
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            self.address = client.scheduler.address

    def _start(self, what: str, *args: str) -> subprocess.Popen:
        if what == "worker":  # the scheduler writes its address once it listens
            deadline = time.monotonic() + 60
            while not self.scheduler_file.exists():
                assert time.monotonic() < deadline, "the scheduler did not start"
                time.sleep(0.2)
        log = open(self.folder / f"{what}-{len(self.logs)}.log", "w")
        self.logs.append(log)
        return subprocess.Popen([str(BIN / "dask"), what, *args], cwd=self.folder, env=_env(), stdout=log,
                                stderr=subprocess.STDOUT)

    def sleep(self, seconds: float) -> None:
        (self.folder / "seconds.txt").write_text(str(seconds))

    def marks(self) -> list[tuple[int, str]]:
        return [(int(p.name.split("-")[0]), p.name.split("-")[1]) for p in (self.folder / "marks").iterdir()]

    def stop(self) -> None:
        for group in (self.workers, [self.scheduler]):  # workers first: they say goodbye to the scheduler
            for process in group:
                if process.poll() is None:
                    process.terminate()
            for process in group:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in self.logs:
            log.close()


@pytest.fixture(scope="module")
def dask_cluster(weights_mirror, data_mirror, tmp_path_factory):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed (see requirements.txt)")
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def crops_folder(kodak_crops, tmp_path_factory) -> Path:
    """The three Kodak24 crops as PNG files, named as the images."""
    folder = tmp_path_factory.mktemp("kodak_crops")
    for i, crop in enumerate(kodak_crops, start=1):
        write_png(crop, folder / f"kodim{i:02d}.png")
    return folder


def _images(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        write_png(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), folder / f"img{i}.png")
    return folder


def _evaluate(data: Path, out: Path, methods: str, *extra: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "denoisers.evaluate", "--data", str(data), "--sigma", "25",
               "--methods", methods, "--out", str(out), *extra]
    return subprocess.run(command, cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=150)


def _slow(dask_cluster: Cluster, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "denoisers.evaluate", "--plugin", str(dask_cluster.plugin), "--data", str(data),
            "--sigma", "25", "--methods", "slow", "--out", str(out), "--cluster", dask_cluster.address]


def test_evaluation_on_the_cluster_equals_a_local_one(dask_cluster, crops_folder, tmp_path):
    here = _evaluate(crops_folder, tmp_path / "here", "dncnn,ffdnet")
    assert here.returncode == 0, here.stderr
    there = _evaluate(crops_folder, tmp_path / "there", "dncnn,ffdnet", "--cluster", dask_cluster.address)
    assert there.returncode == 0, there.stderr
    assert "2 workers" in there.stderr
    local = report.read_results(tmp_path / "here" / "results.csv").drop(columns="seconds")
    remote = report.read_results(tmp_path / "there" / "results.csv").drop(columns="seconds")
    assert len(local) == 6 and set(local["method"]) == {"dncnn", "ffdnet"}
    pd.testing.assert_frame_equal(local, remote, check_exact=True)  # the same PSNR to the last digit


def test_denoise_cli_on_the_cluster_writes_the_local_outputs(dask_cluster, crops_folder, tmp_path):
    command = [sys.executable, "-m", "denoisers.denoise", str(crops_folder), "--methods", "ffdnet", "--sigma", "25"]
    here = subprocess.run([*command, "--out", str(tmp_path / "here")], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=150)
    assert here.returncode == 0, here.stderr
    there = subprocess.run([*command, "--out", str(tmp_path / "there")], cwd=ROOT,  # the cluster from the env
                           env=_env(**{cluster.ENV: dask_cluster.address}), capture_output=True, text=True,
                           timeout=150)
    assert there.returncode == 0 and "on the cluster" in there.stderr, there.stderr
    outputs = sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*.png"))
    assert len(outputs) == 3
    for name in outputs:
        assert np.array_equal(read_image(tmp_path / "here" / name), read_image(tmp_path / "there" / name)), name
    local, remote = (pd.read_csv(tmp_path / d / "denoised.csv").drop(columns="seconds") for d in ("here", "there"))
    pd.testing.assert_frame_equal(local, remote)


def test_a_worker_with_other_weights_is_refused_then_the_same_command_retries(dask_cluster, tmp_path):
    data = _images(tmp_path / "data", 3)
    out = tmp_path / "out"
    command = _slow(dask_cluster, data, out)
    refused = subprocess.run(command, cwd=ROOT, env=_env(SLOW_WEIGHTS="slow-v2"), capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 1, refused.stderr
    listed = refused.stderr.partition("3 runs failed and wrote no row")[2]  # the summary at the end
    assert listed.count("has slow at sigma 25 as 'slow-v1', this run uses 'slow-v2': refused") == 3, refused.stderr
    assert report.read_results(out / "results.csv").empty  # nothing mixed in
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = report.read_results(out / "results.csv")
    assert sorted(rows["image"]) == ["img0.png", "img1.png", "img2.png"] and set(rows["weights"]) == {"slow-v1"}


def _wait_for_marks(dask_cluster: Cluster, process: subprocess.Popen, count: int, deadline_s: float = 60):
    deadline = time.monotonic() + deadline_s
    while len(dask_cluster.marks()) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no job started on the cluster"
        time.sleep(0.05)
    return dask_cluster.marks()


def test_ctrl_c_on_the_cluster_keeps_whole_rows_and_the_same_command_resumes(dask_cluster, tmp_path):
    data = _images(tmp_path / "data", 4)
    out = tmp_path / "out"
    command = _slow(dask_cluster, data, out)
    for mark in (dask_cluster.folder / "marks").iterdir():
        mark.unlink()
    dask_cluster.sleep(1.5)
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), preexec_fn=as_at_a_terminal,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    _wait_for_marks(dask_cluster, process, 3)  # two jobs done or nearly, the next ones running
    asked = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert time.monotonic() - asked < 20, "the run did not end soon after Ctrl-C"
    kept = report.read_results(out / "results.csv")  # readable: no half row
    assert len(kept) < 4 and kept["psnr"].notna().all()
    dask_cluster.sleep(0.2)
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{report.count(4 - len(kept), 'run')} to do" in done.stderr, done.stderr
    rows = report.read_results(out / "results.csv")
    assert sorted(rows["image"]) == [f"img{i}.png" for i in range(4)]  # each once


def test_a_worker_killed_mid_job_leaves_it_to_the_other(dask_cluster, tmp_path):
    data = _images(tmp_path / "data", 4)
    out = tmp_path / "out"
    for mark in (dask_cluster.folder / "marks").iterdir():
        mark.unlink()
    dask_cluster.sleep(2.0)
    process = subprocess.Popen(_slow(dask_cluster, data, out), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        pid, digest = _wait_for_marks(dask_cluster, process, 1)[0]
        victim = next(w for w in dask_cluster.workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)  # mid-job: it sleeps for 2 s
        victim.wait(timeout=10)
        _, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    rows = report.read_results(out / "results.csv")
    assert sorted(rows["image"]) == [f"img{i}.png" for i in range(4)]
    survivor = {p for p, d in dask_cluster.marks() if d == digest} - {pid}
    assert survivor, "the killed worker's job was not run again elsewhere"


# Without a cluster.

@pytest.mark.parametrize("text", ["tcp://127.0.0.1:8786", "tcp://scheduler:8786", "tls://10.0.0.2:8786", "local:2"])
def test_addresses_accepted(text):
    assert cluster.parse_address(text) == text


@pytest.mark.parametrize("text", ["127.0.0.1:8786", "http://host:8786", "local:0", "local:two", "local:", ""])
def test_bad_addresses_name_the_accepted_forms(text):
    with pytest.raises(ValueError, match="tcp://HOST:PORT.*local:N|at least one worker"):
        cluster.parse_address(text)


def test_the_cluster_comes_from_the_environment_unless_given(monkeypatch):
    monkeypatch.delenv(cluster.ENV, raising=False)
    assert cluster.address(None) is None
    monkeypatch.setenv(cluster.ENV, "tcp://sched:8786")
    assert cluster.address(None) == "tcp://sched:8786"
    assert cluster.address("local:3") == "local:3"
    monkeypatch.setenv(cluster.ENV, "sched")
    with pytest.raises(SystemExit, match=r"\$DENOISERS_CLUSTER"):
        cluster.address(None)


def test_results_of_other_weights_or_shape_are_refused():
    output = np.zeros((16, 16, 3), np.float32)
    good = {"weights": "w1", "worker": "tcp://a:1", "output": output, "seconds": 0.5}
    assert cluster.checked(good, "dncnn", 25, "w1", (16, 16, 3))[1] == 0.5
    with pytest.raises(cluster.WorkerMismatch, match="tcp://a:1 has dncnn at sigma 25 as 'w0'.*refused"):
        cluster.checked({**good, "weights": "w0", "output": None}, "dncnn", 25, "w1", (16, 16, 3))
    with pytest.raises(cluster.WorkerMismatch, match=r"returned float32 \(16, 16, 3\) for a float32 \(16, 17, 3\)"):
        cluster.checked(good, "dncnn", 25, "w1", (16, 17, 3))


def test_a_worker_refuses_before_any_work_when_its_model_differs(noisy_image):
    result = cluster.denoise_job("dncnn", noisy_image, 25.0, "not these weights", "fp32", (), False)
    assert result["output"] is None and result["weights"] != "not these weights"


def test_cluster_without_distributed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(SystemExit, match=r"pip install 'dask\[distributed\]=="):
        with cluster.connect("local:1"):
            pass


def test_bad_cluster_stops_the_evaluation_before_any_work(tmp_path, capsys):
    from denoisers import evaluate

    with pytest.raises(SystemExit, match="--cluster 'scheduler:8786': expected tcp://HOST:PORT"):
        evaluate.main(["--data", str(tmp_path), "--sigma", "25", "--methods", "dncnn", "--out", str(tmp_path / "o"),
                       "--cluster", "scheduler:8786"])
    assert not (tmp_path / "o").exists()
