"""Compare pressed while an upload is still on its way (a real browser: Debian's chromium via
Playwright): the comparison runs on the upload, with no error toast."""
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import denoisers  # noqa: E402
from app_support import chromium_page, needs_nets, running_app  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [needs_nets, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no chromium at {CHROMIUM}")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("app")) as url:
        yield url


@pytest.fixture
def page():
    with chromium_page(CHROMIUM, {"width": 1440, "height": 900}) as fresh:
        yield fresh


def test_compare_pressed_during_an_upload_runs_the_upload(server, page, tmp_path):
    # Random pixels do not compress: a PNG of about 9 MB that takes a moment to send and decode.
    big = np.random.default_rng(3).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "large.png")
    page.goto(server)
    page.wait_for_selector("#run", timeout=60_000)
    for name in denoisers.names():
        box = page.locator(f"#method-{name} input")
        if name == "ffdnet":
            box.check()
        elif box.is_enabled():
            box.uncheck()
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "large.png"))
    page.click("#run", force=True)  # at once: the upload is still being sent or read
    toasts = "document.querySelectorAll('[data-testid=\"toast-body\"]')"
    page.wait_for_function(f"document.querySelector('#status').innerText.includes('Done') || {toasts}.length > 0",
                           timeout=180_000)
    assert page.evaluate(f"Array.from({toasts}).map((t) => t.innerText)") == []  # no error, no warning
    status = page.locator("#status").inner_text()
    assert "Done: 1 of 1 methods" in status and "upload-large" in status, status


def test_compare_after_a_file_the_browser_refused_does_not_wait_for_it(tmp_path, page):
    """A file over the size limit never reaches the server: Compare answers at once (no input
    yet) instead of waiting for an upload that will not come."""
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)).save(
        tmp_path / "huge.png")  # about 9 MB
    with running_app(tmp_path, max_upload_mb=5) as url:
        page.goto(url)
        page.wait_for_selector("#run", timeout=60_000)
        page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "huge.png"))
        toasts = "document.querySelectorAll('[data-testid=\"toast-body\"]')"
        page.wait_for_function(f"Array.from({toasts}).some((t) => t.innerText.includes('maximum allowed size'))",
                               timeout=30_000)
        start = time.monotonic()
        page.click("#run")
        page.wait_for_function(f"Array.from({toasts}).some((t) => t.innerText.includes('Pick a Kodak24 image'))",
                               timeout=30_000)
        assert time.monotonic() - start < 10
