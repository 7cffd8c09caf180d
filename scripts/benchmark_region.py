"""Benchmark (not a test): how long a 96x96 region takes (``Denoiser.denoise_region``) against
the whole image, for every method, on one 768x512 Kodak24 image at sigma 25, in one run.

    python scripts/benchmark_region.py [--image kodim01.png] [--size 96] [--methods ...] [--single-threaded]

Per method, on a fresh denoiser: its warm-up (``Denoiser.warm``, what the app does at launch:
a network's weights loaded, bm3d imported), the first region call after it and the CPU time it
took (all threads), the same region again (best of ``--repeats``), the whole image, the ratio
whole / first region, and how far the region is from the whole run's crop (largest difference in
8-bit steps; PSNR of both against the clean crop). CBM3D runs in this process. The first
regions' CPU time over the cores is a floor no scheduling of them can beat.

``--single-threaded``: torch on one thread and every bm3d call on one (CBM3D's second and third
channels still side by side, as ``cbm3d._bm3d_channels`` runs them): the least CPU time each
method takes, since more threads repeat work (bm3d's fixed cost per thread).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import denoisers  # noqa: E402
from denoisers import registry  # noqa: E402
from denoisers import datasets  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, psnr  # noqa: E402


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def cpu_timed(fn, *args):
    """``fn(*args)``, its wall-clock seconds and the CPU seconds of this process meanwhile (all
    its threads: torch's, bm3d's)."""
    cpu = time.process_time()
    result, wall = timed(fn, *args)
    return result, wall, time.process_time() - cpu


def measure(name: str, clean, noisy, box, sigma: float, repeats: int) -> dict:
    d = denoisers.get(name)
    _, warmup = timed(d.warm, sigma)
    region, first, cpu = cpu_timed(d.denoise_region, noisy, sigma, box)
    again = min(timed(d.denoise_region, noisy, sigma, box)[1] for _ in range(repeats))
    whole, full = timed(d.denoise, noisy, sigma)
    top, left, h, w = box
    crop = whole[top:top + h, left:left + w]
    clean_crop = clean[top:top + h, left:left + w]
    margin, align = d.region_context(sigma)
    return {"name": name, "warmup": warmup, "first": first, "cpu": cpu, "again": again, "full": full, "margin": margin, "align": align,
            "steps": int(abs(to_uint8(region).astype(int) - to_uint8(crop).astype(int)).max()),
            "psnr_region": psnr(clean_crop, to_uint8(region)), "psnr_crop": psnr(clean_crop, to_uint8(crop))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default="kodim01.png", help="a Kodak24 file name (768x512 or 512x768)")
    parser.add_argument("--size", type=int, default=96, help="the region's side in pixels")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=2, help="repeated region calls (the best is kept)")
    parser.add_argument("--methods", default=",".join(denoisers.names()))
    parser.add_argument("--single-threaded", action="store_true",
                        help="torch and every bm3d call on one thread each")
    args = parser.parse_args()
    with single_threaded() if args.single_threaded else contextlib.nullcontext():
        run(args)


def single_threaded():
    """torch on one thread now, and every bm3d call on one within the returned context."""
    from denoisers.cbm3d import profile_overrides

    torch.set_num_threads(1)
    return profile_overrides(num_threads=1)


def run(args: argparse.Namespace) -> None:
    methods = registry.parse_methods(args.methods)

    clean = read_image(datasets.file("kodak24", args.image))
    noisy = add_noise(to_float(clean), args.sigma, 0)
    h, w = clean.shape[:2]
    box = ((h - args.size) // 2, (w - args.size) // 2, args.size, args.size)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
          f"bm3d {'one thread per call' if args.single_threaded else 'its default threads'}, "
          f"torch {torch.__version__}; {args.image} {w}x{h}, sigma {args.sigma:g}, noise seed 0, "
          f"region {args.size}x{args.size} at (top, left) = ({box[0]}, {box[1]})")
    print("method    margin     warm-up  first region  its CPU time  region again   whole image  whole/first"
          "  max 8-bit diff  PSNR region / whole's crop")
    totals = {"warmup": 0.0, "first": 0.0, "cpu": 0.0, "again": 0.0, "full": 0.0}
    for name in methods:
        r = measure(name, clean, noisy, box, args.sigma, args.repeats)
        for key in totals:
            totals[key] += r[key]
        margin = "whole" if r["margin"] is None else f"{r['margin']}/{r['align']}"
        print(f"{name:9s} {margin:>6s} {r['warmup']:9.2f} s {r['first']:11.2f} s {r['cpu']:11.2f} s {r['again']:11.2f} s "
              f"{r['full']:11.2f} s {r['full'] / r['first']:11.1f}x {r['steps']:15d}  "
              f"{r['psnr_region']:.3f} / {r['psnr_crop']:.3f} dB", flush=True)
    print(f"{'all':16s} {totals['warmup']:9.2f} s {totals['first']:11.2f} s {totals['cpu']:11.2f} s {totals['again']:11.2f} s "
          f"{totals['full']:11.2f} s {totals['full'] / totals['first']:11.1f}x")
    print(f"all {len(methods)} regions from a fresh process, warm-up included: {totals['warmup'] + totals['first']:.2f} s; "
          f"after the warm-up (the app's case): {totals['first']:.2f} s; the whole images: {totals['full']:.2f} s")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPU time of the {len(methods)} first regions: {totals['cpu']:.2f} s; on {cores} cores no order or "
          f"overlap of them finishes under {totals['cpu'] / cores:.2f} s (CPU time / cores)")
    print("margin: context pixels each side / alignment of the window's start (whole: the method "
          "declares none); its CPU time: this process's, all threads, during the first region")


if __name__ == "__main__":
    main()
