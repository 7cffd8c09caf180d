"""Shared helpers for the app tests: what is available here, small test images, a free port."""
from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from denoisers import datasets
from denoisers.weights import is_available_locally, manifest


def weights_here(*keys: str) -> bool:
    m = manifest()
    return all(is_available_locally(m[k]) for k in keys)


#: Debian's chromium (never a browser downloaded by a test tool), started headless as the
#: browser tests need it.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def chromium_page(chromium: str, viewport: dict):
    """A fresh page of a fresh ``chromium`` (its path) at ``viewport``; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=viewport)
        finally:
            browser.close()


NETS_HERE = weights_here("dncnn_color_blind", "ffdnet_color")
needs_nets = pytest.mark.skipif(not NETS_HERE, reason="DnCNN/FFDNet weights not in the cache or a mirror "
                                                      "(set DENOISERS_WEIGHTS_MIRROR)")
needs_kodak = pytest.mark.skipif(not datasets.available_locally("kodak24"),
                                 reason="Kodak24 not in the cache or a mirror (set DENOISERS_DATA_MIRROR)")


def smooth_image(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    """A deterministic colourful uint8 test image with edges and texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60], axis=-1)
    base[h // 3: 2 * h // 3, w // 4: w // 2] = [220, 30, 40]
    base += rng.normal(0, 4, base.shape)
    return np.clip(np.round(base), 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray | Image.Image, **save) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(root, engines: list | None = None, **options) -> Iterator[str]:
    """The app on a free local port (results and cache under ``root``); yields its URL. Its
    engine is added to ``engines`` when given (a test can then wait for its work to end)."""
    from app.convert import MAX_UPLOAD_MB
    from app.server import MAX_SESSIONS, create, launch_kwargs

    sessions = options.pop("max_sessions", None)
    demo, engine, exports = create(results_root=root / "results", cache_dir=root / "cache", **options)
    if engines is not None:
        engines.append(engine)
    port = free_port()
    launch = launch_kwargs(options.get("max_upload_mb", MAX_UPLOAD_MB), sessions or MAX_SESSIONS)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        engine.close()
        exports.close()


def as_at_a_terminal() -> None:
    """``preexec_fn`` for a command a test interrupts with SIGINT: SIGINT as at a terminal.
    A shell starts background jobs with SIGINT ignored, and children inherit that, so a suite
    run in the background would otherwise see every Ctrl-C test's command ignore its Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
