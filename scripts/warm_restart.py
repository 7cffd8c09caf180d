"""Measurement (not a test): what the first steps of a lease do to a trained IDResNet.

Every lease continues from the bundled float16 generator with a fresh Adam, because the
optimiser state cannot travel. This restarts from that file on the CPU, trains a few steps of
the ``gpu`` preset's MSE phase on small CBSD432 crops, once per lr warm-up length, with the
same batches, and prints the MSE on a fixed held-out set of noisy crops after each of the
listed steps (lr and milestones from ``train.loop.lr_at``).

    python scripts/warm_restart.py [--warmups 0 20 200] [--steps 40] [--batch 8] [--crop 64]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoisers.nets.idresnet import IDResNetGenerator  # noqa: E402
from denoisers.weights import ASSETS  # noqa: E402
from train import checkpoint as ckpt  # noqa: E402
from train.config import preset  # noqa: E402
from train.data import BatchMaker, load_bank, resolve_images  # noqa: E402
from train.loop import adam, lr_at  # noqa: E402
from train.losses import pixel_loss  # noqa: E402

REPORT_AT = (1, 2, 5, 10, 20, 40, 80, 160, 320)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ASSETS / "idresnet_s20-55.pt")
    parser.add_argument("--warmups", type=int, nargs="+", default=[0, 20, 200])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=64)
    args = parser.parse_args()

    weights, meta = ckpt.generator_state(args.weights)
    cfg = preset("gpu").replace(batch=args.batch, crop=args.crop)
    bank = load_bank(resolve_images("cbsd432", download=False), "cpu", args.crop)
    batches = BatchMaker(bank, args.crop, args.batch, cfg.sigma_range, seed=123)
    held_out = [batches.make(10**6 + i) for i in range(4)]  # fixed crops and noise, never trained on

    def held_out_mse(g: IDResNetGenerator) -> float:
        with torch.no_grad():
            return sum(pixel_loss(g(noisy), target).item() for noisy, target in held_out) / len(held_out)

    print(f"# {args.weights.name} ({meta.get('steps', '?')} steps), fresh Adam, lr {cfg.lr:g}, "
          f"batch {args.batch} of {args.crop}x{args.crop}, sigma {cfg.sigma_range}, {torch.get_num_threads()} threads")
    print("# held-out MSE on [-1, 1] after N steps (0: the file as it is)")
    for warmup in args.warmups:
        run_cfg = cfg.replace(lr_warmup=warmup)
        g = IDResNetGenerator(**meta["arch"])
        g.load_state_dict(weights)
        opt = adam(g.parameters(), run_cfg)
        row = [f"0: {held_out_mse(g):.5f}"]
        start = time.perf_counter()
        for step in range(args.steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(run_cfg, step, cfg.mse_steps)
            noisy, target = batches.make(step)
            loss = pixel_loss(g(noisy), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step + 1 in REPORT_AT or step + 1 == args.steps:
                row.append(f"{step + 1}: {held_out_mse(g):.5f}")
        print(f"warm-up {warmup:>4} steps | " + "  ".join(row) + f"  ({time.perf_counter() - start:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
