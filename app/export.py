"""Exports: a paper-style figure (ground truth with the crop box, then every zoomed crop
labelled with its PSNR) and a zip of the full-resolution outputs with a CSV of the numbers."""
from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import crops
from .views import Comparison, fmt_psnr, metrics_rows, panels

_BG = (255, 255, 255)
_FG = (0, 0, 0)


def caption_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def reference_caption(comparison: Comparison, title: str) -> str:
    """The first tile's caption names the image and the noise, so a figure stands on its own.
    Plain ASCII: Pillow's built-in font has no Greek letters."""
    if comparison.seed is None:
        noise = f"sigma {comparison.sigma:g} used"
    else:
        noise = f"sigma {comparison.sigma:g}, seed {comparison.seed}"
    return f"{title} ({comparison.source}, {noise})"


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` cut with an ellipsis from the middle until it is at most ``width`` px wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    keep = len(text)
    while keep > 2:
        keep -= 1
        head = (keep + 1) // 2
        short = text[:head] + "..." + text[len(text) - (keep - head):]
        if draw.textlength(short, font=font) <= width:
            return short
    return text[:1]


def figure(comparison: Comparison, box: crops.Box, tile: int = 256) -> np.ndarray:
    """One row: the reference image (ground truth, or the noisy input) scaled to the crops'
    height with the crop box, then each panel's crop magnified by the whole number nearest to
    ``tile`` / crop size (nearest neighbour, so every pixel is an even square block), captioned
    with its name and PSNR. Returns HxWx3 uint8."""
    items = panels(comparison)
    ref = items[0]
    factor = max(1, round(tile / max(box.width, box.height)))
    tile_w, tile_h = box.width * factor, box.height * factor
    font = caption_font(max(12, tile_h // 14))
    caption_h = max(int(tile_h * 0.16), 18)
    ref_img = crops.draw_box(ref.image, box, width=max(2, round(ref.image.shape[0] / tile_h * 2)))
    scale = tile_h / ref_img.shape[0]
    ref_w = max(1, round(ref_img.shape[1] * scale))
    ref_pil = Image.fromarray(ref_img).resize((ref_w, tile_h), Image.Resampling.LANCZOS)
    shown = [p for p in items if p.image is not None]
    gap = 6
    width = ref_w + len(shown) * (tile_w + gap) + gap
    canvas = Image.new("RGB", (width, tile_h + caption_h), _BG)
    draw = ImageDraw.Draw(canvas)
    canvas.paste(ref_pil, (0, 0))
    draw.text((4, tile_h + 4), _fit(draw, reference_caption(comparison, ref.title), font, ref_w + gap - 8), fill=_FG,
              font=font)
    x = ref_w + gap
    for p in shown:
        canvas.paste(Image.fromarray(crops.zoomed_crop(p.image, box, factor)), (x, 0))
        result = comparison.results.get(p.key)
        score = comparison.noisy.psnr if p.key == "noisy" else (result.psnr if result else None)
        text = p.title if score is None else f"{p.title} {fmt_psnr(score)}"
        draw.text((x + 2, tile_h + 4), _fit(draw, text, font, tile_w - 2), fill=_FG, font=font)
        x += tile_w + gap
    return np.asarray(canvas)


def png_bytes(image: np.ndarray, level: int = 3) -> bytes:
    """Lossless PNG; ``level`` 3 is several times faster than Pillow's default 6 on smooth
    images for a few per cent more bytes, 1 faster again (the panels, re-sent on every move)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def png_file(folder, name: str, image: np.ndarray | None) -> str | None:
    """``image`` written to ``folder/name`` as a fast lossless PNG; its path (None for None)."""
    if image is None:
        return None
    path = folder / name
    path.write_bytes(png_bytes(image, level=1))
    return str(path)


def csv_text(comparison: Comparison) -> str:
    rows = metrics_rows(comparison)
    buf = io.StringIO()
    fields = ["image", "method", "sigma", "seed", "psnr", "ssim", "detail", "seconds", "cached", "error",
              "weights", "numerics", "note"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return buf.getvalue()


def view_stem(comparison: Comparison) -> str:
    """What a file of this view is named after: ``kodim05_sigma25_seed0`` (no seed for an input
    that came noisy)."""
    return (f"{comparison.source}_sigma{comparison.sigma:g}"
            + ("" if comparison.seed is None else f"_seed{comparison.seed}"))


def zip_bytes(comparison: Comparison) -> bytes:
    """PNG of every full-resolution image (ground truth, noisy, each method) and results.csv,
    in a folder named after the view, so that two archives unpacked side by side keep apart."""
    folder = view_stem(comparison)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for p in panels(comparison):
            if p.image is not None:
                zf.writestr(f"{folder}/{p.key}.png", png_bytes(p.image))
        zf.writestr(f"{folder}/results.csv", csv_text(comparison))
    return buf.getvalue()
