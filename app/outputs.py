"""Folders for the files the app serves: exports, API outputs and panel images."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

EXPORT_MAX_AGE = 3600
#: Panel images are written as PNG files, which gradio copies into its own cache as soon as the
#: render returns; our copies (about 2 MB per render) are removed after this many seconds.
VIEW_MAX_AGE = 60


class ExportDir:
    """Where export, API and panel files are written before gradio serves them: one fresh
    sub-folder per request (never shared between users), those older than ``max_age`` seconds
    removed. ``views`` holds the panels' PNGs, kept a shorter time."""

    def __init__(self, max_age: float = EXPORT_MAX_AGE, root: Path | None = None) -> None:
        self.max_age = max_age
        self.root = Path(tempfile.mkdtemp(prefix="denoiser-app-")) if root is None else root
        self.views = ExportDir(VIEW_MAX_AGE, self.root / "_views") if root is None else None

    def new(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - self.max_age
        for old in self.root.iterdir():
            try:
                if old.name != "_views" and old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
