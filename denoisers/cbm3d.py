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

A region (``denoise_region``) is filtered with ``REGION_MARGIN`` pixels of context each side,
the window starting on BM3D's grid of reference blocks (``REGION_ALIGN``), with two global
statistics of the whole image: the colour transform's normalisation (each opponent channel's
min and max, which also scale sigma), as ``bm3d_rgb`` takes them; and the range of the channel
blocks are matched on, which sets bm3d's block-matching threshold (``tau_match`` times the
squared range): the window's range is made the whole image's by setting the two window pixels
farthest from the region to the whole image's min and max. What is left (block matching at the
window's edges, the Wiener stage's threshold from its own pilot estimate) makes the region
differ slightly from the whole run's crop, by at most 0.06 dB on 30 Kodak24 crops (docs/region.md).

A region is small, and bm3d spends a fixed ~0.27 s per channel per call (single-threaded,
whatever the image size) besides its multi-threaded work: a region's three channels are
filtered as ``bm3d_rgb`` does (blocks matched on the first, the matches reused for the other
two), but the second and third side by side, each on one thread (bm3d's own thread pool is one
per process and must not be launched twice at once). On a 144x144 window: 1.7 s against 2.0 s.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np

from .base import Denoiser, Readiness, is_grey
from .registry import register

#: Context each side of a region: more than one block-matching reach (bm3d's 39-pixel search
#: window, 19 pixels each way, plus an 8-pixel block). On 30 Kodak24 crops 24 pixels came within
#: 0.06 dB of the whole run (36: 0.02 dB on 15, for 1.5 times the time; docs/region.md).
REGION_MARGIN = 24
#: bm3d's reference blocks are every 3 pixels (profile 'np', both stages); windows starting at
#: multiples of 3 came closer to the whole run than unaligned ones in the same measurement.
REGION_ALIGN = 3


@register
class CBM3D(Denoiser):
    name = "cbm3d"
    label = "CBM3D"
    separate_process = True
    bit_exact = False  # bm3d's multi-threaded aggregation (see the module docstring)
    licence_note = "licence: non-commercial use only (the bm3d package, Tampere University)"
    region_margin = REGION_MARGIN
    region_align = REGION_ALIGN

    def readiness(self, sigma: float | None = None) -> Readiness:
        if importlib.util.find_spec("bm3d") is None:
            return Readiness(False, "the bm3d package is not installed")
        return Readiness(True)

    def warm(self, sigma: float) -> None:
        import bm3d  # noqa: F401  (0.8 s, the first region's otherwise)

    def weights_id(self, sigma: float) -> str:
        return f"bm3d=={importlib.metadata.version('bm3d')}"

    def _denoise(self, noisy: np.ndarray, sigma: float) -> np.ndarray:
        import bm3d  # imported on use: the package is optional where only networks run

        with _POOL_LOCK:
            if is_grey(noisy):
                grey = np.asarray(bm3d.bm3d(noisy[..., 0], sigma / 255.0), dtype=np.float32)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(bm3d.bm3d_rgb(noisy, sigma / 255.0), dtype=np.float32)

    def _denoise_window(self, noisy: np.ndarray, sigma: float, window: tuple[int, int, int, int],
                        box: tuple[int, int, int, int]) -> np.ndarray:
        """``bm3d_rgb`` (or grey BM3D) on ``window`` with the whole image's statistics."""
        import bm3d

        top, left, bottom, right = window
        if (bottom - top, right - left) == noisy.shape[:2]:
            return self._denoise(noisy, sigma)
        if is_grey(noisy):
            grey = _with_range(noisy[top:bottom, left:right, 0], noisy[..., 0], window, box)
            with _POOL_LOCK:
                grey = np.asarray(bm3d.bm3d(grey, sigma / 255.0), dtype=np.float32)
            return np.repeat(grey[..., None], 3, axis=2)
        # bm3d_rgb's steps, with the normalisation (each opponent channel's min and max) from
        # the whole image; it scales a scalar sigma by sqrt(scale) per channel.
        opponent, high, low, scale, _ = bm3d.rgb_to(noisy, "opp")
        part = opponent[top:bottom, left:right].copy()
        part[..., 0] = _with_range(part[..., 0], opponent[..., 0], window, box)  # blocks are matched on it
        filtered = _bm3d_channels(part, (sigma / 255.0) * np.sqrt(scale))
        return np.asarray(bm3d.rgb_to(filtered, "opp", True, high, low)[0], dtype=np.float32)


#: bm3d launches one thread pool per process; two multi-threaded calls at once abort the process.
_POOL_LOCK = threading.Lock()
_CHANNEL_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm3d-channel")


def _bm3d_channels(part: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """``bm3d.bm3d(part, sigmas)`` for an H x W x 3 ``part`` (one sigma per channel): blocks
    matched on channel 0 (bm3d's threads), then channels 1 and 2 with those matches, side by
    side, single-threaded each. Within 2e-6 of bm3d's multichannel call."""
    import bm3d

    with _POOL_LOCK:
        first, matches = bm3d.bm3d(part[..., 0], float(sigmas[0]), blockmatches=(True, True))
    single = bm3d.BM3DProfile()
    single.num_threads = 1
    rest = [_CHANNEL_THREADS.submit(bm3d.bm3d, np.ascontiguousarray(part[..., c]), float(sigmas[c]), single,
                                    bm3d.BM3DStages.ALL_STAGES, matches) for c in (1, 2)]
    return np.stack([first] + [np.asarray(f.result()) for f in rest], axis=2)


@contextlib.contextmanager
def profile_overrides(**settings) -> Iterator[None]:
    """For measurements only (``scripts/``): every bm3d call in the block, whole images and
    regions, in every thread, uses bm3d's default profile with ``settings`` changed (for example
    ``num_threads=1``, ``nf=16``, ``k=2``); the defaults are back afterwards. A setting bm3d's
    profile does not have, or an ``nf`` other than 0 or a power of two (bm3d's compiled code
    aborts the whole process on ``nf=24``), is a ValueError."""
    import bm3d

    unknown = sorted(k for k in settings if not hasattr(bm3d.BM3DProfile, k))
    if unknown:
        raise ValueError(f"bm3d's profile has no setting {', '.join(unknown)}")
    nf = settings.get("nf", 0)
    if not isinstance(nf, int) or nf < 0 or nf & (nf - 1):
        raise ValueError(f"nf must be 0 or a power of two, got {nf!r}")
    before = {k: getattr(bm3d.BM3DProfile, k) for k in settings}
    try:
        for k, v in settings.items():
            setattr(bm3d.BM3DProfile, k, v)
        yield
    finally:
        for k, v in before.items():
            setattr(bm3d.BM3DProfile, k, v)


def _with_range(part: np.ndarray, whole: np.ndarray, window: tuple[int, int, int, int],
                box: tuple[int, int, int, int]) -> np.ndarray:
    """``part`` (the window of ``whole``, H x W) with the two pixels farthest from ``box`` (in
    the window's corner or edge away from it) set to ``whole``'s min and max, so that its range,
    which scales bm3d's block-matching threshold, is the whole image's."""
    top, left, bottom, right = window
    rows = np.arange(top, bottom)
    cols = np.arange(left, right)
    row_gap = np.maximum(np.maximum(box[0] - rows, rows - (box[0] + box[2] - 1)), 0)
    col_gap = np.maximum(np.maximum(box[1] - cols, cols - (box[1] + box[3] - 1)), 0)
    gap = np.maximum(row_gap[:, None], col_gap[None, :])  # [H, W]: distance from the box
    r, c = np.unravel_index(np.argmax(gap), gap.shape)
    beside = c + 1 if c + 1 < part.shape[1] and gap[r, c + 1] > 0 else c - 1
    out = np.array(part, copy=True)
    out[r, c], out[r, beside] = whole.min(), whole.max()
    return out
