"""Building and launching the app: one ``Engine`` (models, worker pools, cache) for everyone."""
from __future__ import annotations

import os
from pathlib import Path

from . import benchmark
from .cache import ResultCache
from .convert import MAX_UPLOAD_MB
from .engine import Engine
from .ui import CSS, PAGE_JS, Settings, build

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def create(results_root: Path | None = None, cache_dir: Path | None = None, cache_bytes: int | None = None,
           heavy_limit: int = 2, methods: list[str] | None = None, max_upload_mb: int = MAX_UPLOAD_MB):
    """Return (demo, engine, exports); call ``engine.close()`` and ``exports.close()`` when done."""
    engine = Engine(ResultCache(cache_dir, cache_bytes), methods=methods)
    engine.start()
    settings = Settings(results_root=Path(results_root) if results_root else benchmark.default_root(),
                        heavy_limit=heavy_limit, max_upload_mb=max_upload_mb)
    demo, exports = build(engine, settings)
    # Bounded queue for the light events (a render, a crop move); comparisons have their own
    # limit, heavy_limit, through their concurrency id.
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo, engine, exports


#: Sessions whose views the server keeps (the least recently used beyond it are dropped): each
#: holds its input and outputs, about 10 MB for a Kodak24 comparison and 100 MB for a 4 MP
#: upload, for up to an hour; gradio's default of 10000 would let a busy server run out of memory.
MAX_SESSIONS = 300


def launch_kwargs(max_upload_mb: int = MAX_UPLOAD_MB, max_sessions: int = MAX_SESSIONS) -> dict:
    """``demo.launch`` options; give the same ``max_upload_mb`` as to ``create``."""
    # show_error False: the messages written for users (gr.Error) are shown either way; an
    # unexpected exception's text, which may name the server's folders, goes to its log only.
    # max_file_size: the page refuses a larger file before sending it, and the server stops
    # reading one (HTTP 413) once it passes the limit.
    return {"css": CSS, "js": PAGE_JS, "show_error": False, "max_file_size": max_upload_mb * 1_000_000,
            "state_session_capacity": max_sessions}
