"""The weights manifest (``assets/weights/manifest.json``) and loading weights from it.

Third-party entries carry download ``sources``; the project's own trained weights are files
in ``assets/weights/`` (``"bundled": true``) with a model card beside each. A local mirror
folder (``DENOISERS_WEIGHTS_MIRROR``, for example the shared ``weights`` folder) is tried
before any download.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .fetch import ChecksumError, FileSpec, Source, cache_root, locate, mirror_folders, verify
from .files import write_text

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "weights"
MANIFEST = ASSETS / "manifest.json"
MIRROR_ENV = "DENOISERS_WEIGHTS_MIRROR"


class WeightsError(RuntimeError):
    """Weights are missing, unreadable or do not match their manifest entry."""


@dataclass(frozen=True)
class WeightsEntry:
    key: str
    method: str
    file: str
    sha256: str
    sigma: float | None
    arch: dict[str, Any]
    license: str
    source: str
    trained_on: str
    sources: tuple[Source, ...] = ()
    size: int | None = None
    bundled: bool = False
    #: The sigma range a network was trained on when it is one network for several sigmas
    #: (noise drawn uniformly in [lo, hi] per crop); listed once per served ``sigma``.
    sigma_range: tuple[float, float] | None = None
    #: For a network fine-tuned from another (IDGAN from IDResNet): the sha256 of the weights
    #: it started from. Only such a matched pair may be blended (the ``idgan@A`` dial).
    init_sha256: str | None = None

    def covers(self, sigma: float) -> bool:
        """Whether ``sigma`` is one this network was trained for."""
        if self.sigma_range is not None:
            return self.sigma_range[0] <= sigma <= self.sigma_range[1]
        return self.sigma == sigma

    @property
    def spec(self) -> FileSpec:
        return FileSpec(self.file, self.sha256, self.sources, self.size)

    def to_manifest(self) -> dict[str, Any]:
        """The entry as ``manifest.json`` holds it (``read_manifest`` reads it back equal):
        its key is the manifest's key, and fields at their defaults are left out."""
        item: dict[str, Any] = {}
        for name in MANIFEST_ORDER:
            value = getattr(self, name)
            if value == _DEFAULTS.get(name, object()):
                continue
            if name == "sources":
                value = [{"url": s.url, **({"member": s.member} if s.member else {}),
                          **({"sha256": s.sha256} if s.sha256 else {})} for s in value]
            elif name == "sigma_range":
                value = list(value)
            elif name == "arch":
                value = dict(value)
            item[name] = value
        return item


#: The order of an entry's fields in ``manifest.json``.
MANIFEST_ORDER = ("method", "file", "sha256", "size", "bundled", "sources", "license", "source", "trained_on",
                  "sigma", "arch", "sigma_range", "init_sha256")
#: Fields left out of an entry when they hold these (the dataclass defaults).
_DEFAULTS = {"sources": (), "size": None, "bundled": False, "sigma_range": None, "init_sha256": None}


def read_manifest(path: Path) -> dict[str, WeightsEntry]:
    raw = json.loads(Path(path).read_text())
    entries = {}
    for key, item in raw.items():
        item = dict(item)
        item["sources"] = tuple(Source(**s) for s in item.get("sources", ()))
        if item.get("sigma_range") is not None:
            lo, hi = (float(v) for v in item["sigma_range"])
            if not 0 < lo <= hi:
                raise ValueError(f"{path}: {key} has sigma_range {item['sigma_range']}, not 0 < lo <= hi")
            item["sigma_range"] = (lo, hi)
        entries[key] = WeightsEntry(key=key, **item)
    return entries


def write_manifest(path: Path, entries: dict[str, WeightsEntry]) -> None:
    """Replace ``path`` (atomically) with ``entries``, in the order given."""
    for key, entry in entries.items():
        if key != entry.key:
            raise ValueError(f"manifest key {key!r} holds the entry of {entry.key!r}")
    write_text(path, json.dumps({k: e.to_manifest() for k, e in entries.items()}, indent=2) + "\n")


@lru_cache(maxsize=1)
def manifest() -> dict[str, WeightsEntry]:
    return read_manifest(MANIFEST)


def entries_for(method: str) -> list[WeightsEntry]:
    return [e for e in manifest().values() if e.method == method]


def mirrors() -> list[Path]:
    return mirror_folders(MIRROR_ENV)


def weights_path(entry: WeightsEntry, download: bool = True) -> Path:
    """A local, sha256-checked path for ``entry`` (bundled file, cache, mirror, or download)."""
    if entry.bundled:
        path = ASSETS / entry.file
        if not path.exists():
            raise WeightsError(f"bundled weights {path} are missing")
        try:
            verify(path, entry.sha256)
        except ChecksumError as exc:
            raise WeightsError(str(exc)) from exc
        return path
    try:
        return locate(entry.spec, cache_root() / "weights", mirrors(), download=download)
    except (ChecksumError, RuntimeError) as exc:
        raise WeightsError(f"weights '{entry.key}': {exc}") from exc


def is_available_locally(entry: WeightsEntry) -> bool:
    """True when the file is bundled, cached or mirrored (no network, no hashing of downloads)."""
    if entry.bundled:
        return (ASSETS / entry.file).exists()
    candidates = [cache_root() / "weights" / entry.file] + [m / entry.file for m in mirrors()]
    return any(p.exists() for p in candidates)


def load_state_dict(entry: WeightsEntry, download: bool = True) -> dict[str, torch.Tensor]:
    """Load ``entry``'s tensors with ``weights_only=True`` (no arbitrary unpickling)."""
    path = weights_path(entry, download=download)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupted files
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds {type(state).__name__}, not a state dict")
    return state
