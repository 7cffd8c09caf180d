"""The metrics an evaluation records beside PSNR, SSIM and detail: LPIPS (AlexNet) by default,
DISTS when asked (``--metrics``), and how a metric added to a finished run is computed from the
outputs that ``--save-images`` kept instead of running the methods again."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import metrics, report
from .fetch import FetchError
from .io import read_image
from .resume import row_key
from .weights import WeightsError

METRICS = ("psnr", "ssim", "detail", *report.PERCEPTUAL)
DEFAULT_METRICS = "psnr,ssim,detail,lpips"


def parse_metrics(text: str) -> tuple[str, ...]:
    """The perceptual metrics that ``--metrics`` asks for, from a list such as
    ``psnr,ssim,detail,lpips,dists``; PSNR, SSIM and detail are recorded whatever it says."""
    asked = [m.strip().lower() for m in text.replace(" ", ",").split(",") if m.strip()]
    unknown = [m for m in asked if m not in METRICS]
    if unknown or not asked:
        raise ValueError(f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(METRICS)} "
                         "(psnr, ssim and detail are always recorded)")
    return tuple(m for m in report.PERCEPTUAL if m in asked)


def perceptual_scores(clean_u8, out_u8, names: tuple[str, ...]) -> dict[str, float]:
    """LPIPS (AlexNet) and/or DISTS of an output, as named in ``names``."""
    return {name: round(getattr(metrics, name)(clean_u8, out_u8), 5) for name in names}


def load_perceptual(names: tuple[str, ...]) -> None:
    """Build the perceptual metrics' networks once before any row, so that missing weights stop
    the run at once, naming the metric."""
    probe = np.zeros((64, 64, 3), np.uint8)
    for name in names:
        try:
            getattr(metrics, name)(probe, probe)
        except (WeightsError, FetchError, OSError) as exc:
            raise SystemExit(f"--metrics {name}: cannot load its weights: {exc}") from None


def scorers(clean_u8, names: tuple[str, ...]) -> dict[str, Callable]:
    """One scorer per metric in ``names`` against the clean image (``metrics.scorer``): the
    outputs of one image scored one after another share its DISTS features."""
    return {name: metrics.scorer(name, clean_u8) for name in names}


def fill_from_saved(existing: pd.DataFrame, jobs: list, names: tuple[str, ...], saved: Callable | None,
                    checkpoint: Callable[[pd.DataFrame], None] | None = None) -> tuple[pd.DataFrame, int]:
    """Rows of this run that lack an asked perceptual metric but whose output was kept by
    ``--save-images`` get it from that PNG: adding a metric to a finished run computes only the
    metric, not the method again, and only the metrics a row lacks. Rows are scored image by
    image; after each image ``checkpoint`` gets the rows so far (to write them, so that an
    interrupted fill keeps what it did). Returns the rows and how many were filled."""
    if saved is None or not names or existing.empty:
        return existing, 0
    existing = existing.reindex(columns=list(dict.fromkeys([*existing.columns, *names])))
    paths = {job.image.name: job.image for job in jobs}
    planned = {job.key for job in jobs}
    lacking = [row for row in existing.itertuples()
               if row_key(row) in planned and any(pd.isna(getattr(row, n)) for n in names) and saved(row).exists()]
    by_image: dict[str, list] = {}
    for row in lacking:
        by_image.setdefault(row.image, []).append(row)
    with tqdm(total=len(lacking), unit="row", desc=f"{'/'.join(names)} from saved outputs", mininterval=2,
              file=sys.stderr, disable=len(lacking) < 2) as bar:
        for image, rows in by_image.items():
            clean = read_image(paths[image])
            wanted = tuple(n for n in names if any(pd.isna(getattr(r, n)) for r in rows))
            against = scorers(clean, wanted)
            for row in rows:
                out = read_image(saved(row))
                for name in wanted:
                    if pd.isna(getattr(row, name)):
                        existing.loc[row.Index, name] = round(against[name](out), 5)
                bar.update()
            if checkpoint is not None:
                checkpoint(existing)
    return existing, len(lacking)


MIN_SIDE = 32  # LPIPS and DISTS: AlexNet's last layer is empty below about 31 pixels


def fit_to_sizes(names: tuple[str, ...], images: list, explicit: bool) -> tuple[str, ...]:
    """The perceptual metrics this run can record on ``images``: none where an image is under
    ``MIN_SIDE`` pixels a side. Asked for by name (``explicit``), that stops the run, naming
    the images; by default the run goes on without them and says so."""
    from PIL import Image

    if not names:
        return names
    small = []
    for path in images:
        with Image.open(path) as image:
            if min(image.size) < MIN_SIDE:
                small.append(Path(path).name)
    if not small:
        return names
    listed = ", ".join(small[:3]) + (" ..." if len(small) > 3 else "")
    what = "/".join(names)
    if explicit:
        raise SystemExit(f"--metrics {what}: needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels; {listed} "
                         f"{'is' if len(small) == 1 else 'are'} smaller (leave {what} out, or those images)")
    print(f"{what} not recorded in this run: it needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels and "
          f"{listed} {'is' if len(small) == 1 else 'are'} smaller", file=sys.stderr)
    return ()
