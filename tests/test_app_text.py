"""Values from the address and from upload file names reach the page as text, never as markup."""
import html
import os
import re

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app import session  # noqa: E402
from app.convert import image_id  # noqa: E402
from app.engine import Engine  # noqa: E402
from app.events import WARNING, Events, Settings  # noqa: E402
from app.outputs import ExportDir  # noqa: E402
from app.text import LIMIT, plain  # noqa: E402
from app_support import png_bytes, smooth_image  # noqa: E402

FAKE = '<div id="fake" style="position:fixed;inset:0;background:red;z-index:9999">FAKE</div>'
HOSTILE = [FAKE, '<img src=x onerror="alert(1)">', '<a href="https://evil.example">x</a>',
           '[click](https://evil.example)', '<form action="https://evil.example"><input></form>',
           "**bold** _em_ `code` $$x$$ https://evil.example www.evil.example a@b.example &amp; &#60;"]
# Anything Markdown or HTML could read as the start of markup: no such character may be left bare.
MARKUP = re.compile(r"[<>\[\]()*_`$#!|~\\:@/&;=\"']")
REFERENCE = re.compile(r"&#\d+;")  # a character written as its number: text in both


def is_text(value: str) -> bool:
    return not MARKUP.search(REFERENCE.sub("", value))


@pytest.mark.parametrize("value", HOSTILE)
def test_plain_leaves_no_markup_and_keeps_the_text(value):
    out = plain(value)
    assert is_text(out) and html.unescape(out) == value


def test_plain_cuts_long_values_and_keeps_other_characters():
    long = "x" * (LIMIT + 50)
    assert html.unescape(plain(long)) == "x" * (LIMIT - 1) + "…"
    assert plain("σ ≈ 31 … é") == "σ ≈ 31 &#8230; é".replace("&#8230;", "…")  # non-ASCII left as is
    assert plain(None) == "None" and plain(25) == "25"
    with pytest.raises(ValueError, match="limit must be a whole number of at least 1"):
        plain("x", 0)


@pytest.fixture(scope="module")
def events():
    engine = Engine(None, methods=["ffdnet"])
    exports = ExportDir()
    yield Events(engine, Settings(results_root=os.devnull), exports, kodak_names=["kodim05"])
    exports.close()
    engine.close()


@pytest.mark.parametrize("key", ["image", "sigma", "seed", "crop", "zoom", "errors", "methods", "x"])
@pytest.mark.parametrize("value", HOSTILE[:3])
def test_every_link_message_shows_the_address_value_as_text(events, key, value):
    query = {key: value} | ({"y": "1"} if key == "x" else {})
    out = events.open_link(query, 0)
    shown = [out["status"], out[WARNING][0]]  # the status line (Markdown) and the toast (HTML)
    for text in shown:
        assert "Ignored in the link" in text and is_text(text.replace("Ignored in the link: ", "", 1))
        assert "<" not in text and ">" not in text
    # The value is still said (cut short), as text.
    assert html.unescape(value)[:20] in html.unescape(out["status"]) or "…" in html.unescape(out["status"])


def test_a_long_address_value_is_cut_in_the_message(events):
    out = events.open_link({"image": "a" * 5000}, 0)
    assert len(out["status"]) < 600 and "…" in out["status"]


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>", "[x](https:evil)", "a_b_c*d*"])
def test_an_upload_s_file_name_is_shown_as_text(events, tmp_path, name):
    good = tmp_path / f"{name}.png"
    good.write_bytes(png_bytes(smooth_image(48, 64)))
    out = events.upload(str(good), False, 25, 0, False, 0)
    assert is_text(out["status"].replace("Press Compare.", "").replace("(64x48)", "").replace(".", ""))
    assert html.unescape(out["status"]).startswith("Loaded upload-")
    bad = tmp_path / f"{name}.jpg"
    bad.write_text("not an image")
    refused = events.upload(str(bad), False, 25, 0, False, 0)
    body = refused["status"].split("**Could not load the image:** ", 1)[1]
    assert is_text(body) and is_text(refused[WARNING][0]) and out["source"] is not None
    noisy = events.switch_noisy(out["source"], False, 25, 0, 0)["status"]
    assert "&#95;" in noisy or "&#60;" in noisy or "&#91;" in noisy  # the name, escaped


def test_the_summary_names_an_upload_as_text():
    engine = Engine(None, methods=["ffdnet"])
    try:
        img = smooth_image(48, 64)
        src = session.Source("upload-a_b_c", img, image_id(img))
        comp, _ = session.new_comparison(engine, src, 25, 0, False, [])
    finally:
        engine.close()
    text = session.summary(comp, 1.0)
    assert "upload&#45;a&#95;b&#95;c" in text and "_" not in text
