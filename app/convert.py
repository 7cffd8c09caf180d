"""Turning an upload (or a Kodak file) into the app's input: checked 8-bit RGB, and sigma checks."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from PIL import Image

from denoisers.io import ImageReadError, read_image

MIN_SIDE = 32
#: Larger uploads are refused (or downscaled on request): CBM3D takes ~40 s per 0.4 MP on a
#: 2-core CPU, so 4 MP is already minutes of work.
MAX_PIXELS = 4_000_000
#: Never decoded at all, even to downscale (decompression bombs).
HARD_MAX_PIXELS = 64_000_000
SIGMA_MIN, SIGMA_MAX = 5.0, 75.0


def downscale_label(max_pixels: int) -> str:
    """The text of the UI's downscale checkbox, which the over-the-limit message names."""
    return f"Downscale uploads over {max_pixels / 1e6:g} MP"


class InputError(ValueError):
    """A message meant for the user: what is wrong with the input and what to do."""


def load_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS, downscale: bool = False) -> tuple[np.ndarray, str]:
    """Read an image as HxWx3 uint8 RGB; returns (image, note).

    Greyscale, palette, 16-bit, CMYK, alpha (on white) and EXIF rotation are handled by
    ``denoisers.io.read_image``. Images over ``max_pixels`` are refused, or downscaled
    (Lanczos) when ``downscale`` is true; ``note`` then says so. Images under ``MIN_SIDE``
    pixels on a side are refused. Raises ``InputError`` with a readable message.
    """
    try:
        image = read_image(source, max_pixels=HARD_MAX_PIXELS if downscale else max_pixels)
    except ImageReadError as exc:
        msg = str(exc)
        if "over the limit" in msg and not downscale:
            msg += f" (tick '{downscale_label(max_pixels)}' or resize it yourself)"
        raise InputError(_short(msg, source)) from exc
    note = ""
    h, w = image.shape[:2]
    if h * w > max_pixels:
        scale = math.sqrt(max_pixels / (h * w))
        nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.LANCZOS))
        note = f"downscaled from {w}x{h} to {nw}x{nh} to stay under {max_pixels / 1e6:g} MP"
        h, w = nh, nw
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"the image is {w}x{h}; it must be at least {MIN_SIDE} pixels on each side")
    return image, note


def _short(msg: str, source: object) -> str:
    # Do not echo server-side temp paths back to the user.
    if isinstance(source, (str, Path)):
        msg = msg.replace(str(source), Path(source).name)
    return msg


def image_id(image: np.ndarray) -> str:
    """sha256 of the decoded pixels and shape: the cache key's image part."""
    digest = hashlib.sha256(f"{image.shape}|{image.dtype}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def check_sigma(sigma: object) -> float:
    """Sigma on the 0-255 scale, within [SIGMA_MIN, SIGMA_MAX]; raises ``InputError``."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"sigma must be a number between {SIGMA_MIN:g} and {SIGMA_MAX:g}, got {sigma!r}") from None
    if not (SIGMA_MIN <= value <= SIGMA_MAX):
        raise InputError(f"sigma must be between {SIGMA_MIN:g} and {SIGMA_MAX:g} (0-255 scale), got {value:g}")
    return value


def check_seed(seed: object) -> int:
    """A non-negative integer seed; raises ``InputError``."""
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed must be a whole number, got {seed!r}") from None
    if not value.is_integer() or value < 0 or value >= 2**63:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(value)


def _details(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The finest db2 wavelet details (horizontal, vertical, diagonal). For white Gaussian
    noise of deviation sigma each is Gaussian with deviation sigma, and the three are independent."""
    import pywt

    return pywt.dwt2(channel, "db2", mode="symmetric")[1]


def _mad_sigma(coefficients: np.ndarray) -> float:
    return float(np.median(np.abs(coefficients))) / 0.6745


def estimate_noise_sigma(image: np.ndarray, rounds: int = 3) -> float:
    """Gaussian noise sigma of an 8-bit image on the 0-255 scale.

    The classic wavelet estimate (median absolute diagonal detail / 0.6745 per channel, then
    the mean) is biased both ways: it reads low where the noise was clipped at 0 or 255 (near
    black or white an 8-bit value cannot swing both ways; a saturated area has no noise left),
    and high on texture, which leaks into the diagonal details. So the median is taken only
    over diagonal details (a) whose neighbourhood mean lies at least 2 sigma from both bounds
    (1.5, then 1 sigma when under 2 % of the image is left) and (b) where the horizontal and
    vertical details are no stronger than noise of that sigma would make them (1.5x; they are
    independent of the diagonal ones under white noise, so this adds no bias). Sigma starts
    from the whole-image estimate and is refined ``rounds`` times. A channel left with under
    2 % of its area keeps its whole-image value. scripts/benchmark_noise_estimate.py measures it."""
    from scipy import ndimage

    pixels = image.astype(np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = [pixels[..., c] for c in range(pixels.shape[-1])]
    details = [_details(c) for c in channels]
    whole = [_mad_sigma(hh) for _, _, hh in details]
    means = [ndimage.uniform_filter(c, 7) for c in channels]
    energies = [ndimage.uniform_filter((lh ** 2 + hl ** 2) / 2, 5) for lh, hl, _ in details]
    sigma = float(np.mean(whole))
    for _ in range(rounds):
        per_channel = []
        for mean, energy, (_, _, hh), fallback in zip(means, energies, details, whole):
            value = fallback
            flat = energy < (1.5 * sigma) ** 2
            for band in (2.0, 1.5, 1.0):
                inside = (mean > band * sigma) & (mean < 255.0 - band * sigma)
                inside = ndimage.binary_erosion(inside, iterations=2)
                # Detail (i, j) covers the pixels near (2i, 2j); db2 gives one extra row/column.
                keep = np.zeros(hh.shape, bool)
                half = inside[::2, ::2][:hh.shape[0], :hh.shape[1]]
                keep[:half.shape[0], :half.shape[1]] = half
                chosen = next((k for k in (keep & flat, keep) if k.mean() >= 0.02), None)
                if chosen is not None:
                    value = _mad_sigma(hh[chosen])
                    break
            per_channel.append(value)
        sigma = float(np.mean(per_channel))
    return sigma
