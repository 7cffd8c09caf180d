"""A bounded on-disk cache of denoiser outputs, shared by the UI, the API and the warm-up.

Key: (image content hash, sigma, seed, method, weights id). Value: the output as uint8
(every number and image the app shows is computed from the clipped, rounded output, so the
uint8 array loses nothing) plus a small JSON record (seconds, PSNR, SSIM) with a digest of
both, checked on every read: an entry that was damaged or edited is dropped (and logged) and
computed again, never shown. Writes go to a temporary file and are renamed into place, so
readers never see half a file. When the cache grows over ``max_bytes``, the least recently
used entries are removed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoisers.fetch import cache_root
from denoisers.files import atomic_write

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
MAX_BYTES_ENV = "DENOISERS_APP_CACHE_BYTES"


def default_dir() -> Path:
    return cache_root() / "results"


def default_max_bytes() -> int:
    return int(os.environ.get(MAX_BYTES_ENV) or DEFAULT_MAX_BYTES)


def result_key(image_id: str, sigma: float, seed: int | None, method: str, weights_id: str) -> str:
    """The cache key; ``seed`` None means the input was already noisy (no synthetic noise)."""
    parts = {"image": image_id, "sigma": round(float(sigma), 4), "seed": seed, "method": method,
             "weights": weights_id}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _digest(image: np.ndarray, meta: dict) -> str:
    """sha256 of an entry: the image's shape, type and pixels, and its record, canonically."""
    digest = hashlib.sha256(f"{image.shape}|{image.dtype}|".encode())
    digest.update(json.dumps(meta, sort_keys=True, allow_nan=True).encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


_NUMBERS = ("psnr", "ssim", "seconds")


def _problem(record: object, image: np.ndarray) -> str | None:
    """Why a stored entry cannot be served, or None."""
    if not isinstance(record, dict) or not isinstance(record.get("meta"), dict) or "sha256" not in record:
        return "its record is not an entry of this cache"
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f"its image is {image.dtype} {image.shape}, not HxWx3 uint8"
    meta = record["meta"]
    for name in _NUMBERS:
        value = meta.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"its {name} is {value!r}, not a number"
    if record["sha256"] != _digest(np.ascontiguousarray(image), meta):
        return "its digest does not match its image and record (the files were damaged or edited)"
    return None


@dataclass
class Entry:
    image: np.ndarray  # HxWx3 uint8
    meta: dict


LEFTOVER_AGE_S = 600  # an unfinished write older than this was abandoned (its process died)


class ResultCache:
    def __init__(self, root: Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_dir()
        self.max_bytes = int(max_bytes if max_bytes is not None else default_max_bytes())
        self._evict_lock = threading.Lock()

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def contains(self, key: str) -> bool:
        """Whether an entry for ``key`` is stored, without reading or checking it (for an
        estimate: a damaged entry still counts until ``get`` finds it out)."""
        return self._paths(key)[1].exists()

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None; a hit marks it as recently used. An entry that does
        not check out (a file empty, truncated, unreadable or edited, a record of the wrong
        shape) is removed and logged, and counts as a miss: it is computed again, never shown."""
        arr_path, meta_path = self._paths(key)
        if not meta_path.exists():
            return None
        try:
            record = json.loads(meta_path.read_text())
            image = np.load(arr_path, allow_pickle=False)
            problem = _problem(record, image)
        except (OSError, ValueError, EOFError) as exc:  # JSONDecodeError is a ValueError
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        if problem:
            log.warning("result cache: dropping entry %s: %s", key, problem)
            self._remove(key)
            return None
        for path in (arr_path, meta_path):
            try:
                os.utime(path)  # mark as recently used
            except OSError:  # a read-only cache is still served; it only ages by its own clock
                pass
        return Entry(image, record["meta"])

    def put(self, key: str, image: np.ndarray, meta: dict) -> None:
        """Store ``image`` (uint8 HxWx3) and ``meta`` atomically, then evict if over budget.
        The record holds a digest of the image and of ``meta``, checked on every read."""
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"the cache stores HxWxC uint8 images, got {image.dtype} {image.shape}")
        arr_path, meta_path = self._paths(key)
        image = np.ascontiguousarray(image)
        record = {"meta": meta, "sha256": _digest(image, meta)}
        # Array first, record second: an entry counts only once its record exists.
        with atomic_write(arr_path) as f:
            np.save(f, image, allow_pickle=False)
        with atomic_write(meta_path) as f:
            f.write(json.dumps(record).encode())
        self.evict()

    def _remove(self, key: str) -> None:
        for path in self._paths(key):
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a read-only cache: the entry stays, and is refused on every read
                pass

    def _entries(self) -> list[tuple[float, int, str]]:
        """(last use, bytes, key) of every complete entry."""
        out = []
        for meta_path in self.root.glob("*/*.json"):
            key = meta_path.stem
            arr_path = meta_path.with_suffix(".npy")
            try:
                a, m = arr_path.stat(), meta_path.stat()
            except OSError:
                continue
            out.append((max(a.st_mtime, m.st_mtime), a.st_size + m.st_size, key))
        return out

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _remove_leftovers(self) -> None:
        """Files of writes that never finished: an array whose record was never written, and
        temporary files, left by a process killed mid-write. They count toward no entry, so
        nothing else would ever remove them. Only files older than ``LEFTOVER_AGE_S`` go: a
        younger one may be a write under way in another thread or process."""
        cutoff = time.time() - LEFTOVER_AGE_S
        for path in [*self.root.glob("*/.*.part"), *self.root.glob("*/*.npy")]:
            try:
                if path.suffix == ".npy" and path.with_suffix(".json").exists():
                    continue
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def evict(self) -> int:
        """Remove least recently used entries until the cache fits, and the leftovers of writes
        that never finished; returns how many entries went."""
        with self._evict_lock:
            self._remove_leftovers()
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            removed = 0
            for _, size, key in entries:
                if total <= self.max_bytes:
                    break
                arr_path, meta_path = self._paths(key)
                meta_path.unlink(missing_ok=True)
                arr_path.unlink(missing_ok=True)
                total -= size
                removed += 1
            return removed
