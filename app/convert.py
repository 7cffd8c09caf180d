"""Turning an upload (or a Kodak file) into the app's input: checked 8-bit RGB, and sigma checks."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from denoisers.base import SEED_MAX, is_grey
from denoisers.io import MAX_PIXELS as HARD_MAX_PIXELS, ImageReadError, pixels_sha256, read_image, to_float
from denoisers.metrics import add_noise

MIN_SIDE = 32
#: Larger uploads are refused (or downscaled on request): CBM3D takes about 15 s per 0.4 MP on a
#: 2-core CPU (docs/benchmark_denoisers.txt), so 4 MP is already minutes of work.
MAX_PIXELS = 4_000_000
# HARD_MAX_PIXELS (64 MP): never decoded at all, even to downscale (decompression bombs).
#: Uploads over this many megabytes (10^6 bytes) are refused by the server while they arrive,
#: before they fill its disk: a 64 MP image is 192 MB as uncompressed 8-bit RGB (larger as
#: 16-bit or RGBA, which only a compressed file then brings under the limit).
MAX_UPLOAD_MB = 200
SIGMA_MIN, SIGMA_MAX = 5.0, 75.0
#: ``load_image``'s note for an image whose three channels are equal.
GREYSCALE = "greyscale"
#: What the status says of a grey image given synthetic noise (see ``grey_noisy``).
GREY_NOISE = "greyscale: grey noise, replicated to RGB"


def downscale_label(max_pixels: int) -> str:
    """The text of the UI's downscale checkbox, which the over-the-limit message names."""
    return f"Downscale uploads over {max_pixels / 1e6:g} MP"


class InputError(ValueError):
    """A message meant for the user: what is wrong with the input and what to do."""


def load_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS, downscale: bool = False,
               ui_hint: bool = True) -> tuple[np.ndarray, list[str]]:
    """Read an image as HxWx3 uint8 RGB; returns (image, notes).

    Greyscale, palette, 16-bit, CMYK, alpha (on white) and EXIF rotation are handled by
    ``denoisers.io.read_image``. Images over ``max_pixels`` are refused, or downscaled
    (Lanczos) when ``downscale`` is true. Images under ``MIN_SIDE`` pixels on a side are
    refused. ``notes`` says, in a few words each, every conversion that changed what the file
    holds: alpha flattened, 16-bit reduced, EXIF turn, downscale, and ``GREYSCALE`` for an
    image whose three channels are equal (however the file stores it). Raises ``InputError``
    with a readable message.
    """
    notes: list[str] = []
    try:
        image = read_image(source, max_pixels=HARD_MAX_PIXELS if downscale else max_pixels, notes=notes)
    except ImageReadError as exc:
        msg = str(exc)
        if "over the limit" in msg and not downscale:  # the API has no such box: resize first
            msg += (f" (tick '{downscale_label(max_pixels)}' and upload it again, or resize it yourself)" if ui_hint
                    else " (resize it first)")
        raise InputError(_short(msg, source)) from exc
    if is_grey(image):
        notes.append(GREYSCALE)
    h, w = image.shape[:2]
    if h * w > max_pixels:
        scale = math.sqrt(max_pixels / (h * w))
        nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.LANCZOS))
        notes.append(f"downscaled from {w}x{h} to {nw}x{nh} to stay under {max_pixels / 1e6:g} MP")
        h, w = nh, nw
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"the image is {w}x{h}; it must be at least {MIN_SIDE} pixels on each side")
    return image, notes


def grey_noisy(clean_u8: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """The protocol's noisy input for a grey image, kept grey: the noise is drawn as the
    protocol draws it (``add_noise``, same seed) for one channel, and that one noisy channel is
    replicated to RGB, so that the three channels carry the same noise. Not clipped."""
    if clean_u8.ndim != 3 or clean_u8.shape[-1] != 3 or not is_grey(clean_u8):
        raise ValueError(f"grey_noisy takes an HxWx3 image whose three channels are equal; got one of "
                         f"shape {clean_u8.shape}" + (" with unequal channels" if clean_u8.shape[-1:] == (3,) else ""))
    one = add_noise(to_float(clean_u8[..., :1]), sigma, seed)
    return np.repeat(one, 3, axis=2)


def _short(msg: str, source: object) -> str:
    # Do not echo server-side temp paths back to the user.
    if isinstance(source, (str, Path)):
        msg = msg.replace(str(source), Path(source).name)
    return msg


def image_id(image: np.ndarray) -> str:
    """sha256 of the decoded pixels and shape: the cache key's image part."""
    return pixels_sha256(image)


def shown(value: object, limit: int = 40, quoted: bool = True) -> str:
    """``repr(value)`` (``str`` unless ``quoted``) for a message, cut to ``limit`` characters:
    a message never echoes a long value back whole."""
    text = repr(value) if quoted else str(value)
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def check_sigma(sigma: object) -> float:
    """Sigma on the 0-255 scale, within [SIGMA_MIN, SIGMA_MAX]; raises ``InputError``."""
    try:
        value = float(sigma)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer over 1e308
        raise InputError(f"sigma must be a number between {SIGMA_MIN:g} and {SIGMA_MAX:g}, "
                         f"got {shown(sigma)}") from None
    if not (SIGMA_MIN <= value <= SIGMA_MAX):
        raise InputError(f"sigma must be between {SIGMA_MIN:g} and {SIGMA_MAX:g} (0-255 scale), got {shown(value)}")
    return value


def check_seed(seed: object) -> int:
    """A whole-number seed from 0 to ``SEED_MAX``, taken exactly (a float above 2**53 may
    already have been rounded on its way, so it cannot name a seed); raises ``InputError``."""
    wrong = InputError(f"seed must be a whole number from 0 to {SEED_MAX}, got {shown(seed)}")
    if isinstance(seed, bool) or (isinstance(seed, str) and not seed.isascii()):
        raise wrong
    if isinstance(seed, int):
        value = seed
    elif isinstance(seed, str) and seed.strip().isdigit():  # ASCII digits only (checked above)
        if len(seed.strip()) > len(str(SEED_MAX)):
            raise wrong
        value = int(seed.strip())
    else:
        try:
            number = float(seed)
        except (TypeError, ValueError, OverflowError):
            raise wrong from None
        if not number.is_integer():
            raise wrong
        value = int(number)
    if not 0 <= value <= SEED_MAX:
        raise wrong
    return value
