"""A bounded on-disk cache of denoiser outputs, shared by the UI, the API and the warm-up.

Key: (image content hash, sigma, seed, method, weights id). Value: the output as uint8
(every number and image the app shows is computed from the clipped, rounded output, so the
uint8 array loses nothing) plus a small JSON record (seconds, PSNR, SSIM). Writes go to a
temporary file and are renamed into place, so readers never see half a file. When the
cache grows over ``max_bytes``, the least recently used entries are removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoisers.fetch import cache_root
from denoisers.files import atomic_write

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

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None; a hit marks it as recently used."""
        arr_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            image = np.load(arr_path, allow_pickle=False)
            os.utime(arr_path)  # mark as recently used
            os.utime(meta_path)
        except (OSError, ValueError):
            return None
        if image.dtype != np.uint8 or image.ndim != 3:
            return None
        return Entry(image, meta)

    def put(self, key: str, image: np.ndarray, meta: dict) -> None:
        """Store ``image`` (uint8 HxWx3) and ``meta`` atomically, then evict if over budget."""
        if image.dtype != np.uint8:
            raise ValueError(f"the cache stores uint8 images, got {image.dtype}")
        arr_path, meta_path = self._paths(key)
        arr_path.parent.mkdir(parents=True, exist_ok=True)
        # Array first, record second: an entry counts only once its record exists.
        with atomic_write(arr_path) as f:
            np.save(f, np.ascontiguousarray(image), allow_pickle=False)
        with atomic_write(meta_path) as f:
            f.write(json.dumps(meta).encode())
        self.evict()

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
