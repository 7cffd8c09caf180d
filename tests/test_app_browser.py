"""A real browser (Debian's chromium via Playwright): pick a Kodak image, run two fast
methods, click a panel, and check that every crop moved to the clicked spot."""
import io
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import denoisers  # noqa: E402
from app import crops, views  # noqa: E402
from app_support import chromium_page, needs_kodak, needs_nets, running_app  # noqa: E402
from denoisers import datasets  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, detail_ratio, lpips, psnr  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [needs_kodak, needs_nets, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no chromium at {CHROMIUM}")]

IMAGE = 22  # kodim23
ENGINES = []  # the server's engine, to wait for its work to end


def wait_until_idle(seconds: float = 60) -> None:
    """Wait until the server computes nothing (work nobody waits for is stopped within seconds)."""
    deadline = time.monotonic() + seconds
    while ENGINES[0].under_way():
        assert time.monotonic() < deadline, f"the server was still computing after {seconds} s"
        time.sleep(0.1)
FAST = ("dncnn", "ffdnet")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    # Benchmark results where kodim07 shows the largest spread between two methods.
    (root / "results" / "kodak24").mkdir(parents=True)
    (root / "results" / "kodak24" / "results.csv").write_text(
        "image,method,sigma,seed,psnr,ssim,seconds,weights,hf,hf_clean\n"
        "kodim05.png,dncnn,25,0,30.00,0.9,1,x,50,100\nkodim05.png,ffdnet,25,0,30.10,0.9,1,x,60,100\n"
        "kodim07.png,dncnn,25,0,31.00,0.9,1,x,70,200\nkodim07.png,ffdnet,25,0,33.00,0.9,1,x,84,200\n")
    # A perception-distortion plane on the centres only: the whole images' is not made yet.
    (root / "results" / "kodak24-c256-dial").mkdir()
    (root / "results" / "kodak24-c256-dial" / "plane.csv").write_text(
        "sigma,method,psnr,lpips,family,alpha\n25,idresnet,31.8,0.10,network blend (dial),0\n"
        "25,idgan,30.2,0.07,network blend (dial),1\n25,dncnn,31.6,0.11,baseline,\n")
    with running_app(root, engines=ENGINES) as url:
        yield url


@pytest.fixture
def page():
    with chromium_page(CHROMIUM, {"width": 1400, "height": 1000}) as fresh:
        yield fresh


def fetch_png(page, selector: str) -> np.ndarray:
    src = page.locator(f"{selector} img").first.get_attribute("src")
    body = page.request.get(src).body()
    img = Image.open(io.BytesIO(body))
    assert img.format == "PNG", f"{selector} is served as {img.format}, not PNG"
    return np.asarray(img.convert("RGB"))


def open_view(page, server: str, query: str) -> None:
    """Open the link ``query`` (a view: image, sigma, seed, methods) and wait for its comparison."""
    page.goto(server + query)
    page.wait_for_function("document.querySelector('#status') && "
                           "document.querySelector('#status').innerText.includes('Done')", timeout=120_000)


def fetch_png_when(page, selector: str, ready, timeout_s: float = 30.0) -> np.ndarray:
    """The panel's PNG once ``ready(image)`` holds: panels receive their new images one by
    one after a click, so an early fetch may still get the previous one."""
    deadline = time.monotonic() + timeout_s
    while True:
        img = fetch_png(page, selector)
        if ready(img) or time.monotonic() > deadline:
            return img
        page.wait_for_timeout(250)


def test_click_moves_every_crop(server, page, tmp_path):
    clean = read_image(datasets.files("kodak24")[IMAGE])
    noisy = add_noise(to_float(clean), 25, 0)
    expected_full = {"clean": clean, "noisy": to_uint8(noisy)}
    expected_full.update({m: to_uint8(denoisers.get(m).denoise(noisy, 25)) for m in FAST})

    page.goto(server)
    page.wait_for_selector("#kodak img", timeout=60_000)
    page.locator("#kodak img").nth(IMAGE).click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Loaded kodim23')",
                           timeout=60_000)
    for name in denoisers.names():
        box = page.locator(f"#method-{name} input")
        if name in FAST:
            box.check()
        elif box.is_enabled():
            box.uncheck()
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done: 2 of 2')",
                           timeout=120_000)
    columns = [views.SCORE_COLUMNS.index(c) for c in ("method", "PSNR (dB)", "LPIPS ↓", "detail")]
    scores = [[page.locator(f"#scores [data-testid='cell-{row}-{col}']").inner_text().strip() for col in columns]
              for row in range(3)]
    ffdnet = expected_full["ffdnet"]
    assert scores[0][0] == "Noisy input" and scores[2] == [
        "FFDNet", f"{psnr(clean, ffdnet):.2f}", f"{lpips(clean, ffdnet):.3f}", f"{detail_ratio(clean, ffdnet):.2f}"]

    # Click the FFDNet full view (slot 3: truth, noisy, dncnn, ffdnet) at a known spot.
    img = page.locator("#full-3 img").first
    page.wait_for_function("document.querySelector('#full-3 img') && "
                           "document.querySelector('#full-3 img').naturalWidth === 768", timeout=30_000)
    geo = img.evaluate("e => { const r = e.getBoundingClientRect(); return {w: r.width, h: r.height, "
                       "nw: e.naturalWidth, nh: e.naturalHeight}; }")
    scale = min(geo["w"] / geo["nw"], geo["h"] / geo["nh"], 1)
    offx, offy = (geo["w"] - geo["nw"] * scale) / 2, (geo["h"] - geo["nh"] * scale) / 2
    tx, ty = 600, 130  # the target pixel, away from the centre and the borders
    img.click(position={"x": offx + tx * scale, "y": offy + ty * scale})
    page.wait_for_function("document.querySelector('#centre textarea, #centre input').value"
                           ".includes('centre x=')"
                           " && !document.querySelector('#centre textarea, #centre input').value"
                           ".startsWith('centre x=384')", timeout=30_000)
    text = page.locator("#centre textarea, #centre input").first.input_value()
    x, y = (int(v) for v in text.split(";")[0].replace("centre x=", "").split(", y="))
    assert abs(x - tx) <= 2 and abs(y - ty) <= 2, text
    # The typed-centre boxes follow clicks.
    page.wait_for_function(f"document.querySelector('#centre-x input').value === '{x}' && "
                           f"document.querySelector('#centre-y input').value === '{y}'", timeout=30_000)
    box = crops.crop_box((x, y), crops.CROP_DEFAULT, clean.shape)

    labels = {}
    for slot, key in enumerate(["clean", "noisy", *FAST]):
        labels[key] = page.locator(f"#crop-{slot} label, #crop-{slot} [data-testid='block-label']").first.inner_text()
        want = crops.zoomed_crop(expected_full[key], box, crops.ZOOM_DEFAULT)
        got = fetch_png_when(page, f"#crop-{slot}",
                             lambda im: im.shape == want.shape and np.array_equal(im, want))
        assert got.shape == want.shape, (key, got.shape)
        assert np.array_equal(got, want), f"crop of {key} is not at x={x}, y={y}"
        full = fetch_png_when(page, f"#full-{slot}",
                              lambda im: (im[box.y0 - 1, box.x0:box.x1] == crops.BOX_COLOUR).all())
        assert np.array_equal(crops.crop(full, box), crops.crop(expected_full[key], box))
        assert (full[box.y0 - 1, box.x0:box.x1] == crops.BOX_COLOUR).all()  # box drawn there
    # The crop's caption gives the crop's PSNR and the whole image's, each labelled.
    crop_psnr = psnr(crops.crop(expected_full["clean"], box), crops.crop(expected_full["ffdnet"], box))
    whole_psnr = psnr(expected_full["clean"], expected_full["ffdnet"])
    assert f"crop {crop_psnr:.2f} dB" in labels["ffdnet"] and f"image {whole_psnr:.2f} dB" in labels["ffdnet"], labels
    # For screen readers: each image's text alternative is its caption; the status line is read out.
    page.wait_for_function("document.querySelector('#crop-3 img').alt.includes('FFDNet')", timeout=30_000)
    assert page.locator("#crop-3 img").first.get_attribute("alt") == labels["ffdnet"].strip()
    assert page.locator("#full-0 img").first.get_attribute("alt").startswith("Ground truth")
    assert page.locator("#status [aria-live='polite']").count() == 1
    assert f"x={x}" in page.url and f"y={y}" in page.url and "image=kodim23" in page.url
    # The link box (and so its copy button) holds the whole address, not just the query.
    page.wait_for_function("document.querySelector('#link textarea, #link input').value === location.href",
                           timeout=30_000)
    # The A/B slider's right side is the best method once the results are in.
    page.get_by_text("A/B slider (lossless)").click()
    page.wait_for_function("document.querySelector('#ab-b input') && "
                           "document.querySelector('#ab-b input').value === 'FFDNet'", timeout=30_000)
    # Shown on the zoomed crop, its two sides are the crop panels' pixels, lossless.
    page.locator("#ab-region").get_by_text("Zoomed crop").click()
    want = [crops.zoomed_crop(expected_full[k], box, crops.ZOOM_DEFAULT) for k in ("clean", "ffdnet")]

    def slider_sides():
        sides = []
        for img in page.locator("#slider img").all()[:2]:
            body = page.request.get(img.get_attribute("src")).body()
            sides.append(np.asarray(Image.open(io.BytesIO(body)).convert("RGB")))
        return sides

    deadline = time.monotonic() + 30
    while (sides := slider_sides()) and sides[0].shape != want[0].shape and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert len(sides) == 2 and all(np.array_equal(g, w) for g, w in zip(sides, want))
    # The divider can be placed without dragging it (from the keyboard).
    position = page.locator("#ab-position input[type='number']")
    position.fill("20")
    position.press("Enter")
    page.wait_for_function("[...document.querySelectorAll('#slider [style]')].some((e) => { "
                           "const m = /clip-path: inset\\(0px 0px 0px ([0-9.]+)%\\)/.exec(e.getAttribute('style')); "
                           "return m && parseFloat(m[1]) < 40; })", timeout=30_000)  # moved left of the middle
    page.screenshot(path=str(tmp_path / "browser.png"), full_page=True)
    assert (tmp_path / "browser.png").stat().st_size > 10_000


def test_the_crop_centre_boxes_appear_with_an_image(server, page):
    """Before any image the x / y boxes are hidden (gradio would show 0 / 0 in them)."""
    page.goto(server)
    page.locator("#run").wait_for(timeout=60_000)
    assert page.locator("#centre-x input").count() == 0 or not page.locator("#centre-x input").is_visible()
    open_view(page, server, "?image=kodim23&sigma=25&seed=0&methods=ffdnet")
    x_box, y_box = page.locator("#centre-x input"), page.locator("#centre-y input")
    assert x_box.is_visible() and (x_box.input_value(), y_box.input_value()) == ("384", "256")


def test_the_crop_moves_from_the_keyboard(server, page):
    """The crop centre can be typed, or stepped with the arrow keys, and applied with Enter (or by
    leaving the box) instead of clicked."""
    clean = read_image(datasets.files("kodak24")[IMAGE])
    open_view(page, server, "?image=kodim23&sigma=25&seed=0&methods=ffdnet")
    centre = "document.querySelector('#centre textarea, #centre input').value"
    x_box, y_box = page.locator("#centre-x input"), page.locator("#centre-y input")
    assert (x_box.input_value(), y_box.input_value()) == ("384", "256")  # the image centre
    x_box.click()
    x_box.press("Control+a")
    x_box.press_sequentially("517", delay=40)  # typed key by key: nothing writes over it meanwhile
    x_box.press("Enter")
    page.wait_for_function(f"{centre}.startsWith('centre x=517, y=256')", timeout=30_000)
    x_box.fill("100")
    y_box.focus()  # leaving the x box applies it too
    page.wait_for_function(f"{centre}.startsWith('centre x=100, y=256')", timeout=30_000)
    page.keyboard.press("ArrowUp")  # one step of 8 px
    page.keyboard.press("Enter")
    page.wait_for_function(f"{centre}.startsWith('centre x=100, y=264')", timeout=30_000)
    box = crops.crop_box((100, 264), crops.CROP_DEFAULT, clean.shape)
    want = crops.zoomed_crop(clean, box, crops.ZOOM_DEFAULT)
    got = fetch_png_when(page, "#crop-0", lambda im: im.shape == want.shape and np.array_equal(im, want))
    assert np.array_equal(got, want)
    assert "x=100" in page.url and "y=264" in page.url
    x_box.fill("5000")  # beyond the right edge: the last column, and the box says so
    x_box.press("Enter")
    page.wait_for_function(f"{centre}.startsWith('centre x=767, y=264')", timeout=30_000)
    page.wait_for_function("document.querySelector('#centre-x input').value === '767'", timeout=30_000)
    y_box.fill("-40")
    y_box.press("Enter")
    page.wait_for_function(f"{centre}.startsWith('centre x=767, y=0')", timeout=30_000)


def test_typing_into_the_slider_boxes_raises_no_errors_on_the_way(server, page):
    """"1" on the way to "15" (or "128") is below the slider's minimum for a keystroke: the page
    says nothing about it, and the value typed is applied. (The server refuses a σ out of range
    given through the API: test_app_e2e.)"""
    open_view(page, server, "?image=kodim23&sigma=25&seed=0&methods=ffdnet")
    toasts = "document.querySelectorAll('[data-testid=\"toast-body\"]').length"
    for selector, typed in (("#crop-size", "128"), ("#sigma", "15")):
        box = page.locator(f"{selector} input[type='number']")
        box.click()
        box.press("Control+a")
        box.press_sequentially(typed, delay=120)
        # the value typed is applied (which takes every keystroke's event before it)
        applied = {"#crop-size": "document.querySelector('#centre textarea, #centre input').value"
                                 ".includes('(128x128;')",
                   "#sigma": "document.querySelector('#status').innerText.includes('Settings changed')"}
        page.wait_for_function(applied[selector], timeout=30_000)
        assert page.evaluate(toasts) == 0, f"error shown while typing {typed} into {selector}"
    box = page.locator("#sigma input[type='number']")
    box.fill("3")
    box.press("Tab")  # a value left out of range: leaving the box puts it back in range, visibly
    page.wait_for_function("document.querySelector('#sigma input[type=\"number\"]').value === '5'",
                           timeout=30_000)
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done: 1 of 1') && "
                           "document.querySelector('#status').innerText.includes('σ 5,')", timeout=60_000)
    assert page.evaluate(toasts) == 0


def test_the_settings_changed_hint_survives_crop_moves(server, page):
    """After the seed changes, the panels still show the old one: the status line says so, and
    keeps saying so when the crop is moved on the old panels."""
    open_view(page, server, "?image=kodim23&sigma=25&seed=0&methods=ffdnet")
    seed = page.locator("#seed input")
    seed.fill("5")
    seed.press("Tab")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Settings changed')",
                           timeout=30_000)
    page.locator("#centre-y input").fill("100")
    page.locator("#centre-y input").press("Enter")
    page.wait_for_function("location.search.includes('y=100')", timeout=30_000)
    # the render that wrote y=100 into the address wrote the status line with it; the status
    # line's text also holds gradio's (hidden) progress timer while the hint is re-checked
    page.wait_for_function("(() => { const t = document.querySelector('#status').innerText;"
                           " return !t.includes('processing') && t.includes('Done'); })()", timeout=30_000)
    text = page.locator("#status").inner_text()
    assert "Settings changed: press Compare" in text and "seed 0" in text


def test_back_returns_to_the_previous_image(server, page):
    """Another image is a new history entry: Back shows the previous one, and crop moves made
    on it in between are kept rather than piled up as entries of their own."""
    open_view(page, server, "?image=kodim23&sigma=25&seed=0&methods=ffdnet")
    page.locator("#centre-x input").fill("200")
    page.locator("#centre-x input").press("Enter")
    page.wait_for_function("location.search.includes('x=200')", timeout=30_000)
    page.locator("#kodak img").nth(4).click()  # kodim05
    page.wait_for_function("location.search.includes('image=kodim05')", timeout=60_000)
    page.go_back()
    page.wait_for_function("document.querySelector('#status') && "
                           "document.querySelector('#status').innerText.includes('Done')", timeout=120_000)
    assert "image=kodim23" in page.url and "x=200" in page.url
    assert page.locator("#centre-x input").input_value() == "200"
    page.go_back()  # the link's own entry was rewritten, not added: Back now leaves the app
    page.wait_for_url("about:blank", timeout=30_000)


def test_a_link_in_another_form_is_rewritten_in_place(server, page):
    """"sigma=25.0" and a missing seed are written back as "25" and "0": that must not count as
    another input (Back would land on the link as typed, and push the rewrite again for ever)."""
    page.goto(server + "?image=kodim05&sigma=25.0")
    page.wait_for_function("location.search.includes('sigma=25&seed=0')", timeout=60_000)
    page.go_back()
    page.wait_for_url("about:blank", timeout=30_000)


def test_benchmark_row_opens_that_image(server, page):
    """A click on the per-image table's top row (the largest spread) opens it in Compare."""
    page.goto(server)
    noisy_box = page.locator("#already-noisy input[type=checkbox]")
    noisy_box.check()  # left ticked from an earlier upload: opening a Kodak image must untick it
    page.get_by_role("tab", name="Benchmark").click()
    first = page.locator("#per-image [data-testid='cell-0-0']")
    first.wait_for(timeout=60_000)
    assert "kodim07" in first.inner_text()
    detail = [page.locator(f"#bench-detail [data-testid='cell-{row}-{col}']").inner_text().strip()
              for row in (0, 1) for col in (0, 1)]
    assert detail == ["DnCNN", "0.40", "FFDNet", "0.48"]  # (50+70)/(100+200), (60+84)/(100+200)
    first.click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('kodim07')",
                           timeout=60_000)
    assert page.locator("#run").is_visible()  # back on the Compare tab
    page.wait_for_function("document.activeElement && document.activeElement.id === 'run'",
                           timeout=30_000)  # the keyboard goes on from Compare, not from the page's top
    page.wait_for_function("location.search.includes('image=kodim07')", timeout=30_000)
    # The thumbnails are named for screen readers by their images.
    assert page.locator("#kodak button[aria-label^='kodim07, 7 of 24']").count() == 1
    assert not noisy_box.is_checked()


def test_the_plane_shown_is_the_one_chosen_and_a_missing_one_says_so(server, page):
    page.goto(server)
    page.get_by_role("tab", name="Benchmark").click()
    page.wait_for_function("[...document.querySelectorAll('#bench-plane .annotation-text')]"
                           ".some((e) => e.textContent.includes('no perception-distortion plane on Kodak24, whole images'))",
                           timeout=60_000)
    page.locator("#bench-plane-on").get_by_text("256x256 centres").click()
    page.wait_for_function("[...document.querySelectorAll('#bench-plane .gtitle')]"
                           ".some((e) => e.textContent.includes('256x256 centres'))", timeout=60_000)
    assert page.locator("#bench-plane .annotation-text", has_text="no perception-distortion plane").count() == 0


def test_choosing_another_image_stops_the_running_comparison(server, page):
    """Results of a comparison still running must not land on an image picked meanwhile."""
    page.goto(server + "?image=kodim23&sigma=25&seed=11&methods=dncnn")  # a seed no other test caches
    page.wait_for_function("document.querySelector('#status') && "
                           "document.querySelector('#status').innerText.includes('Running')", timeout=60_000)
    page.locator("#kodak img").nth(4).click()  # kodim05, while DnCNN still runs on kodim23
    page.wait_for_function("document.querySelector('#status').innerText.includes('Loaded kodim05')",
                           timeout=60_000)
    wait_until_idle()  # DnCNN on kodim23 ended (stopped): its result can no longer land
    page.wait_for_function("location.search.includes('image=kodim05')", timeout=30_000)
    assert "Loaded kodim05" in page.locator("#status").inner_text()
    assert "image=kodim05" in page.url
    clean = read_image(datasets.files("kodak24")[4])
    shown = crops.draw_box(clean, crops.crop_box(None, crops.CROP_DEFAULT, clean.shape))
    assert np.array_equal(fetch_png(page, "#full-0"), shown)  # kodim05's ground truth, not kodim23's


def test_a_file_that_is_not_an_image_is_refused_in_the_status_line(server, page, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    open_view(page, server, "?image=kodim05&sigma=25&seed=0&methods=ffdnet")  # a view shown first
    link = "document.querySelector('#link textarea, #link input').value"
    page.wait_for_function(f"{link}.includes('image=kodim05')", timeout=30_000)
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "notes.png"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('Could not load the image')",
                           timeout=60_000)
    assert "not a readable image" in page.locator("#status").inner_text()
    assert page.locator("#sigma input[type=range]").is_visible()  # no error badge laid over it
    page.wait_for_function(f"{link} === ''", timeout=30_000)  # not kodim05's link: kodim05 is gone


def test_an_upload_s_link_says_it_cannot_hold_the_image(server, page, tmp_path):
    Image.fromarray(np.full((64, 80, 3), 120, np.uint8)).save(tmp_path / "mine.png")
    page.goto(server)
    page.wait_for_selector("#kodak img", timeout=60_000)
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "mine.png"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('Loaded upload-mine')",
                           timeout=60_000)
    page.wait_for_function("document.querySelector('#link textarea, #link input').value"
                           ".startsWith('An upload cannot be linked')", timeout=30_000)
    assert "image=" not in page.url


def test_an_already_noisy_upload_says_its_estimate_not_that_settings_changed(server, page, tmp_path):
    clean = read_image(datasets.files("kodak24", limit=5)[4])[:200, :300]
    Image.fromarray(to_uint8(add_noise(to_float(clean), 30, 1))).save(tmp_path / "grainy.png")
    page.goto(server)
    page.wait_for_selector("#kodak img", timeout=60_000)
    page.get_by_label("My image is already noisy").check()
    page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "grainy.png"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('Loaded upload-grainy')",
                           timeout=60_000)
    # the slider's estimate lands after the preview's render
    page.wait_for_function("document.querySelector('#sigma input[type=\"number\"]').value !== '25'",
                           timeout=30_000)
    status = page.locator("#status").inner_text()
    assert "estimated noise σ ≈" in status and "Settings changed" not in status


def test_stop_ends_a_running_comparison(server, page):
    page.goto(server + "?image=kodim23&sigma=25&seed=12&methods=idresnet")  # a seed no other test caches; ~10 s
    page.wait_for_function("document.querySelector('#status') && "
                           "document.querySelector('#status').innerText.includes('Running')", timeout=60_000)
    page.click("#stop")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped: 0 of 1 methods done')",
                           timeout=30_000)
    wait_until_idle()  # IDResNet was stopped: no result of it can land any more
    assert "Stopped" in page.locator("#status").inner_text()


def test_compare_runs_at_once_after_stop(server, page):
    """Compare works straight after Stop, while the method the stopped run started is still busy."""
    page.goto(server + "?image=kodim23&sigma=25&seed=13&methods=idresnet")  # IDResNet: ~10 s here
    page.wait_for_function("document.querySelector('#status') && "
                           "document.querySelector('#status').innerText.includes('Running')", timeout=60_000)
    page.click("#stop")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped')", timeout=30_000)
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Running')", timeout=5_000)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done: 1 of 1')",
                           timeout=120_000)


def test_a_finished_comparison_leaves_the_page_quiet(server, page):
    """After "Done" nothing is sent to the server until the user acts (re-sending the A/B
    slider's images once made the page fire its render events three times a second, for ever)."""
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "queue/join" in r.url else None)
    open_view(page, server, "?image=kodim23&sigma=25&seed=0&methods=dncnn")
    wait_until_idle()
    # Settled: the last result's render and A/B update sent (they follow "Done" by a moment).
    deadline, count, since = time.monotonic() + 30, len(sent), time.monotonic()
    while time.monotonic() - since < 2:
        assert time.monotonic() < deadline, "the page never settled"
        page.wait_for_timeout(100)
        if len(sent) != count:
            count, since = len(sent), time.monotonic()
    before = len(sent)
    page.wait_for_timeout(6_000)  # a window to watch: what this test checks is that nothing happens in it
    assert len(sent) == before, f"{len(sent) - before} events in 6 s with nothing to do"


def test_compare_pressed_during_a_run_runs_next_with_the_new_settings(server, page):
    """The settings changed while a comparison runs, and Compare pressed again: that press is
    not dropped; the new comparison follows the running one."""
    open_view(page, server, "?image=kodim05&sigma=30&seed=0&methods=dncnn,ffdnet")
    seed = page.locator("#seed input")
    seed.fill("7")
    seed.press("Enter")
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Running')", timeout=30_000)
    seed.fill("8")
    seed.press("Enter")
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done') && "
                           "document.querySelector('#status').innerText.includes('seed 8')", timeout=120_000)


FAKE = '<div id="fake" style="position:fixed;inset:0;background:red;z-index:9999">FAKE</div>'


@pytest.mark.parametrize("query", [
    {"image": FAKE},
    {"image": '<img id="fake" src="x">', "sigma": '<a id="fake-a" href="https://evil.example">x</a>'},
    {"image": "kodim05", "methods": "[fake](https://evil.example)", "seed": '<form id="fake-form"><input></form>'},
])
def test_markup_in_the_address_is_shown_as_text(server, page, query):
    """Every address value reaches the status line and the warning toast as text."""
    from urllib.parse import urlencode

    page.goto(server + "?" + urlencode(query))
    page.wait_for_function("document.querySelector('#status') && "
                           "document.querySelector('#status').innerText.includes('Ignored in the link')",
                           timeout=60_000)
    toast = page.locator("[data-testid='toast-body']").filter(has_text="Ignored in the link")
    toast.first.wait_for(timeout=30_000)
    assert page.locator("#fake, #fake-a, #fake-form, img[src='x'], a[href*='evil.example'], form, "
                        "[style*='z-index:9999'], [style*='z-index: 9999']").count() == 0
    assert page.locator("#status img, #status a, [data-testid='toast-body'] img, "
                        "[data-testid='toast-body'] a").count() == 0
    status = page.locator("#status").inner_text()
    for value in query.values():
        if value != "kodim05":  # said as written (cut short), in the status line and the toast
            assert value[:20] in status and value[:20] in toast.first.inner_text(), value
