"""Benchmark (not a test): seconds for LPIPS-alex, LPIPS-vgg and DISTS of one 768 x 512 pair,
a Kodak24 image and a noisy version of it (sigma 25, clipped and rounded as a saved file is),
and for DISTS of one more image against a reference already seen (``metrics.scorer``: the
reference's features kept, as when many outputs of one image are scored).

    python scripts/benchmark_perceptual.py [--image 0] [--runs 5] [--threads N] [--out docs/benchmark_perceptual.txt]

Each metric is called once to build its model and warm up, then ``--runs`` times; the median,
the fastest and the slowest are printed and written to ``--out`` with the machine's load
average (other jobs sharing the CPU slow every figure down).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from denoisers import datasets, metrics  # noqa: E402
from denoisers.files import write_text  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402


def timings(fn, runs: int) -> tuple[float, list[float]]:
    value = fn()  # builds the model (weights read once per process) and warms up
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", type=int, default=0, help="index of the Kodak24 image (name order)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark_perceptual.txt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = datasets.files("kodak24")[args.image]
    clean = read_image(path)
    noisy = to_uint8(metrics.add_noise(to_float(clean), 25.0, seed=0))
    if clean.shape[:2] != (512, 768):  # portrait Kodak images are turned to 768 x 512
        clean, noisy = np.rot90(clean).copy(), np.rot90(noisy).copy()
    cases = {"LPIPS-alex": lambda: metrics.lpips(clean, noisy, net="alex"),
             "LPIPS-vgg": lambda: metrics.lpips(clean, noisy, net="vgg"),
             "DISTS": lambda: metrics.dists(clean, noisy)}
    against = metrics.scorer("dists", clean)  # the reference's features, once
    cases["DISTS, kept ref"] = lambda: against(noisy)
    lines = [f"$ python scripts/benchmark_perceptual.py --runs {args.runs}",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
             f"threads, torch {torch.__version__}; {path.name} {clean.shape[1]}x{clean.shape[0]} against itself "
             f"with sigma 25 noise (seed 0, clipped, rounded)",
             f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}",
             "metric           value    median s  (min - max over runs, after one warm-up call)"]
    for name, fn in cases.items():
        value, seconds = timings(fn, args.runs)
        lines.append(f"{name:15s} {value:7.4f}  {statistics.median(seconds):8.3f}  "
                     f"({min(seconds):.3f} - {max(seconds):.3f})")
        print(lines[-1], flush=True)
    lines.append(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    write_text(args.out, "\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
