"""Benchmark (not a test): how close the app's noise estimate (used when an upload is marked
"already noisy") comes to the true sigma, against the classic whole-image wavelet estimate,
on 8-bit images with clipped Gaussian noise (the protocol's noisy input, rounded and clipped
as a saved noisy file is).

    python scripts/benchmark_noise_estimate.py [--data kodak24 cbsd68 mcmaster] [--sigmas 5 15 25 35 50 75]

Per set and sigma: the mean estimate, the lowest and highest, and the root-mean-square error.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoisers import datasets  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, estimate_noise_sigma  # noqa: E402


def whole_image_estimate(image: np.ndarray) -> float:
    """The classic estimate: skimage's wavelet sigma over the whole image, channels averaged."""
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(image / 255.0, channel_axis=-1, average_sigmas=True)) * 255.0


def row(values: list[float], sigma: float) -> str:
    v = np.asarray(values)
    rmse = float(np.sqrt(np.mean((v - sigma) ** 2)))
    return f"{v.mean():6.2f} [{v.min():5.1f}, {v.max():5.1f}] {rmse:5.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["kodak24", "cbsd68", "mcmaster"])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[5, 15, 25, 35, 50, 75])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds, count = 0.0, 0
    for name in args.data:
        files = datasets.files(name)
        clean = [to_float(read_image(f)) for f in files]
        print(f"{name} ({len(files)} images), noise seed {args.seed}")
        print("  sigma | whole image: mean [min, max] rmse | app: mean [min, max] rmse")
        for sigma in args.sigmas:
            whole, ours = [], []
            for image in clean:
                noisy = to_uint8(add_noise(image, sigma, args.seed))
                whole.append(whole_image_estimate(noisy))
                start = time.perf_counter()
                ours.append(estimate_noise_sigma(noisy))
                seconds += time.perf_counter() - start
                count += noisy.shape[0] * noisy.shape[1]
            print(f"  {sigma:5g} | {row(whole, sigma)} | {row(ours, sigma)}")
    print(f"app estimate: {seconds / (count / 1e6):.3f} s per megapixel")


if __name__ == "__main__":
    main()
