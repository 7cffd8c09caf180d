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

from . import metrics
from .fetch import FetchError
from .io import read_image
from .resume import row_key
from .weights import WeightsError

METRICS = ("psnr", "ssim", "detail", *metrics.PERCEPTUAL)
DEFAULT_METRICS = "psnr,ssim,detail,lpips"


def parse_metrics(text: str) -> tuple[str, ...]:
    """The perceptual metrics that ``--metrics`` asks for, from a list such as
    ``psnr,ssim,detail,lpips,dists``; PSNR, SSIM and detail are recorded whatever it says."""
    asked = [m.strip().lower() for m in text.replace(" ", ",").split(",") if m.strip()]
    unknown = [m for m in asked if m not in METRICS]
    if unknown or not asked:
        raise ValueError(f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(METRICS)} "
                         "(psnr, ssim and detail are always recorded)")
    return tuple(m for m in metrics.PERCEPTUAL if m in asked)


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


def score_missing(table: pd.DataFrame, index: pd.Index, names: tuple[str, ...], clean_of: Callable[[str], Path],
                  output_of: Callable[[pd.Series], Path], after_image: Callable[[pd.DataFrame], None] | None = None,
                  bar: tqdm | None = None) -> None:
    """Score in ``table`` (in place) the metrics ``names`` that its rows ``index`` lack, from
    their outputs (``output_of(row)``) against ``clean_of(image)``, image by image: each clean
    image is read once and its DISTS features computed once (``scorers``). After each image
    ``after_image`` gets the table (to write it, so that an interruption keeps what was done)."""
    for image, rows in table.loc[index].groupby("image", sort=False):
        wanted = tuple(n for n in names if rows[n].isna().any())
        against = scorers(read_image(clean_of(image)), wanted)
        for at, row in rows.iterrows():
            out = read_image(output_of(row))
            for name in wanted:
                if pd.isna(row[name]):
                    table.loc[at, name] = round(against[name](out), 5)
            if bar is not None:
                bar.update()
        if after_image is not None:
            after_image(table)


def fill_from_saved(existing: pd.DataFrame, jobs: list, names: tuple[str, ...], saved: Callable | None,
                    checkpoint: Callable[[pd.DataFrame], None] | None = None) -> tuple[pd.DataFrame, int]:
    """Rows of this run that lack an asked perceptual metric but whose output was kept by
    ``--save-images`` get it from that PNG: adding a metric to a finished run computes only the
    metric, not the method again, and only the metrics a row lacks. After each image
    ``checkpoint`` gets the rows so far. Returns the rows and how many were filled."""
    if saved is None or not names or existing.empty:
        return existing, 0
    existing = existing.reindex(columns=list(dict.fromkeys([*existing.columns, *names])))
    paths = {job.image.name: job.image for job in jobs}
    planned = {job.key for job in jobs}
    lacking = pd.Index([row.Index for row in existing.itertuples() if row_key(row) in planned
                        and any(pd.isna(getattr(row, n)) for n in names) and saved(row).exists()])
    with tqdm(total=len(lacking), unit="row", desc=f"{'/'.join(names)} from saved outputs", mininterval=2,
              file=sys.stderr, disable=len(lacking) < 2) as bar:
        score_missing(existing, lacking, names, paths.__getitem__, saved, checkpoint, bar)
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
