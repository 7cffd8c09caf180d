"""Measurement (not a test): how far ``denoise_region`` is from the whole image's output, as
PSNR of the region's output minus PSNR of the whole output's crop (both against the clean
crop), over several crops of several Kodak24 images.

    python scripts/region_accuracy.py [--methods cbm3d] [--images 6] [--size 96] [--sigma 25]

Crops per image: the centre, the top-left and bottom-right corners, the middle of the left
border, and one at a seeded random place. Noise seed 0 per image, as the evaluation's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import denoisers  # noqa: E402
from denoisers import datasets, registry  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, psnr  # noqa: E402


def boxes(h: int, w: int, size: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    places = [((h - size) // 2, (w - size) // 2), (0, 0), (h - size, w - size), ((h - size) // 2, 0),
              (int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1)))]
    return [(top, left, size, size) for top, left in places]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="cbm3d")
    parser.add_argument("--images", type=int, default=6, help="every 4th Kodak24 image, this many")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--sigma", type=float, default=25.0)
    args = parser.parse_args()
    methods = registry.parse_methods(args.methods)
    files = datasets.files("kodak24", download=False)[::4][:args.images]
    rng = np.random.default_rng(0)
    print(f"Kodak24 {', '.join(f.stem for f in files)}; sigma {args.sigma:g}, noise seed 0; "
          f"{args.size}x{args.size} crops: centre, two corners, left border, one random")
    for name in methods:
        d = denoisers.get(name)
        diffs, steps = [], []
        for path in files:
            clean = read_image(path)
            noisy = add_noise(to_float(clean), args.sigma, 0)
            start = time.perf_counter()
            whole = d.denoise(noisy, args.sigma)
            row = [f"{name} {path.stem} (whole {time.perf_counter() - start:.1f} s):"]
            for top, left, h, w in boxes(*clean.shape[:2], args.size, rng):
                region = to_uint8(d.denoise_region(noisy, args.sigma, (top, left, h, w)))
                crop = to_uint8(whole[top:top + h, left:left + w])
                ref = clean[top:top + h, left:left + w]
                diffs.append(psnr(ref, region) - psnr(ref, crop))
                steps.append(int(np.abs(region.astype(int) - crop.astype(int)).max()))
                row.append(f"({top},{left}) {diffs[-1]:+.3f} dB")
            print(" ".join(row), flush=True)
        d_arr = np.array(diffs)
        print(f"{name}: {len(diffs)} crops, PSNR region - whole's crop: mean {d_arr.mean():+.4f} dB, "
              f"mean |diff| {np.abs(d_arr).mean():.4f} dB, largest |diff| {np.abs(d_arr).max():.4f} dB; "
              f"largest pixel difference {max(steps)} 8-bit steps", flush=True)


if __name__ == "__main__":
    main()
