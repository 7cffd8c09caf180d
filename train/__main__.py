"""``python -m train mse|gan|bench``: train a phase, or measure training speed.

Examples:
    python -m train mse --preset tiny --data cbsd432 --out runs/tiny-mse
    python -m train gan --preset tiny --data cbsd432 --out runs/tiny-gan --init runs/tiny-mse
    python -m train mse --preset gpu --set sigma=[15,55] --set minutes=6 --out runs/mse
    torchrun --nproc-per-node 4 -m train mse --preset gpu --out runs/mse   # DDP, same code
    python -m train bench --preset gpu --phase mse
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoisers.fetch import FetchError
from denoisers.io import ImageReadError
from denoisers.weights import WeightsError

from .checkpoint import CheckpointError
from .config import Config, ConfigError, load_yaml, parse_override, preset
from .data import resolve_images
from .loop import TrainingDiverged


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_yaml(args.config) if args.config else preset(args.preset)
    changes = dict(parse_override(text) for text in args.set)
    if args.minutes is not None:
        changes["minutes"] = args.minutes
    return cfg.replace(**changes) if changes else cfg


def _count(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _counts(text: str) -> list[int]:
    return [_count(1)(part) for part in text.split(",") if part.strip()]


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="paper", help="paper, gpu or tiny (default: paper)")
    p.add_argument("--config", help="a YAML file of config keys (overrides --preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, value as YAML (repeatable): --set sigma=[15,55]")
    p.add_argument("--data", default="cbsd432", help="training images: a folder or a dataset name")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for phase, text in (("mse", "phase 1: IDResNet, MSE loss"), ("gan", "phase 2: IDGAN, detail loss")):
        p = sub.add_parser(phase, help=text)
        add_common(p)
        p.add_argument("--out", required=True, help="run folder (a last.pt in it is resumed)")
        p.add_argument("--init", help="generator to start from: run folder or .pt (required for gan)")
        p.add_argument("--steps", type=_count(1), help="steps of this phase (default: the preset's)")
        p.add_argument("--minutes", type=float, help="stop after this many minutes (plans the lr schedule)")
        p.add_argument("--eval-data", default="kodak24", help="folder or dataset name for the periodic PSNR")
        p.add_argument("--no-eval", action="store_true", help="skip the periodic Kodak PSNR")
        p.add_argument("--random-vgg", action="store_true",
                       help="random VGG19 weights instead of ImageNet (tests without the weights file only)")
    p = sub.add_parser("bench", help="it/s of a preset against naive fp32 eager, same process")
    add_common(p)
    p.add_argument("--phase", choices=("mse", "gan"), default="mse")
    p.add_argument("--steps", type=_count(1), default=30, help="timed steps per setting")
    p.add_argument("--warmup", type=_count(0), default=5, help="untimed steps per setting")
    p.add_argument("--batches", type=_counts, default=[], help="also time these batch sizes, e.g. 16,32,64")
    p.add_argument("--compile-modes", default="", help="also time these torch.compile modes, e.g. default")
    p.add_argument("--random-vgg", action="store_true", help="random VGG19 weights (no weights file)")
    p.add_argument("--minutes", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        cfg = build_config(args)
        if args.command == "bench":
            from .bench import bench

            data = resolve_images(args.data) if args.data != "synthetic" else None
            bench(cfg, args.phase, data, args.steps, args.warmup, args.device, not args.random_vgg,
                  args.batches, [m for m in args.compile_modes.split(",") if m])
            return 0
        from .loop import train_phase

        data = resolve_images(args.data)
        eval_paths: list[Path] = []
        if not args.no_eval:
            try:
                eval_paths = resolve_images(args.eval_data, limit=cfg.eval_images, download=False)
            except (FileNotFoundError, RuntimeError) as exc:
                print(f"no periodic evaluation: {exc}", file=sys.stderr)
        train_phase(cfg, args.command, data, args.out, init=args.init, eval_paths=eval_paths, device=args.device,
                    pretrained_vgg=not args.random_vgg, steps=args.steps)
    except (ConfigError, FileNotFoundError, CheckpointError, ImageReadError, FetchError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an unwritable --out, a full disk ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
