"""Error maps |output - ground truth| as heatmaps on one shared colour scale."""
from __future__ import annotations

import numpy as np

# Key points of matplotlib's "inferno" colour map (perceptually uniform, dark = small error).
_INFERNO = np.array([
    [0, 0, 4], [22, 11, 57], [66, 10, 104], [106, 23, 110], [147, 38, 103], [188, 55, 84],
    [221, 81, 58], [243, 120, 25], [252, 165, 10], [246, 215, 70], [252, 255, 164],
], dtype=np.float64)


def abs_error(clean_u8: np.ndarray, output_u8: np.ndarray) -> np.ndarray:
    """Per-pixel mean over RGB of |output - clean|, on the 0-255 scale (HxW float32)."""
    diff = np.abs(output_u8.astype(np.int16) - clean_u8.astype(np.int16))
    return diff.mean(axis=2).astype(np.float32)


def shared_scale(errors: list[np.ndarray], percentile: float = 99.5) -> float:
    """One top value for every map: the largest ``percentile`` over all maps (at least 1)."""
    if not errors:
        return 1.0
    top = max(float(np.percentile(e, percentile)) for e in errors)
    return float(max(1.0, np.ceil(top)))


def colourize(error: np.ndarray, vmax: float) -> np.ndarray:
    """HxW error on 0..vmax (values above saturate) -> HxWx3 uint8 via the inferno map."""
    t = np.clip(error.astype(np.float64) / float(vmax), 0.0, 1.0) * (len(_INFERNO) - 1)
    lo = np.floor(t).astype(np.int64)
    hi = np.minimum(lo + 1, len(_INFERNO) - 1)
    frac = (t - lo)[..., None]
    rgb = _INFERNO[lo] * (1 - frac) + _INFERNO[hi] * frac
    return np.round(rgb).astype(np.uint8)


def colour_bar(vmax: float, width: int = 512, height: int = 24) -> np.ndarray:
    """A horizontal legend strip for 0..vmax (left to right)."""
    ramp = np.linspace(0.0, vmax, width, dtype=np.float64)[None, :].repeat(height, axis=0)
    return colourize(ramp, vmax)


def legend(vmax: float, width: int = 440, font_size: int = 14) -> np.ndarray:
    """The colour bar with its numbers and meaning drawn in, readable at any display width
    (a label laid over a thin strip hid both)."""
    from PIL import Image, ImageDraw

    from .export import caption_font

    font = caption_font(font_size)
    pad, bar_h, line = 8, 22, font_size + 6
    canvas = Image.new("RGB", (width, bar_h + 3 * line + 2 * pad), (255, 255, 255))
    canvas.paste(Image.fromarray(colour_bar(vmax, width - 2 * pad, bar_h)), (pad, pad))
    draw = ImageDraw.Draw(canvas)
    y = pad + bar_h + 3
    for frac, anchor in ((0.0, "la"), (0.5, "ma"), (1.0, "ra")):
        draw.text((pad + frac * (width - 2 * pad), y), f"{vmax * frac:g}", fill=(0, 0, 0), font=font, anchor=anchor)
    for k, text in enumerate(("|output - ground truth| in grey levels (mean over RGB)",
                              "one scale for every error map")):
        draw.text((width // 2, y + (k + 1) * line), text, fill=(60, 60, 60), font=font, anchor="ma")
    return np.asarray(canvas)
