"""Which rows of an existing ``results.csv`` a new evaluation keeps, and which jobs remain.

An evaluation resumes: rows already computed for this run's images, methods, sigmas and seed,
with the same weights, are kept and not recomputed. ``resume`` decides, in one place, which
existing rows can stand:

- rows of an image of this run's name but other pixels (another folder's ``img.png``, or an
  edited file) go: a name is not an identity;
- rows of a (method, sigma) evaluated now with other weights go: they would be averaged in;
- rows of this run that lack a measure (written before it existed) are recomputed;
- with ``--save-images``, rows of this run whose PNG is not there are recomputed;
- rows written before ``clean_sha256`` existed get this run's digest for their image.

Rows of other images, methods, sigmas or seeds are kept as they are: the folder's table sums up
all of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from . import report

Key = tuple[str, str, float, int, str]  # (image name, method, sigma, seed, weights)


def row_key(row) -> Key:
    return (row.image, row.method, float(row.sigma), int(row.seed), str(row.weights))


@dataclass
class Resumed:
    rows: pd.DataFrame  # the rows kept, in the file's columns
    notes: list[str] = field(default_factory=list)  # what was dropped or will be redone, and why
    changed: bool = False  # whether the file on disk must be rewritten to hold ``rows``

    def pending(self, jobs: Iterable) -> list:
        """The jobs (anything with a ``key``) that no kept row answers."""
        done = {row_key(r) for r in self.rows.itertuples()}
        return [job for job in jobs if job.key not in done]


def _mask(results: pd.DataFrame, test: Callable) -> pd.Series:
    if results.empty:
        return pd.Series(False, index=results.index, dtype=bool)
    return results.apply(test, axis=1).astype(bool)


def _digest_column(results: pd.DataFrame) -> pd.Series:
    if "clean_sha256" not in results.columns:
        return pd.Series(None, index=results.index, dtype=object)
    return results["clean_sha256"].astype(object)  # all-NaN (float) in an older file


def resume(existing: pd.DataFrame, jobs: list, digests: dict[str, str],
           measures: Iterable[str] = report.MEASURES,
           saved_image: Callable[[object], Path] | None = None) -> Resumed:
    """The rows of ``existing`` that this run keeps (see the module's text).

    ``jobs`` is the whole run (each with ``key``, ``method``, ``sigma``, ``weights``),
    ``digests`` each image's ``clean_sha256``, ``measures`` the columns every row of the run
    must have, ``saved_image(row)`` the PNG a row's output must have (``--save-images``)."""
    notes: list[str] = []
    digest = _digest_column(existing)
    want = existing["image"].map(digests) if len(existing) else pd.Series(dtype=object)
    foreign = (want.notna() & digest.notna() & (digest != want)).astype(bool) if len(existing) else want.astype(bool)
    if foreign.any():
        notes.append(f"dropping {int(foreign.sum())} rows computed on other images of the same names "
                     f"({', '.join(sorted(set(existing.loc[foreign, 'image'])))})")
    kept = existing[~foreign]

    current = {(j.method, float(j.sigma)): j.weights for j in jobs}
    stale = _mask(kept, lambda r: current.get((r.method, float(r.sigma)), str(r.weights)) != str(r.weights))
    if stale.any():
        notes.append(f"dropping {int(stale.sum())} rows computed with other weights")
    kept = kept[~stale]

    planned = {job.key for job in jobs}
    in_run = _mask(kept, lambda r: row_key(r) in planned)
    measures = list(measures)
    lacking = in_run & kept.reindex(columns=measures).isna().any(axis=1) if measures else in_run & False
    if lacking.any():
        notes.append(f"recomputing {int(lacking.sum())} rows that lack {'/'.join(measures)}")
    kept, in_run = kept[~lacking], in_run[~lacking]

    if saved_image is not None:
        unsaved = in_run & _mask(kept, lambda r: not saved_image(r).exists())
        if unsaved.any():
            notes.append(f"recomputing {int(unsaved.sum())} rows to save their images")
        kept = kept[~unsaved]

    kept_digest = _digest_column(kept)
    filled = kept_digest.where(kept_digest.notna(), kept["image"].map(digests))
    kept = kept.assign(clean_sha256=filled).reindex(columns=report.FILE_COLUMNS)
    changed = (len(kept) < len(existing) or list(existing.columns) != report.FILE_COLUMNS
               or bool((kept_digest.isna() & filled.notna()).any()))
    return Resumed(kept, notes, changed)
