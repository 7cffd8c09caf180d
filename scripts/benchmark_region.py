"""Benchmark (not a test): how long a 96x96 region takes (``Denoiser.denoise_region``) against
the whole image, for every method, on one 768x512 Kodak24 image at sigma 25, in one run.

    python scripts/benchmark_region.py [--image kodim01.png] [--size 96] [--methods ...]

Per method, on a fresh denoiser: the first region call (cold: it builds the network and loads
its weights), the same region again (warm, best of ``--repeats``), the whole image (warm), the
ratio whole / warm region, and how far the region is from the whole run's crop (largest
difference in 8-bit steps; PSNR of both against the clean crop). CBM3D runs in this process.
"""
from __future__ import annotations

import argparse
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


def measure(name: str, clean, noisy, box, sigma: float, repeats: int) -> dict:
    d = denoisers.get(name)
    region, cold = timed(d.denoise_region, noisy, sigma, box)
    warm = min(timed(d.denoise_region, noisy, sigma, box)[1] for _ in range(repeats))
    whole, full = timed(d.denoise, noisy, sigma)
    top, left, h, w = box
    crop = whole[top:top + h, left:left + w]
    clean_crop = clean[top:top + h, left:left + w]
    margin, align = d.region_context(sigma)
    return {"name": name, "cold": cold, "warm": warm, "full": full, "margin": margin, "align": align,
            "steps": int(abs(to_uint8(region).astype(int) - to_uint8(crop).astype(int)).max()),
            "psnr_region": psnr(clean_crop, to_uint8(region)), "psnr_crop": psnr(clean_crop, to_uint8(crop))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default="kodim01.png", help="a Kodak24 file name (768x512 or 512x768)")
    parser.add_argument("--size", type=int, default=96, help="the region's side in pixels")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=2, help="warm region calls (the best is kept)")
    parser.add_argument("--methods", default=",".join(denoisers.names()))
    args = parser.parse_args()
    methods = registry.parse_methods(args.methods)

    clean = read_image(datasets.file("kodak24", args.image))
    noisy = add_noise(to_float(clean), args.sigma, 0)
    h, w = clean.shape[:2]
    box = ((h - args.size) // 2, (w - args.size) // 2, args.size, args.size)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; {args.image} {w}x{h}, sigma {args.sigma:g}, noise seed 0, "
          f"region {args.size}x{args.size} at (top, left) = ({box[0]}, {box[1]})")
    print("method    margin  cold region  warm region   whole image  whole/warm  max 8-bit diff"
          "  PSNR region / whole's crop")
    totals = {"cold": 0.0, "warm": 0.0, "full": 0.0}
    for name in methods:
        r = measure(name, clean, noisy, box, args.sigma, args.repeats)
        for key in totals:
            totals[key] += r[key]
        margin = "whole" if r["margin"] is None else f"{r['margin']}/{r['align']}"
        print(f"{name:9s} {margin:>6s} {r['cold']:10.2f} s {r['warm']:10.2f} s {r['full']:11.2f} s "
              f"{r['full'] / r['warm']:9.1f}x {r['steps']:15d}  {r['psnr_region']:.3f} / {r['psnr_crop']:.3f} dB",
              flush=True)
    print(f"{'all':16s} {totals['cold']:10.2f} s {totals['warm']:10.2f} s {totals['full']:11.2f} s "
          f"{totals['full'] / totals['warm']:9.1f}x")
    print("margin: context pixels each side / alignment of the window's start (whole: the method "
          "declares none)")


if __name__ == "__main__":
    main()
