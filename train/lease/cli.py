"""The command line of the lease steps: ``python -m train.lease stage|device|import ...``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import STAGE, WORK, LeaseError
from .device import WORK_MARKER, PhasePlan, choose_phase, device, parse_plan, resolve_init
from .importing import import_results
from .stage import stage


def build_parser() -> argparse.ArgumentParser:
    from train import lease

    parser = argparse.ArgumentParser(prog="python -m train.lease", description=lease.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stage", help="copy data and weights into .stage/ and check the tree size")
    p.add_argument("--dest", type=Path, default=STAGE)
    p.add_argument("--kodak", type=int, default=3, help="Kodak images for the in-run PSNR (default 3)")
    p.add_argument("--no-vgg", action="store_true", help="leave the VGG19 file out (MSE-only plans)")
    p.add_argument("--init", type=Path, help="a returned idresnet.pt for the next job to continue from "
                                             "(its --init auto picks it)")
    p = sub.add_parser("device", help="on the GPU machine: train the plan, write $OUT")
    p.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="default: $OUT")
    p.add_argument("--plan", default="mse:5.5,gan:2.5",
                   help="phases and minutes (default mse:5.5,gan:2.5); auto:M continues from an earlier job's "
                        "--init run folder with mse while its IDResNet is below DnCNN, else gan")
    p.add_argument("--preset", default="gpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--init", default="auto",
                   help="generator to start from: a .pt, 'none', or 'auto' (default): the bundled "
                        "assets/weights/idresnet_<sigma>.pt of this sigma setting when there is one")
    p.add_argument("--stage", type=Path, default=STAGE)
    p.add_argument("--work", type=Path, default=WORK,
                   help=f"folder for the phases' run folders (default .lease-runs/job1, ignored by git: it "
                        f"stays on a warm machine for a second job's --init .lease-runs/job1/mse); an existing "
                        f"one is replaced only when it carries {WORK_MARKER} (made by this command), else it "
                        f"must be empty")
    p = sub.add_parser("import", help="turn $OUT files into assets/weights/ files and model cards")
    p.add_argument("src", type=Path, help="the folder holding the files the GPU job returned from $OUT")
    p.add_argument("--assets", type=Path, default=None, help="default: assets/weights")
    p.add_argument("--sigmas", default="25,35,50", help="manifest sigmas to serve (default 25,35,50)")
    p.add_argument("--psnr", choices=("cli", "inprocess", "skip"), default="cli")
    p.add_argument("--kodak-limit", type=int, default=None, help="measure on the first N Kodak images only")
    p.add_argument("--hardware", help="override the hardware line of the model card")
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "stage":
            stage(args.dest, args.kodak, not args.no_vgg, init=args.init)
        elif args.command == "device":
            return run_device(args)
        else:
            from denoisers import weights

            try:
                sigmas = [float(s) for s in args.sigmas.split(",")]
            except ValueError:
                raise LeaseError(f"--sigmas takes numbers like 25,35,50, got {args.sigmas!r}") from None
            import_results(args.src, args.assets or weights.ASSETS, sigmas, args.psnr, args.kodak_limit,
                           args.hardware)
    except (LeaseError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_device(args: argparse.Namespace) -> int:
    """``device``: the configuration and plan from the options (an ``auto`` plan decided here), then train."""
    from ..config import parse_override, preset

    if args.out is None:
        raise LeaseError("give --out or set $OUT")
    cfg = preset(args.preset)
    changes = dict(parse_override(t) for t in args.set)
    cfg = cfg.replace(**changes) if changes else cfg
    plan = parse_plan(args.plan)
    init = resolve_init(args.init, cfg, stage_dir=args.stage)
    why = None
    if plan[0].phase == "auto":
        phase, why = choose_phase(init)
        print(f"plan auto: {phase} ({why})")
        plan = [PhasePlan(phase, plan[0].minutes)]
    return device(args.out, plan, cfg, args.work, args.stage, init, plan_choice=why)
