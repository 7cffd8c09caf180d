"""Benchmark (not a test): seconds per megapixel of every method on this machine, and fp32
against bf16 autocast (speed and PSNR) for the torch methods, measured in one run.

    python scripts/benchmark_denoisers.py [--images N] [--sigma 25]

bf16 is used by default on the CPU only where it changes the mean Kodak24 PSNR by at most
0.02 dB; this script prints that difference for every network that has weights. The
untrained generator's speed is measured with random weights (speed only, never shown).
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
import sys

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import denoisers  # noqa: E402
from denoisers import datasets  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, psnr  # noqa: E402
from denoisers.nets.idresnet import IDResNetGenerator  # noqa: E402


def timed(fn, *args, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def generator_speed(image: np.ndarray) -> None:
    """fp32 vs bf16 for the 32-block generator, random weights: speed only."""
    model = IDResNetGenerator().eval().to(memory_format=torch.channels_last)
    x = torch.from_numpy(image.transpose(2, 0, 1))[None].contiguous(memory_format=torch.channels_last)
    mp = image.shape[0] * image.shape[1] / 1e6
    with torch.inference_mode():
        t32, y32 = timed(model, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x[..., :64, :64])  # warm-up of the bf16 kernels
            t16, y16 = timed(model, x)
    diff = (y32 - y16.float()).abs().max().item() / 2  # on the [0, 1] scale
    print(f"  generator (32 blocks, random weights, speed only): fp32 {t32 / mp:6.1f} s/MP, "
          f"bf16 {t16 / mp:6.1f} s/MP, speed-up {t32 / t16:.2f}x, max |diff| {diff * 255:.2f}/255")


def large_image_memory(name: str = "ffdnet", megapixels: float = 12.0) -> None:
    """A 12-megapixel input goes through the tiling path: peak memory stays bounded."""
    import resource

    h = 3000
    w = int(megapixels * 1e6 / h)
    rng = np.random.default_rng(0)
    noisy = (0.5 + rng.normal(0, 25 / 255, (h, w, 3))).astype(np.float32)
    d = denoisers.get(name, device="cpu")
    d.denoise(noisy[:64, :64], 25)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    seconds, out = timed(d.denoise, noisy, 25)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  {name} on {w}x{h} ({w * h / 1e6:.1f} MP): {seconds:.1f} s, peak RSS {before:.2f} -> "
          f"{after:.2f} GiB (input + output arrays alone: {2 * noisy.nbytes / 2**30:.2f} GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24, help="Kodak24 images for the PSNR check")
    parser.add_argument("--sigma", type=float, default=25.0)
    args = parser.parse_args()
    paths = datasets.files("kodak24", limit=args.images)
    cleans = [read_image(p) for p in paths]
    noisies = [add_noise(to_float(c), args.sigma, 0) for c in cleans]
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; Kodak24 first {len(paths)} images, sigma {args.sigma:g}")
    mp = cleans[0].shape[0] * cleans[0].shape[1] / 1e6
    print("seconds per megapixel (first image, default precision):")
    for name in denoisers.names():
        d = denoisers.get(name)
        if not d.readiness(args.sigma).ready:
            print(f"  {name:9s} not ready: {d.readiness(args.sigma).reason}")
            continue
        d.denoise(noisies[0][:64, :64], args.sigma)  # load the model, warm up
        seconds, _ = timed(d.denoise, noisies[0], args.sigma)
        print(f"  {name:9s} {seconds / mp:7.2f} s/MP  ({seconds:.2f} s for {cleans[0].shape[1]}x{cleans[0].shape[0]})")
    print(f"fp32 vs bf16 autocast (channels_last), mean over {len(paths)} images:")
    for name in denoisers.names():
        d32 = denoisers.get(name, device="cpu", precision="fp32") if name != "cbm3d" else None
        if d32 is None or not d32.readiness(args.sigma).ready:
            continue
        d16 = denoisers.get(name, device="cpu", precision="bf16")
        d32.denoise(noisies[0][:64, :64], args.sigma), d16.denoise(noisies[0][:64, :64], args.sigma)
        t32 = t16 = 0.0
        p32, p16 = [], []
        for clean, noisy in zip(cleans, noisies):
            s, out = timed(d32.denoise, noisy, args.sigma)
            t32 += s
            p32.append(psnr(clean, to_uint8(out)))
            s, out = timed(d16.denoise, noisy, args.sigma)
            t16 += s
            p16.append(psnr(clean, to_uint8(out)))
        delta = np.mean(p16) - np.mean(p32)
        verdict = "bf16 allowed" if abs(delta) <= 0.02 else "bf16 NOT allowed (> 0.02 dB)"
        print(f"  {name:9s} fp32 {np.mean(p32):.3f} dB {t32:6.1f} s | bf16 {np.mean(p16):.3f} dB {t16:6.1f} s"
              f" | speed-up {t32 / t16:.2f}x, PSNR {delta:+.3f} dB: {verdict}; default now: "
              f"{'bf16' if type(d32).cpu_bf16 else 'fp32'}")
    generator_speed(noisies[0])
    print("large input (tiled):")
    large_image_memory()


if __name__ == "__main__":
    main()
