"""Kodak24 for the picker: names, checked paths (mirror, cache or a download on first use),
thumbnails, and a plain message saying where to get the set when none of that works."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from denoisers import datasets
from denoisers.fetch import FetchError

from .convert import InputError

SET = "kodak24"


def names() -> list[str]:
    """kodim01 .. kodim24 (from the checksum list; needs no files)."""
    return [Path(f).stem for f in datasets.checksums(SET)]


def where_to_get() -> str:
    home = datasets.DATASETS[SET].home
    return (f"Kodak24 is not on this machine. It is downloaded (sha256-checked) on first use from {home}; "
            f"offline, put the 24 PNGs in a folder `<root>/kodak24/` and set {datasets.MIRROR_ENV}=<root>. "
            "Uploads work without it.")


def available() -> bool:
    return datasets.available_locally(SET)


def paths(download: bool = True) -> list[Path]:
    """The 24 checked files; raises ``InputError`` saying where to get them on failure."""
    try:
        return datasets.files(SET, download=download)
    except (FetchError, OSError, RuntimeError) as exc:
        raise InputError(f"{where_to_get()} ({type(exc).__name__})") from exc


def path(name: str, download: bool = True) -> Path:
    """The checked file of one image (``kodim05``); only that file is checked or fetched."""
    files = {Path(f).stem: f for f in datasets.checksums(SET)}
    if name not in files:
        raise InputError(f"unknown Kodak24 image {name!r}")
    try:
        return datasets.file(SET, files[name], download)
    except (FetchError, OSError, RuntimeError) as exc:
        raise InputError(f"{where_to_get()} ({type(exc).__name__})") from exc


def thumbnails(size: int = 112) -> list[tuple[np.ndarray, str]]:
    """(thumbnail, name) for the picker; empty when the set is not available locally."""
    if not available():
        return []
    try:
        files = paths(download=False)
    except InputError:
        return []
    out = []
    for f in files:
        with Image.open(f) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
            out.append((np.asarray(img), f.stem))
    return out
