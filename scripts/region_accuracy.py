"""Measurement (not a test): how far ``denoise_region`` is from the whole image's output, as
PSNR of the region's output minus PSNR of the whole output's crop (both against the clean
crop), over several crops of several Kodak24 images.

    python scripts/region_accuracy.py [--methods cbm3d] [--images 6] [--size 96] [--sigma 25]
                                      [--cbm3d-profiles 32:4,16:4,32:2]

Crops per image: the centre, the top-left and bottom-right corners, the middle of the left
border, and one at a seeded random place. Noise seed 0 per image, as the evaluation's.

``--cbm3d-profiles NF:K,...`` also measures CBM3D's regions with cheaper bm3d settings (``nf``:
the size of its noise-statistics grid, 32 by default; ``k``: how many layers of them, 4), the
whole run always with bm3d's defaults, and the CPU time of each region (all threads): what a
cheaper preview profile would cost in accuracy.
"""
from __future__ import annotations

import argparse
import contextlib
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


def bm3d_profiles(text: str) -> list[tuple[int, int]]:
    """``"32:4,16:4"`` -> [(32, 4), (16, 4)]; anything else is an argparse error."""
    try:
        pairs = [tuple(int(v) for v in item.split(":")) for item in text.split(",") if item.strip()]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(f"expected NF:K pairs separated by commas, got {text!r}")
    return pairs


def variants(name: str, profiles: list[tuple[int, int]]) -> list[tuple[str, object]]:
    """(label, context manager factory) for each way ``name``'s regions are measured."""
    if name != "cbm3d" or not profiles:
        return [(name, contextlib.nullcontext)]
    from denoisers.cbm3d import profile_overrides

    return [(f"cbm3d nf {nf} k {k}", lambda nf=nf, k=k: profile_overrides(nf=nf, k=k)) for nf, k in profiles]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="cbm3d")
    parser.add_argument("--images", type=int, default=6, help="every 4th Kodak24 image, this many")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--cbm3d-profiles", type=bm3d_profiles, default=[], metavar="NF:K,...",
                        help="CBM3D's regions with these bm3d settings too (default: bm3d's own)")
    args = parser.parse_args()
    methods = registry.parse_methods(args.methods)
    files = datasets.files("kodak24", download=False)[::4][:args.images]
    print(f"Kodak24 {', '.join(f.stem for f in files)}; sigma {args.sigma:g}, noise seed 0; "
          f"{args.size}x{args.size} crops: centre, two corners, left border, one random")
    for name in methods:
        d = denoisers.get(name)
        ways = variants(name, args.cbm3d_profiles)
        diffs = {label: [] for label, _ in ways}
        steps = {label: 0 for label, _ in ways}
        cpu = {label: 0.0 for label, _ in ways}
        rng = np.random.default_rng(0)  # the same crops for every method
        if len(ways) > 1:
            print(f"{name}: per crop, in this order: {'; '.join(label for label, _ in ways)}")
        for path in files:
            clean = read_image(path)
            noisy = add_noise(to_float(clean), args.sigma, 0)
            start = time.perf_counter()
            whole = d.denoise(noisy, args.sigma)
            row = [f"{name} {path.stem} (whole {time.perf_counter() - start:.1f} s):"]
            for top, left, h, w in boxes(*clean.shape[:2], args.size, rng):
                crop = to_uint8(whole[top:top + h, left:left + w])
                ref = clean[top:top + h, left:left + w]
                row.append(f"({top},{left})")
                for label, settings in ways:
                    with settings():
                        started = time.process_time()
                        region = to_uint8(d.denoise_region(noisy, args.sigma, (top, left, h, w)))
                        cpu[label] += time.process_time() - started
                    diffs[label].append(psnr(ref, region) - psnr(ref, crop))
                    steps[label] = max(steps[label], int(np.abs(region.astype(int) - crop.astype(int)).max()))
                    row.append(f"{diffs[label][-1]:+.3f}")
                row[-1] += " dB"
            print(" ".join(row), flush=True)
        for label, _ in ways:
            d_arr = np.array(diffs[label])
            print(f"{label}: {len(d_arr)} crops, PSNR region - whole's crop: mean {d_arr.mean():+.4f} dB, "
                  f"mean |diff| {np.abs(d_arr).mean():.4f} dB, largest |diff| {np.abs(d_arr).max():.4f} dB; "
                  f"largest pixel difference {steps[label]} 8-bit steps; CPU time per region "
                  f"{cpu[label] / len(d_arr):.2f} s", flush=True)


if __name__ == "__main__":
    main()
