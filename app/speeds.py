"""How long each method takes on a whole image, for ordering the work (fastest first) and for
the run-time estimate shown before a comparison. Pure functions over one measured table.

``SECONDS_PER_MP`` is each method's whole-image time alone, divided by the image's megapixels,
measured on this project's 2-core CPU with ``python scripts/benchmark_region.py --image
kodim05.png --repeats 1`` (the "whole image" column over 768x512 = 0.393 MP), default
precision, in one run; see the comment on the table for the date and the machine's load.
Each method alone already uses both cores, so methods run together take about the sum of
their times (measured: the five cold through ``/compare`` took 0.9-1.0 x the sum of the
single-method times, docs/benchmark_app.txt and issue 24); the estimate is that sum.
"""
from __future__ import annotations

from typing import Callable

# Measured 2026-12-06 02:50-02:54 UTC on kodim05 (768x512), sigma 25, warm models. The machine
# was shared with other jobs (load average 2.6 at the start, 8.7 at the end, on 2 cores), so
# these are about 2.5-3.5x a quiet CPU's (docs/benchmark_region.txt, kodim01 on a quiet CPU:
# FFDNet 0.92, DnCNN 3.08, IDResNet 6.83, IDGAN 13.49, CBM3D 24.91 s): the order holds, the
# estimate reads high on a quiet machine. Re-measure on the serving machine and replace.
SECONDS_PER_MP: dict[str, float] = {
    "ffdnet": 9.0,  # 3.54 s for kodim05
    "dncnn": 34.5,  # 13.58 s
    "idresnet": 60.0,  # 23.61 s
    "idgan": 91.2,  # 35.87 s
    "cbm3d": 169.4,  # 66.62 s (in one process; the app's worker process is similar)
}
#: A method with no figure (a plugin): placed after the measured networks, before CBM3D.
UNKNOWN_SECONDS_PER_MP = 100.0


def seconds_per_mp(name: str) -> float:
    """The table's figure for ``name``; a dial setting (``idgan@0.3``) is its family's network."""
    return SECONDS_PER_MP.get(name, SECONDS_PER_MP.get(name.partition("@")[0], UNKNOWN_SECONDS_PER_MP))


def megapixels(shape: tuple[int, ...]) -> float:
    return shape[0] * shape[1] / 1e6


def estimate(name: str, shape: tuple[int, ...]) -> float:
    """Seconds ``name`` takes alone on an image of ``shape`` (H, W, ...)."""
    return seconds_per_mp(name) * megapixels(shape)


def fastest_first(names: list[str]) -> list[str]:
    """``names`` ordered by the table, fastest first (ties keep their order)."""
    return sorted(names, key=seconds_per_mp)


def _seconds(value: float, about: str = "") -> str:
    return "<1 s" if value < 1 else f"{about}{value:.0f} s"


def estimate_text(estimates: dict[str, float], label: Callable[[str], str] | None = None) -> str:
    """One line for the status, from ``Engine.estimate``'s figures (0 = cached): "about 67 s:
    CBM3D ~48 s, IDGAN ~19 s, FFDNet <1 s; cached: DnCNN". Slowest first; the total is the sum."""
    if label is None:
        from denoisers.registry import label
    if not estimates:
        return "no methods chosen"
    work = sorted(((s, n) for n, s in estimates.items() if s > 0), reverse=True)
    cached = [label(n) for n, s in estimates.items() if s <= 0]
    if not work:
        return "all cached: ready at once"
    text = f"about {_seconds(sum(s for s, _ in work))}: " + ", ".join(f"{label(n)} {_seconds(s, '~')}" for s, n in work)
    return text + (f"; cached: {', '.join(cached)}" if cached else "")
