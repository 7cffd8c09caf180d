"""What an upload's conversion says it did (``convert.load_image``'s notes, the load's status
line), and a grey image denoised as grey: grey noise, replicated to RGB, its own cache key."""
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app import convert, session  # noqa: E402
from app.cache import ResultCache  # noqa: E402
from app.convert import GREY_NOISE, GREYSCALE, load_image  # noqa: E402
from app.engine import Engine, synthetic_noisy  # noqa: E402
from app.text import plain  # noqa: E402
from app_support import png_bytes, smooth_image  # noqa: E402
from test_app_events import events as events  # noqa: E402,F811  (the fixture: an app with FFDNet)
from denoisers.base import is_grey  # noqa: E402
from denoisers.io import ALPHA_FLATTENED, SIXTEEN_BIT, to_float  # noqa: E402
from denoisers.metrics import add_noise  # noqa: E402


def png16(a: np.ndarray) -> bytes:
    """A 16-bit PNG of ``a`` (HxWxC uint16, C = 1 to 4), written by hand: Pillow writes none in colour."""
    h, w, c = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def with_orientation(img: np.ndarray, orientation: int, fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return png_bytes(img, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


def test_a_plain_rgb_file_has_nothing_to_say():
    image, notes = load_image(png_bytes(smooth_image()))
    assert notes == [] and np.array_equal(image, smooth_image())


def test_alpha_is_named_only_when_it_changed_pixels():
    rgba = np.dstack([smooth_image(), np.full((64, 80), 255, np.uint8)])
    assert load_image(png_bytes(Image.fromarray(rgba, "RGBA")))[1] == []  # opaque: nothing flattened
    rgba[:10, :, 3] = 0
    image, notes = load_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert notes == [ALPHA_FLATTENED] == ["alpha flattened onto white"] and (image[:10] == 255).all()


def test_16_bit_colour_and_grey_say_they_were_reduced():
    colour = (np.random.default_rng(0).integers(0, 65536, (40, 48, 3))).astype(np.uint16)
    image, notes = load_image(png16(colour))
    assert notes == [SIXTEEN_BIT] and np.array_equal(image, (colour >> 8).astype(np.uint8))
    grey = (np.arange(40 * 48).reshape(40, 48, 1) * 30).astype(np.uint16)
    image, notes = load_image(png16(grey))
    assert notes == [SIXTEEN_BIT, GREYSCALE] and is_grey(image)


def test_grey_is_named_whatever_the_file_stores():
    grey = smooth_image()[..., 0]
    assert load_image(png_bytes(Image.fromarray(grey, "L")))[1] == [GREYSCALE]
    assert load_image(png_bytes(np.repeat(grey[..., None], 3, axis=2)))[1] == [GREYSCALE]  # an RGB file of grey


def test_exif_orientation_is_applied_and_said():
    img = np.zeros((40, 64, 3), np.uint8)
    img[:8, :8] = [250, 0, 0]  # red at the stored top left
    image, notes = load_image(with_orientation(img, 6))
    assert image.shape == (64, 40, 3) and image[:8, -8:, 0].mean() > 200  # turned right: top right
    assert notes == ["rotated 90° right by its EXIF orientation"]
    image, notes = load_image(with_orientation(img, 3, "PNG"))
    assert notes == ["rotated 180° by its EXIF orientation"] and image[-8:, -8:, 0].mean() > 200
    assert load_image(with_orientation(img, 1))[1] == []  # upright already: nothing to say


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_damaged_exif_block_leaves_a_readable_image_readable(fmt):
    """Pillow cannot parse this EXIF block; the pixels are fine, so the image is read as stored."""
    lossless = {"lossless": True} if fmt == "WEBP" else {}
    data = png_bytes(smooth_image(), format=fmt, exif=b"Exif\x00\x00garbage", **lossless)
    image, notes = load_image(data)
    assert np.array_equal(image, smooth_image()) and notes == ["EXIF block unreadable: orientation ignored"]


def test_a_downscale_is_said_after_the_other_notes():
    grey = np.repeat(smooth_image(100, 200)[..., :1], 3, axis=2)
    image, notes = load_image(png_bytes(grey), max_pixels=5000, downscale=True)
    assert notes == [GREYSCALE, f"downscaled from 200x100 to {image.shape[1]}x{image.shape[0]} to stay under 0.005 MP"]




def test_the_load_status_line_says_what_was_converted(events, tmp_path):
    rgba = np.dstack([np.repeat(smooth_image()[..., :1], 3, axis=2), np.full((64, 80), 128, np.uint8)])
    (tmp_path / "see-through.png").write_bytes(png_bytes(Image.fromarray(rgba, "RGBA")))
    path = str(tmp_path / "see-through.png")
    status = events.upload(path, False, 25, 0, False, 0)["status"]
    assert status == f"Loaded {plain('upload-see-through')} (80x64), {ALPHA_FLATTENED}, {GREY_NOISE}. Press Compare."
    came_noisy = events.upload(path, False, 25, 0, True, 0)["status"]  # its own noise: nothing added
    assert f"{ALPHA_FLATTENED}, {GREYSCALE};" in came_noisy and "grey noise" not in came_noisy.split(";")[0]


def grey_source():
    grey = np.repeat(smooth_image(48, 64)[..., :1], 3, axis=2)
    return session.source_from_upload(png_bytes(grey), convert.MAX_PIXELS)


def test_a_grey_image_gets_grey_noise_drawn_as_the_protocol_draws_it():
    engine = Engine(None, methods=["ffdnet"])
    try:
        source = grey_source()
        comp, noisy = session.new_comparison(engine, source, 25, 7, False, [])
        colour_source = session.Source(source.name, source.image, source.image_id, grey=False)
        colour, colour_noisy = session.new_comparison(engine, colour_source, 25, 7, False, [])
    finally:
        engine.close()
    assert source.grey and source.notes == (GREYSCALE,)
    expected = add_noise(to_float(source.image[..., :1]), 25, 7)  # one channel, the protocol's draw
    assert noisy.dtype == np.float32 and np.array_equal(noisy, np.repeat(expected, 3, axis=2))
    assert is_grey(comp.noisy.output) and is_grey(comp.clean)  # input and ground truth stay grey
    assert np.array_equal(colour_noisy, synthetic_noisy(source.image, 25, 7)) and not is_grey(colour.noisy.output)
    assert comp.image_id != colour.image_id == source.image_id  # another input: another cache key
    with pytest.raises(ValueError, match="three channels are equal"):
        convert.grey_noisy(smooth_image(), 25, 0)


def test_grey_noise_and_colour_noise_are_cached_apart(tmp_path, monkeypatch):
    from app import engine as engine_module

    monkeypatch.setattr(engine_module, "timed", lambda d, noisy, sigma: (
        np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8), 0.01))  # the noisy input as the "output"
    engine = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["ffdnet"])
    try:
        source = grey_source()
        outputs = {}
        for grey in (True, False, True):
            comp, noisy = session.new_comparison(engine, session.Source(source.name, source.image, source.image_id,
                                                                        grey=grey), 25, 0, False, ["ffdnet"])
            last = list(session.run(engine, comp, noisy))[-1].results["ffdnet"]
            outputs.setdefault(grey, []).append(last)
    finally:
        engine.close()
    first, again = outputs[True]
    assert not first.cached and again.cached and np.array_equal(first.output, again.output)
    assert not outputs[False][0].cached and is_grey(first.output) and not is_grey(outputs[False][0].output)
