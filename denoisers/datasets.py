"""Test and training image sets: sha256-checked, from a local mirror or downloaded once.

Set ``DENOISERS_DATA_MIRROR`` to a folder holding ``kodak24/``, ``cbsd68/``, ``mcmaster/``
and ``train/CBSD432/`` (for example the shared ``datasets`` folder); otherwise the files are
downloaded from their public homes into the cache and checked against the sha256 lists in
``denoisers/checksums/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fetch import FileSpec, Source, cache_root, locate, mirror_folders

MIRROR_ENV = "DENOISERS_DATA_MIRROR"
CHECKSUMS = Path(__file__).resolve().parent / "checksums"
_FFDNET = "https://raw.githubusercontent.com/cszn/FFDNet/e787f46df2f374ff3591186706229cb9a0591fea/testsets"


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str  # relative to a mirror or cache root
    url: str  # template with {file}
    home: str  # where a person can get it by hand


DATASETS = {
    "kodak24": Dataset("kodak24", "kodak24", "http://r0k.us/graphics/kodak/kodak/{file}",
                       "http://r0k.us/graphics/kodak/"),
    "cbsd68": Dataset("cbsd68", "cbsd68", _FFDNET + "/CBSD68/{file}", "https://github.com/cszn/FFDNet"),
    "mcmaster": Dataset("mcmaster", "mcmaster", _FFDNET + "/McMaster/{file}", "https://github.com/cszn/FFDNet"),
    "cbsd432": Dataset(
        "cbsd432", "train/CBSD432",
        "https://raw.githubusercontent.com/Magauiya/Extended_SURE/1bcec3b61d7c3687f0fc906d684cc7d29e59aab4/Dataset/CBSD432/{file}",
        "https://github.com/Magauiya/Extended_SURE",
    ),
}


def checksums(name: str) -> dict[str, str]:
    """File name -> sha256 for dataset ``name``, in name order."""
    lines = (CHECKSUMS / f"{name}.sha256").read_text().split("\n")
    pairs = (line.split() for line in lines if line.strip())
    return dict(sorted((file, digest) for digest, file in pairs))


def mirrors() -> list[Path]:
    return mirror_folders(MIRROR_ENV)


def files(name: str, download: bool = True, limit: int | None = None) -> list[Path]:
    """Local, checked paths of dataset ``name``'s images in name order (the first ``limit``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return [_locate(name, file, digest, download) for file, digest in list(checksums(name).items())[:limit]]


def file(name: str, filename: str, download: bool = True) -> Path:
    """The local, checked path of one image of dataset ``name`` (only that file is checked or
    fetched); KeyError for a file the set does not have."""
    return _locate(name, filename, checksums(name)[filename], download)


def _locate(name: str, filename: str, digest: str, download: bool) -> Path:
    ds = DATASETS[name]
    return locate(FileSpec(filename, digest, (Source(ds.url.format(file=filename)),)),
                  cache_root() / "datasets" / ds.folder, [m / ds.folder for m in mirrors()], download)


def available_locally(name: str) -> bool:
    """True when every file of ``name`` is in the cache or a mirror (checked by name only)."""
    ds = DATASETS[name]
    roots = [m / ds.folder for m in mirrors()] + [cache_root() / "datasets" / ds.folder]
    return all(any((r / f).exists() for r in roots) for f in checksums(name))
