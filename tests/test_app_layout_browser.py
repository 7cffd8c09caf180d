"""The compare view's layout in a real browser (Debian's chromium via Playwright): results
first on a desktop screen, captions under their images, a zoom that changes what is seen,
and on a phone a tap on a full view that brings the crops into view."""
import os
import shutil

import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import denoisers  # noqa: E402
from app_support import CHROMIUM_ARGS, needs_kodak, needs_nets, running_app  # noqa: E402
from denoisers import datasets  # noqa: E402
from denoisers.io import read_image  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [needs_kodak, needs_nets, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no chromium at {CHROMIUM}")]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
STATUS = "(document.querySelector('#status') || {innerText: ''}).innerText"  # absent while the page builds
DONE = f"{STATUS}.includes('Done')"

#: Each block of the strip: its box, its image's and its caption's (CSS pixels of the viewport).
GEOMETRY = """() => [...document.querySelectorAll('#strip > .block')]
  .filter((b) => b.offsetParent !== null)
  .map((b) => { const box = (e) => { const r = e.getBoundingClientRect();
                                     return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; };
    const img = b.querySelector('img'), caption = b.querySelector('[data-testid="block-label"]');
    return {id: b.id, block: box(b), img: img && box(img), caption: caption && box(caption),
            natural: img && img.naturalWidth, text: caption ? caption.innerText : ''}; })"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("layout")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def small_kodak(tmp_path_factory):
    """A 192x128 part of kodim23: every method, CBM3D too, runs on it in seconds."""
    path = tmp_path_factory.mktemp("upload") / "parrots.png"
    Image.fromarray(read_image(datasets.files("kodak24")[22])[200:328, 300:492]).save(path)
    return path


def inside(box: dict, viewport: dict) -> bool:
    return box["x0"] >= 0 and box["y0"] >= 0 and box["x1"] <= viewport["width"] and box["y1"] <= viewport["height"]


def upload_with(browser, server: str, path, methods) -> "playwright.Page":
    """A desktop page with the upload ``path`` loaded and only ``methods`` ticked."""
    page = browser.new_page(viewport=DESKTOP)
    page.goto(server)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_function(f"{STATUS}.includes('Loaded upload-{path.stem}')",
                           timeout=60_000)
    for name in denoisers.names():
        box = page.locator(f"#method-{name} input")
        box.check() if name in methods else box.uncheck()
    return page


def test_every_method_s_crop_and_caption_fit_one_desktop_screen(server, browser, small_kodak):
    names = denoisers.names()
    page = upload_with(browser, server, small_kodak, names)
    page.click("#run")
    page.wait_for_function(f"{STATUS}.includes('Done: {len(names)} of "
                           f"{len(names)}')", timeout=300_000)
    page.click("#run")  # again: every result from the cache, as a reviewer reopening a view sees it
    page.wait_for_function(f"{STATUS}.includes('from the cache')",
                           timeout=120_000)
    page.evaluate("window.scrollTo(0, 0)")
    blocks = page.evaluate(GEOMETRY)
    assert [b["id"] for b in blocks] == ["locator"] + [f"crop-{i}" for i in range(len(names) + 2)]
    for b in blocks:
        assert b["img"] is not None and b["caption"] is not None, b["id"]
        assert inside(b["img"], DESKTOP) and inside(b["caption"], DESKTOP), b
        # the caption lies under its image: no pixel of the image is covered
        assert b["caption"]["y0"] >= b["img"]["y1"] - 0.5, b
    captions = {b["id"]: b["text"] for b in blocks}
    assert "crop" in captions["crop-2"] and "image" in captions["crop-2"] and "dB" in captions["crop-2"]
    page.close()


def test_the_zoom_sets_the_on_screen_size_of_a_crop_pixel(server, browser):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(server + "?image=kodim23&sigma=25&seed=0&crop=64&zoom=2&methods=ffdnet")
    page.wait_for_function(DONE, timeout=120_000)
    width = "document.querySelector('#crop-2 img').getBoundingClientRect().width"
    page.wait_for_function(f"{width} === 128", timeout=30_000)
    box = page.locator("#zoom input[type='number']")
    box.fill("5")
    box.press("Enter")
    page.wait_for_function(f"{width} === 320", timeout=30_000)  # 64 image px at 5 screen px each
    page.wait_for_function("location.search.includes('zoom=5')", timeout=30_000)
    # the file shown is the one a download gives: 64 px at 5x, nearest neighbour
    assert page.evaluate("document.querySelector('#crop-2 img').naturalWidth") == 64 * 5
    page.close()


def test_a_tap_on_a_full_view_brings_the_crops_into_view_on_a_phone(server, browser):
    page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(server + "?image=kodim23&sigma=25&seed=0&methods=ffdnet")
    page.wait_for_function(DONE, timeout=120_000)
    # the controls' sidebar closed itself: the results are not covered
    assert "open" not in (page.locator("#controls").get_attribute("class") or "")
    full = page.locator("#full-2 img")
    full.scroll_into_view_if_needed()
    assert page.evaluate("document.querySelector('#crop-0').getBoundingClientRect().top") < 0  # scrolled past
    full.tap(position={"x": 20, "y": 20})
    page.wait_for_function("(() => { const r = document.querySelector('#crop-0').getBoundingClientRect();"
                           " return r.top >= 0 && r.top < window.innerHeight; })()", timeout=30_000)
    page.wait_for_function("!document.querySelector('#centre textarea, #centre input').value"
                           ".startsWith('centre x=384')", timeout=30_000)  # and the crop moved there
    page.close()



def test_moving_the_dial_changes_the_idgan_crop_at_once_then_to_the_network_s(server, browser, small_kodak):
    """The fidelity <-> detail dial, moved from the keyboard: the IDGAN crop shows the pixel-blend
    preview, then the blended network's output; the address keeps A."""
    page = upload_with(browser, server, small_kodak, ("idresnet", "idgan"))
    page.click("#run")
    page.wait_for_function(f"{STATUS}.includes('Done: 2 of 2')", timeout=300_000)
    caption = "document.querySelector('#crop-3 [data-testid=\"block-label\"]').innerText"
    before = page.evaluate("document.querySelector('#crop-3 img').src")
    assert page.evaluate(caption).startswith("IDGAN")
    slider = page.locator("#dial input[type='range']")
    slider.focus()
    for _ in range(14):  # 1 - 14 x 0.05 = 0.3
        slider.press("ArrowLeft")
    page.wait_for_function(f"document.querySelector('#crop-3 img').src !== {before!r} && "
                           f"{caption}.startsWith('IDGAN@')", timeout=60_000)
    try:  # then the network's output, not a preview
        page.wait_for_function(f"{caption}.startsWith('IDGAN@0.3\\n')", timeout=300_000)
    except playwright.Error as exc:
        raise AssertionError(f"the network's output never came: {page.evaluate(caption)!r}; "
                             f"{page.locator('#status').inner_text()!r}") from exc
    assert "crop" in page.evaluate(caption) and "LPIPS" in page.evaluate(caption)
    page.wait_for_function("location.search.includes('idgan@0.3')", timeout=30_000)
    assert "Settings changed" not in page.locator("#status").inner_text()
    page.close()


#: When each panel first showed an image (ms since the page's clock started), kept by the page.
WATCH = """() => { window.firstShown = {}; new MutationObserver(() => {
  document.querySelectorAll('#strip .crop, .panel').forEach((b) => { const img = b.querySelector('img');
    if (img && img.src && !(b.id in window.firstShown)) window.firstShown[b.id] = performance.now(); });
}).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['src']}); }"""


def test_every_crop_comes_before_the_slowest_method_s_whole_image(server, browser, tmp_path):
    """Crop first: each method's crop preview is on screen before CBM3D's whole image (a
    384x256 part of kodim05, fresh: no result is cached for it)."""
    path = tmp_path / "houses.png"
    Image.fromarray(read_image(datasets.files("kodak24")[4])[128:384, 192:576]).save(path)
    names = denoisers.names()
    page = upload_with(browser, server, path, names)
    page.evaluate(WATCH)
    page.click("#run")
    page.wait_for_function(f"{STATUS}.includes('Done: {len(names)} of')",
                           timeout=600_000)
    shown = page.evaluate("window.firstShown")
    slowest = f"full-{2 + names.index('cbm3d')}"
    crops_shown = {f"crop-{2 + i}": shown.get(f"crop-{2 + i}") for i in range(len(names))}
    assert all(t is not None for t in crops_shown.values()) and slowest in shown, shown
    assert max(crops_shown.values()) < shown[slowest], shown
    page.close()
