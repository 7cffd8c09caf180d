"""How long each method takes on a whole image, for ordering the work (fastest first) and for
the run-time estimate shown before a comparison. Pure functions over one measured table.

``SECONDS_PER_MP`` is each method's whole-image time alone, divided by the image's megapixels,
measured on this project's 2-core CPU with ``python scripts/benchmark_region.py`` (the "whole
image" column over 768x512 = 0.393 MP), default precision, in one run, the CPU quiet.
Each method alone already uses both cores, so methods run together take about the sum of
their times (measured: DnCNN, FFDNet and CBM3D cold through ``/compare`` took 0.98 x the sum
of their single-method times, docs/benchmark_app.txt); the estimate is that sum.
"""
from __future__ import annotations

from typing import Callable

# From docs/benchmark_region.txt: kodim01 (768x512 = 0.393 MP), sigma 25, on this 2-core CPU
# while quiet (load average 2.0 at the start, the previous benchmark just ended), each method's
# whole image alone, divided by 0.393 MP. (An earlier run at load 0.7 gave 8-11 % less; one on
# kodim05 with the machine shared by other jobs, load 2.6-8.7, gave the same order at 2.5-3.5x
# these.) Re-measure on the serving machine and replace.
SECONDS_PER_MP: dict[str, float] = {
    "ffdnet": 2.57,  # 1.01 s for kodim01
    "dncnn": 8.75,  # 3.44 s
    "idresnet": 18.9,  # 7.45 s
    "idgan": 38.7,  # 15.21 s
    "cbm3d": 70.9,  # 27.89 s
}
#: A method with no figure (a plugin): placed after the measured networks, before CBM3D.
UNKNOWN_SECONDS_PER_MP = 50.0


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
