"""Where the trained generators stand against the training campaign's targets, on Kodak24.

    python -m train.targets [docs/results/kodak24]

From the evaluation CLI's ``results.csv`` (noise seed 0), per sigma 25/35/50:

- IDResNet against the official DnCNN, on the images both were run on: the mean PSNR
  difference and its 95% interval; met when IDResNet's mean is higher on all 24 images;
  and the distance to the paper's Table 1 number;
- IDGAN's PSNR cost against IDResNet (met at 2.5 dB or less) and whether its detail (the
  outputs' high-frequency energy over the clean images') is closer to 1 than IDResNet's.

Prints a table and exits 0 when every target is met on the full set, 1 otherwise (a missing
or partial result counts as not met, and says so).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from denoisers import report

SIGMAS = (25.0, 35.0, 50.0)
FULL_SET = 24
MAX_GAN_COST_DB = 2.5


def _means(rows: pd.DataFrame, method: str, sigma: float) -> tuple[float, float, int] | None:
    """(mean PSNR, detail, images) of ``method`` at ``sigma``, or None without rows."""
    at = rows[(rows["method"] == method) & (rows["sigma"].astype(float) == sigma)]
    if at.empty:
        return None
    mean = report.summary(at).iloc[0]
    return float(mean["psnr"]), float(mean["detail"]), int(mean["images"])


def check(results: pd.DataFrame) -> tuple[list[str], bool]:
    """The report's lines and whether every target is met."""
    rows = report.one_seed(results, 0)
    paper = report.references("kodak24")[0]
    lines, all_met = [], True
    for sigma in SIGMAS:
        ours, gan, dncnn = (_means(rows, m, sigma) for m in ("idresnet", "idgan", "dncnn"))
        head = f"sigma {sigma:g}:"
        if ours is None or dncnn is None:
            lines.append(f"{head} IDResNet vs DnCNN: not measured ({'idresnet' if ours is None else 'dncnn'} has no rows)")
            all_met = False
        else:
            pair = report.paired(rows[rows["method"].isin(["idresnet", "dncnn"])
                                      & (rows["sigma"].astype(float) == sigma)], ["idresnet", "dncnn"])
            diff = ours[0] - dncnn[0]
            interval = ""
            if not pair.empty:
                r = pair.iloc[0]
                sign = 1 if r["method"] == "idresnet" else -1  # paired() reports method minus the best
                low, high = sorted((sign * r["low"], sign * r["high"]))
                interval = f", 95% interval {low:+.2f} to {high:+.2f} over {r['images']} images"
            full = ours[2] >= FULL_SET and dncnn[2] >= FULL_SET
            met = diff > 0 and full
            all_met &= met
            gap = ours[0] - paper["idresnet"][sigma]
            lines.append(f"{head} IDResNet {ours[0]:.2f} dB ({ours[2]} images) vs DnCNN {dncnn[0]:.2f}: "
                         f"{diff:+.2f} dB{interval} -> {'met' if met else 'not met' if full else 'partial set'}; "
                         f"paper {paper['idresnet'][sigma]:.2f} ({gap:+.2f})")
        if ours is None or gan is None:
            lines.append(f"{head} IDGAN vs IDResNet: not measured")
            all_met = False
            continue
        cost = ours[0] - gan[0]
        closer = abs(gan[1] - 1) < abs(ours[1] - 1)
        full = gan[2] >= FULL_SET and ours[2] >= FULL_SET
        met = cost <= MAX_GAN_COST_DB and closer and full
        all_met &= met
        lines.append(f"{head} IDGAN {gan[0]:.2f} dB, cost {cost:.2f} dB (at most {MAX_GAN_COST_DB:g}); detail "
                     f"{gan[1]:.2f} vs IDResNet {ours[1]:.2f} ({'closer to 1' if closer else 'not closer to 1'}) -> "
                     f"{'met' if met else 'not met' if full else 'partial set'}")
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.targets", description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("docs/results/kodak24"),
                        help="an evaluation folder holding results.csv (default docs/results/kodak24)")
    args = parser.parse_args(argv)
    csv_path = args.folder / "results.csv"
    if not csv_path.exists():
        raise SystemExit(f"{csv_path}: no results (run python -m denoisers.evaluate first)")
    lines, met = check(report.read_results(csv_path))
    print("\n".join(lines))
    print("all targets met" if met else "targets not all met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
