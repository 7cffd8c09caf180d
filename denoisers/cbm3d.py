"""CBM3D: colour BM3D from the ``bm3d`` package (Tampere University; non-commercial licence).

``bm3d.bm3d_rgb`` filters in a luminance-chrominance space with grouping on luminance; plain
``bm3d.bm3d`` on the RGB array loses about 1.5 dB. It is compiled code taking tens of seconds
per Kodak image, so callers should run it in its own process (``separate_process``; see
``denoisers.parallel``). bm3d's default is multi-threaded, faster than its single-threaded
mode on more than one core; its aggregation then sums in a varying order, so two runs agree
closely (see ``bit_exact``) rather than bit for bit.

A grey input (three equal channels: a grey photo's noise is the same in each) goes to plain
BM3D on that one channel: ``bm3d_rgb`` assumes independent noise per channel, and it divides
by the range of each opponent colour channel, which is zero without colour (all NaN).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np

from .base import Denoiser, Readiness, is_grey
from .registry import register


@register
class CBM3D(Denoiser):
    name = "cbm3d"
    label = "CBM3D"
    separate_process = True
    bit_exact = False  # bm3d's multi-threaded aggregation (see the module docstring)

    def readiness(self, sigma: float | None = None) -> Readiness:
        if importlib.util.find_spec("bm3d") is None:
            return Readiness(False, "the bm3d package is not installed")
        return Readiness(True)

    def weights_id(self, sigma: float) -> str:
        return f"bm3d=={importlib.metadata.version('bm3d')}"

    def _denoise(self, noisy: np.ndarray, sigma: float) -> np.ndarray:
        import bm3d  # imported on use: the package is optional where only networks run

        if is_grey(noisy):
            grey = np.asarray(bm3d.bm3d(noisy[..., 0], sigma / 255.0), dtype=np.float32)
            return np.repeat(grey[..., None], 3, axis=2)
        return np.asarray(bm3d.bm3d_rgb(noisy, sigma / 255.0), dtype=np.float32)
