"""Reading images into the project's one array convention, and the array <-> tensor helpers.

Arrays are HxWx3 (RGB). ``uint8`` arrays are 0-255; float32 arrays are on the [0, 1] scale.
Tensors inside torch code are [B, C, H, W] float32 on the [0, 1] scale.
"""
from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import atomic_write

# File endings of the image folders that evaluation and training read.
IMAGE_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp"})

# Decompression bombs are refused by our own pixel limit (see ``read_image``), not by Pillow's.
Image.MAX_IMAGE_PIXELS = None
#: The largest image any reader here decodes (a small file can declare a huge image).
MAX_PIXELS = 64_000_000


class ImageReadError(ValueError):
    """The file is not an image we can read (corrupted, truncated, unknown format)."""


def _to_rgb(img: Image.Image, name: str = "image", fmt: str | None = None,
            notes: list[str] | None = None) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB; alpha is composited on white. Pixel types whose
    range the file does not define (32-bit integers, floats outside 0-1) are refused rather
    than guessed: a guess would show a wrong image and score it. What changed the pixels is
    added to ``notes`` (see ``read_image``)."""
    notes = [] if notes is None else notes
    # Pillow gives 16-bit greyscale PNG and PGM files mode "I" (or "I;16*"); a 32-bit integer
    # TIFF is "I" too, with no range of its own.
    if img.mode.startswith("I;16") or (img.mode == "I" and (fmt or img.format) in ("PNG", "PPM")):
        arr = np.asarray(img, dtype=np.float64)
        grey = np.round(np.clip(arr / 65535.0, 0, 1) * 255).astype(np.uint8)
        notes.append(SIXTEEN_BIT)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "I":
        raise ImageReadError(f"{name} holds 32-bit integers, whose range the file does not say; "
                             "save it as an 8- or 16-bit image")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all() or arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
            raise ImageReadError(f"{name} holds floating-point values from {np.nanmin(arr):g} to "
                                 f"{np.nanmax(arr):g}; float images are read on the 0-1 scale only: "
                                 "save it as an 8- or 16-bit image")
        grey = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
        notes.append("floating-point values rounded to 8-bit")
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:  # an opaque alpha channel changes nothing
            notes.append(ALPHA_FLATTENED)
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    elif img.mode == "CMYK":
        notes.append("CMYK converted to RGB")
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def output_folder_problem(folder: Path) -> str | None:
    """Make ``folder`` (and its parents) if needed; None when it is a writable folder, else why
    not, for a command line to refuse before it starts any work."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {folder} ({exc.strerror or exc})"
    if not os.access(folder, os.W_OK):
        return f"{folder} is not writable"
    return None


def read_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS,
               notes: list[str] | None = None) -> np.ndarray:
    """Read an image file (path or bytes) as HxWx3 uint8 RGB, with EXIF orientation applied.

    Greyscale, palette, CMYK, 16-bit and alpha images are converted (alpha composited on
    white). 16-bit greyscale is rounded to 8 bits; 16-bit RGB PNGs come from Pillow already cut
    to their high byte (``v >> 8``, one level below rounding for a quarter of the values).
    Images over ``max_pixels`` (64 MP unless given) are refused before they are decoded.
    A list given as ``notes`` gets a short note for each conversion that changed the pixels
    (``ALPHA_FLATTENED``, ``SIXTEEN_BIT``, the EXIF turn, ...). An EXIF block too damaged to
    read is ignored (the image is kept as stored) rather than making the image unreadable.
    Raises ``ImageReadError`` with a readable message for anything that is not a usable image.
    """
    name = "image" if isinstance(source, bytes) else str(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as exc:
        raise ImageReadError(f"cannot open {name}: {exc.strerror or exc}") from exc
    with fp:
        try:
            img = Image.open(fp)
            if img.width * img.height > max_pixels:
                w, h = img.size
                if _header_orientation(img) in (5, 6, 7, 8):  # stored turned a quarter: shown h x w
                    w, h = h, w
                size, limit = megapixels(w * h, max_pixels)
                raise ImageReadError(f"{name} is {w}x{h} = {size} MP, over the limit of {limit} MP")
            if img.format in ("GIF", "PNG", "WEBP") and getattr(img, "is_animated", False):
                raise ImageReadError(f"{name} is an animation ({img.n_frames} frames); save the frame to "
                                     "denoise as a still image")
            notes = [] if notes is None else notes
            if img.mode in ("RGB", "RGBA") and any(";16" in str(tile.args) for tile in img.tile):
                notes.append(SIXTEEN_BIT)  # Pillow keeps the high byte of 16-bit colour (PNG, TIFF)
            img.load()
            fmt = img.format  # the transposed copy has none
            img = _upright(img, notes)
            return _to_rgb(img, name, fmt, notes)
        except ImageReadError:
            raise
        except UnidentifiedImageError:
            fp.seek(0)
            head = fp.read(4)
            if not head:
                raise ImageReadError(f"{name} is an empty file (0 bytes)") from None
            if head in (b"II*\x00", b"MM\x00*"):  # a TIFF, of a pixel type Pillow does not decode
                raise ImageReadError(f"{name} is a TIFF of a pixel type this tool cannot read (such as "
                                     "floating-point RGB); save it as an 8- or 16-bit image") from None
            raise ImageReadError(f"{name} is not a readable image: not a format this tool reads "
                                 "(PNG, JPEG, TIFF, BMP, WebP ...)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(f"{name} is not a readable image ({exc})") from exc


#: Notes ``read_image`` gives for its conversions.
ALPHA_FLATTENED = "alpha flattened onto white"
SIXTEEN_BIT = "16-bit reduced to 8-bit"
#: What each EXIF orientation (2-8) asks for, as ``read_image``'s note says it.
TURNS = {2: "mirrored", 3: "rotated 180°", 4: "flipped upside down", 5: "mirrored and rotated 90° left",
         6: "rotated 90° right", 7: "mirrored and rotated 90° right", 8: "rotated 90° left"}


def _upright(img: Image.Image, notes: list[str]) -> Image.Image:
    """``img`` turned as its EXIF orientation says, noted in ``notes``. An EXIF block Pillow
    cannot parse (a broken camera or editor wrote it) leaves the image as stored: its pixels
    are fine, and refusing the file for it would refuse a readable image."""
    try:
        orientation = img.getexif().get(0x0112)
        upright = ImageOps.exif_transpose(img)
    except (SyntaxError, ValueError, OSError, struct.error):
        notes.append("EXIF block unreadable: orientation ignored")
        return img
    if orientation in TURNS:
        notes.append(f"{TURNS[orientation]} by its EXIF orientation")
    return upright


def megapixels(count: int, limit: int) -> tuple[str, str]:
    """``count`` and ``limit`` pixels as megapixels, with as many decimals as it takes to tell
    them apart (4,002,000 over 4,000,000 is "4.002 over 4.000", not "4.0 over 4.0")."""
    for decimals in range(1, 7):
        pair = f"{count / 1e6:.{decimals}f}", f"{limit / 1e6:.{decimals}f}"
        if pair[0] != pair[1]:
            break
    return pair


def _header_orientation(img: Image.Image) -> int | None:
    """The EXIF orientation from what ``Image.open`` has read, never decoding the pixels: for a
    PNG, ``getexif()`` decodes the whole image (a small file may hold a huge one) to look for
    an eXIf chunk after the pixel data."""
    if img.format == "TIFF":
        return img.getexif().get(0x0112)  # tags of the header
    exif = Image.Exif()
    if img.info.get("exif"):
        exif.load(img.info["exif"])
    return exif.get(0x0112)


def image_files(folder: str | Path) -> list[Path]:
    """Image files (by ``IMAGE_SUFFIXES``) directly inside ``folder``, in name order; raises
    ``FileNotFoundError`` for a missing folder or one without images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return found


def shared_stems(paths: list[Path]) -> list[str]:
    """The paths (as text, sorted) whose name without suffix another path has too: their
    outputs, saved as ``<stem>.png``, would land on one file."""
    stems = [Path(p).stem for p in paths]
    return sorted({str(p) for p, stem in zip(paths, stems) if stems.count(stem) > 1})


def write_png(image_u8: np.ndarray, path: Path) -> None:
    """Save a uint8 image as PNG through a temporary file and a rename, so that an interrupted
    run never leaves half a file under the final name; missing folders are made."""
    with atomic_write(path) as f:
        Image.fromarray(image_u8).save(f, format="PNG")


def pixels_sha256(image: np.ndarray) -> str:
    """sha256 of an image's decoded pixels, shape and dtype: what the image is, whatever its
    file name or format."""
    digest = hashlib.sha256(f"{image.shape}|{image.dtype}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def to_float(image_u8: np.ndarray) -> np.ndarray:
    """uint8 0-255 -> float32 [0, 1] (the protocol's ``clean = uint8 / 255``)."""
    return (image_u8.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] (any range) -> uint8, clipped then rounded as the protocol says."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def array_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 float array -> [1, 3, H, W] float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None].to(device)


def tensor_to_array(tensor: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] tensor -> HxWx3 float32 array on the CPU."""
    return tensor[0].detach().float().cpu().numpy().transpose(1, 2, 0).astype(np.float32)
