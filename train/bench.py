"""Training speed of a preset against naive fp32 eager, measured in one process.

Each setting builds fresh models and times ``steps`` training steps after ``warmup`` untimed
ones (the warm-up time is printed too: with torch.compile it is mostly compilation, which a
10-minute run has to pay back). Data: the real training set when given, else random images
of CBSD432's size (speed does not depend on pixel values).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config
from .data import ImageBank, load_bank
from .distributed import Dist, setup_distributed, sync
from .loop import prepare
from .steps import STEPS
from .vgg import load_vgg19


@dataclass
class Timing:
    name: str
    batch: int
    warmup_s: float
    it_s: float
    mpx_s: float
    peak_gib: float = 0.0


def synthetic_bank(device: torch.device, n: int = 32) -> ImageBank:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 321, 481, 3), generator=g, dtype=torch.uint8)
    sizes = torch.tensor([[321, 481]] * n)
    return ImageBank(pixels.to(device), sizes.to(device))


def time_setting(name: str, cfg: Config, phase: str, bank: ImageBank, info: Dist, steps: int, warmup: int,
                 vgg) -> Timing:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        state, _ = prepare(cfg, phase, bank, info, Path(tmp), None, True, None, vgg)
    state.total_steps = warmup + steps
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    step_fn = STEPS[phase]

    def one(step: int) -> None:
        noisy, target = state.batches.make(step)
        step_fn(state, noisy.contiguous(memory_format=fmt), target.contiguous(memory_format=fmt))

    t0 = time.perf_counter()
    for s in range(warmup):
        one(s)
    sync(info.device)
    t1 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        one(s)
    sync(info.device)
    t2 = time.perf_counter()
    it_s = steps / (t2 - t1)
    peak = torch.cuda.max_memory_allocated(info.device) / 2**30 if info.device.type == "cuda" else 0.0
    return Timing(name, cfg.batch, t1 - t0, it_s, it_s * cfg.batch * cfg.crop**2 / 1e6, peak)


def bench(cfg: Config, phase: str, data: list[Path] | None, steps: int, warmup: int, device: str | None,
          pretrained_vgg: bool, batches: list[int], compile_modes: list[str]) -> list[Timing]:
    info = setup_distributed(device)
    torch.backends.cudnn.benchmark = True
    bank = load_bank(data, info.device, cfg.crop) if data else synthetic_bank(info.device)
    vgg = load_vgg19("relu5_4", pretrained_vgg) if phase == "gan" else None
    settings = [("naive fp32 eager, no TF32", cfg.replace(amp="none", channels_last=False, compile="none")),
                (f"preset {cfg.preset}", cfg)]
    settings += [(f"preset, batch {b}", cfg.replace(batch=b)) for b in batches if b != cfg.batch]
    settings += [(f"preset, compile={m}", cfg.replace(compile=m)) for m in compile_modes if m != cfg.compile]
    name = torch.cuda.get_device_name(info.device) if info.device.type == "cuda" else "cpu"
    print(f"# {phase} phase, preset {cfg.preset} ({cfg.blocks} blocks x {cfg.channels} ch, crop {cfg.crop}), "
          f"{name}, torch {torch.__version__}, {steps} timed steps after {warmup} warm-up")
    print(f"{'setting':<34} {'batch':>5} {'warmup s':>9} {'it/s':>9} {'Mpx/s':>8} {'x naive':>8} {'GPU GiB':>8}")
    results = []
    for label, setting in settings:
        # The baseline is strict fp32: PyTorch lets cuDNN use TF32 for convolutions by default.
        torch.backends.cudnn.allow_tf32 = not label.startswith("naive")
        if info.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(info.device)
        try:
            t = time_setting(label, setting, phase, bank, info, steps, warmup, vgg)
        except Exception as exc:  # one failing setting (e.g. out of memory) must not hide the others
            print(f"{label:<34} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            continue
        results.append(t)
        base = results[0].mpx_s
        print(f"{t.name:<34} {t.batch:>5} {t.warmup_s:>9.1f} {t.it_s:>9.2f} {t.mpx_s:>8.2f} {t.mpx_s / base:>8.2f} "
              f"{t.peak_gib:>8.1f}", flush=True)
        if info.device.type == "cuda":
            torch.cuda.empty_cache()
    torch.backends.cudnn.allow_tf32 = True
    return results
