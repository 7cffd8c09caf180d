"""Stop (or another input, or a closed tab) really stops: work nobody waits for any more ends
within a couple of seconds, a network at its next layer and a worker process at once, and the
next comparison still runs."""
from __future__ import annotations

import time

import psutil

from app.cache import ResultCache
from app.engine import Engine, synthetic_noisy
from app_support import smooth_image

IDLE_WITHIN_S = 2.0


def _workers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and "spawn_main" in " ".join(p.cmdline())]


def _ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _busy_seconds(processes: list[psutil.Process], window_s: float) -> float:
    """CPU seconds that ``processes`` use over the next ``window_s`` seconds."""
    def total():
        seconds = 0.0
        for p in processes:
            try:
                t = p.cpu_times()
                seconds += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return seconds
    before = total()
    time.sleep(window_s)
    return total() - before


def _start(engine: Engine, method: str, size: int):
    clean = smooth_image(size, size)
    noisy = synthetic_noisy(clean, 25, 0)
    run = engine.run(clean, noisy, f"img{size}", 25, 0, [method], heartbeat=0.2)
    assert next(run) is None  # still running after one heartbeat
    return run, clean, noisy


def _wait_for(condition, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {deadline_s} s")
        time.sleep(0.05)


def test_a_network_nobody_waits_for_stops_at_its_next_layer(tmp_path):
    engine = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["idgan"])
    try:
        this = psutil.Process()
        run, _, _ = _start(engine, "idgan", 640)  # about 10-20 s of work on 2 cores
        assert _busy_seconds([this], 0.5) > 0.3  # it is computing
        stopped_at = time.monotonic()
        run.close()  # what Stop, another input or a closed tab does to the comparison
        time.sleep(max(0.0, stopped_at + IDLE_WITHIN_S - time.monotonic()))
        assert _busy_seconds([this], 1.0) < 0.2  # idle: nothing runs on for the cache
        assert not list(tmp_path.rglob("*.npy"))  # a stopped run is not a result
        # The next comparison of the same input computes it afresh, to the end.
        small = smooth_image(48, 64)
        done = [r for r in engine.run(small, synthetic_noisy(small, 25, 0), "small", 25, 0, ["idgan"])
                if r is not None]
        assert done[0].error is None and done[0].output.shape == small.shape
    finally:
        engine.close()


def test_a_worker_process_nobody_waits_for_is_ended_and_replaced(tmp_path):
    engine = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["cbm3d"])
    try:
        run, _, _ = _start(engine, "cbm3d", 384)
        _wait_for(lambda: _workers(), 60, "the worker's start")
        workers = _workers()
        _wait_for(lambda: _busy_seconds(workers, 0.3) > 0.15, 60, "the worker's CBM3D job")
        run.close()
        # Seen ended (gone, or dead and not yet reaped), never reaped here: a worker reaped by
        # another waiter looks alive to multiprocessing for ever, and its pool's shutdown at
        # exit would never end.
        _wait_for(lambda: all(_ended(p) for p in workers), IDLE_WITHIN_S, "the worker's end after Stop")
        assert not list(tmp_path.rglob("*.npy"))
        # A new worker takes the next job.
        small = smooth_image(40, 48)
        done = [r for r in engine.run(small, synthetic_noisy(small, 25, 0), "small", 25, 0, ["cbm3d"])
                if r is not None]
        assert done[0].error is None and done[0].output.shape == small.shape
    finally:
        engine.close()


def test_work_another_comparison_waits_for_goes_on(tmp_path):
    engine = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["idresnet"])
    try:
        clean = smooth_image(384, 384)
        noisy = synthetic_noisy(clean, 25, 0)
        first = engine.run(clean, noisy, "shared", 25, 0, ["idresnet"], heartbeat=0.2)
        second = engine.run(clean, noisy, "shared", 25, 0, ["idresnet"], heartbeat=0.2)
        assert next(first) is None
        assert next(second) is None  # joined the same run
        first.close()  # one visitor leaves; the other still waits
        results = [r for r in second if r is not None]
        assert results[0].error is None and not results[0].cached
        assert list(tmp_path.rglob("*.npy"))  # finished, so cached
    finally:
        engine.close()
