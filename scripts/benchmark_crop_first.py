"""Benchmark (not a test): crop first through the app's engine, in one run.

    python scripts/benchmark_crop_first.py [--image kodim05.png] [--size 96] [--corner] [--no-baseline]

A fresh engine as the app starts it (CBM3D's worker process started, every method warmed up:
``Engine.start``) and an empty results cache. One comparison of all five methods at sigma 25 with a centred
96x96 crop (``Engine.run(..., box=...)``): when each crop preview and each whole image
arrived, the time to all crops against the time to all whole images, and their ratio. While
the whole images still run, the crop is moved to an uncached place inside the image (a fifth
of the height down, a sixth of the width in: every method's window as large as the first
crop's) or, with ``--corner``, to the top-left corner (smaller windows: context on two sides
only), and ``Engine.previews`` computes the new crops: how long they took. Then (unless
``--no-baseline``) the same comparison without a crop on another empty cache: what crop
first costs the whole images.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import denoisers  # noqa: E402
from app.cache import ResultCache  # noqa: E402
from app.convert import image_id  # noqa: E402
from app.engine import Engine, synthetic_noisy  # noqa: E402
from denoisers import datasets  # noqa: E402
from denoisers.io import read_image  # noqa: E402


def fresh_engine(root: Path) -> Engine:
    engine = Engine(ResultCache(root, max_bytes=10**9))
    engine.start()
    engine._process_pool().submit(int).result()  # the worker is up (the app starts it at launch)
    engine.warming.join()  # and the warm-up done, as it is seconds after the app's launch
    return engine


def consume(run, start: float, arrived: list, previews_done: threading.Event, n: int) -> None:
    for r in run:
        if r is not None:
            arrived.append((r.name, r.preview, time.perf_counter() - start, r))
            if sum(p for _, p, _, _ in arrived) == n:
                previews_done.set()
    previews_done.set()


def crop_first_run(clean, noisy, iid, sigma, methods, box, moved, root: Path) -> None:
    engine = fresh_engine(root)
    try:
        arrived: list = []
        previews_done = threading.Event()
        start = time.perf_counter()
        run = engine.run(clean, noisy, iid, sigma, 0, methods, heartbeat=0.5, box=box)
        worker = threading.Thread(target=consume, args=(run, start, arrived, previews_done, len(methods)))
        worker.start()
        previews_done.wait()
        time.sleep(1.0)  # the whole images are under way again
        move_start = time.perf_counter()
        moved_at = [(r.name, time.perf_counter() - move_start, r)
                    for r in engine.previews(clean, noisy, iid, sigma, 0, methods, moved, heartbeat=0.5) if r]
        moved_took = time.perf_counter() - move_start
        worker.join()
    finally:
        engine.close()
    report(arrived, moved_at, moved_took, move_start - start)


def report(arrived, moved_at, moved_took, moved_when) -> None:
    crops = [(n, t, r) for n, p, t, r in arrived if p]
    fulls = [(n, t, r) for n, p, t, r in arrived if not p]
    print("crop previews (arrival, s since Compare; crop PSNR): " + ", ".join(
        f"{n} {t:.2f} ({r.psnr:.2f} dB)" for n, t, r in crops))
    print("whole images (arrival; own run time s): " + ", ".join(f"{n} {t:.2f} ({r.seconds:.1f})" for n, t, r in fulls))
    last_crop, last_full = max(t for _, t, _ in crops), max(t for _, t, _ in fulls)
    print(f"all {len(crops)} crops: {last_crop:.2f} s; all {len(fulls)} whole images: {last_full:.2f} s; "
          f"ratio whole / crops {last_full / last_crop:.1f}x")
    done_before = sum(t < moved_when for _, t, _ in fulls)
    print(f"crop moved at {moved_when:.2f} s ({done_before} whole images done by then): new crops "
          + ", ".join(f"{n} {t:.2f}" for n, t, _ in moved_at) + f"; all in {moved_took:.2f} s")


def baseline_run(clean, noisy, iid, sigma, methods, root: Path) -> None:
    engine = fresh_engine(root)
    try:
        start = time.perf_counter()
        times = [(r.name, time.perf_counter() - start) for r in engine.run(clean, noisy, iid, sigma, 0, methods) if r]
    finally:
        engine.close()
    print("without a crop (fresh engine and cache): whole images " + ", ".join(f"{n} {t:.2f}" for n, t in times)
          + f"; all in {max(t for _, t in times):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default="kodim05.png", help="a Kodak24 file name")
    parser.add_argument("--size", type=int, default=96, help="the crop's side in pixels")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--corner", action="store_true", help="move the crop to the top-left corner")
    parser.add_argument("--no-baseline", action="store_true", help="skip the comparison without a crop")
    args = parser.parse_args()
    methods = denoisers.names()
    clean = read_image(datasets.file("kodak24", args.image))
    noisy = synthetic_noisy(clean, args.sigma, 0)
    h, w = clean.shape[:2]
    box = ((h - args.size) // 2, (w - args.size) // 2, args.size, args.size)
    moved = (0, 0, args.size, args.size) if args.corner else (h // 5, w // 6, args.size, args.size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}; {args.image} {w}x{h}, sigma {args.sigma:g}, seed 0; crop {box}, moved to {moved}; "
          f"methods {', '.join(methods)}; load average at the start {load:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        crop_first_run(clean, noisy, image_id(clean), args.sigma, methods, box, moved, Path(tmp) / "crop")
        if not args.no_baseline:
            baseline_run(clean, noisy, image_id(clean), args.sigma, methods, Path(tmp) / "base")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end {load:.2f}")


if __name__ == "__main__":
    main()
