"""The upload path: every kind of image a user may drop, through ``session.source_from_upload``."""

import numpy as np
import pytest
from PIL import Image

from app import convert, session
from app.convert import InputError
from app_support import png_bytes, smooth_image
from denoisers.metrics import estimate_noise_sigma

MAXPX = convert.MAX_PIXELS


def upload(data: bytes, tmp_path, name="up.png", **kw):
    path = tmp_path / name
    path.write_bytes(data)
    return session.source_from_upload(str(path), kw.pop("max_pixels", MAXPX), **kw)


def test_rgb_png_is_read_exactly(tmp_path):
    img = smooth_image()
    src = upload(png_bytes(img), tmp_path)
    assert src.image.dtype == np.uint8 and np.array_equal(src.image, img)
    assert src.image_id == convert.image_id(img) and src.name == "upload-up"


def test_an_upload_is_named_after_its_file_but_never_as_a_kodak_image():
    assert session.upload_name("/tmp/gradio/abc/my photo (1).png") == "upload-my_photo_1"
    assert session.upload_name("/tmp/kodim05.png") == "upload-kodim05"  # a link names Kodak images only
    assert session.upload_name(b"\x89PNG") == "upload" and session.upload_name("/tmp/!!!.png") == "upload"


def test_greyscale_becomes_three_equal_channels(tmp_path):
    grey = smooth_image()[..., 0]
    src = upload(png_bytes(Image.fromarray(grey, "L")), tmp_path)
    assert src.image.shape == grey.shape + (3,)
    assert all(np.array_equal(src.image[..., c], grey) for c in range(3))


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:20, :, 3] = 255  # top half opaque red, bottom half transparent
    src = upload(png_bytes(Image.fromarray(rgba, "RGBA")), tmp_path)
    assert (src.image[:20] == [200, 0, 0]).all()
    assert (src.image[20:] == 255).all()


def test_16bit_is_scaled_to_8bit(tmp_path):
    arr = (np.arange(48 * 48).reshape(48, 48) * 28).astype(np.uint16)
    src = upload(png_bytes(Image.fromarray(arr)), tmp_path)
    expected = np.round(arr / 65535 * 255).astype(np.uint8)
    assert np.abs(src.image[..., 0].astype(int) - expected).max() <= 1
    assert src.image[..., 0].max() > 200  # really scaled, not clipped at 255 nor truncated


def test_palette_image(tmp_path):
    img = Image.fromarray(smooth_image()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    src = upload(png_bytes(img), tmp_path)
    assert np.array_equal(src.image, np.asarray(img.convert("RGB")))


def test_cmyk_jpeg(tmp_path):
    img = Image.fromarray(smooth_image()).convert("CMYK")
    src = upload(png_bytes(img, format="JPEG", quality=95), tmp_path, name="up.jpg")
    assert src.image.shape == (64, 80, 3)
    assert np.abs(src.image.astype(int) - smooth_image().astype(int)).mean() < 12


def test_exif_rotation_is_applied(tmp_path):
    img = Image.fromarray(smooth_image(40, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = png_bytes(img, format="JPEG", quality=95, exif=exif.tobytes())
    src = upload(data, tmp_path, name="rot.jpg")
    assert src.image.shape == (60, 40, 3)


@pytest.mark.parametrize("data", [b"not an image at all", png_bytes(smooth_image())[:60], b""])
def test_corrupted_or_non_image_gives_a_clear_message(tmp_path, data):
    with pytest.raises(InputError, match="not a readable image|is an empty file") as info:
        upload(data, tmp_path, name="secret_server_name.png")
    assert str(tmp_path) not in str(info.value)  # no server paths echoed back


def test_tiny_images_are_refused(tmp_path):
    with pytest.raises(InputError, match="at least 32 pixels"):
        upload(png_bytes(smooth_image(31, 100)), tmp_path)
    assert upload(png_bytes(smooth_image(32, 32)), tmp_path).image.shape == (32, 32, 3)


def test_over_the_pixel_limit_is_refused_or_downscaled(tmp_path):
    data = png_bytes(smooth_image(100, 200))
    with pytest.raises(InputError, match=r"over the limit.*tick 'Downscale uploads over 0\.005 MP'"):
        upload(data, tmp_path, max_pixels=5000)
    src = upload(data, tmp_path, max_pixels=5000, downscale=True)
    h, w = src.image.shape[:2]
    assert h * w <= 5000 and abs(w / h - 2) < 0.1
    assert "downscaled from 200x100" in src.note


def test_missing_upload():
    with pytest.raises(InputError, match="no file"):
        session.source_from_upload(None, MAXPX)


@pytest.mark.parametrize("bad", [4.9, 75.1, -1, "abc", None, float("nan")])
def test_sigma_out_of_range_is_refused(bad):
    with pytest.raises(InputError, match="sigma"):
        convert.check_sigma(bad)


def test_sigma_and_seed_in_range():
    assert convert.check_sigma("25") == 25.0 and convert.check_sigma(5) == 5.0 and convert.check_sigma(75) == 75.0
    assert convert.check_seed(3.0) == 3 and convert.check_seed(" 7 ") == 7
    big = 2**53 - 1  # taken exactly, whether it comes as a number or as text (a link)
    assert convert.check_seed(big) == big and convert.check_seed(str(big)) == big and convert.check_seed(float(big)) == big
    # 2**53 + 1 reaches the server as the float 2**53: no seed may be read from a rounded number.
    for bad in (-1, 1.5, "x", True, float(2**53 + 1), 2**53, str(2**70), float("nan"), float("inf"), None,
                "²", "٣", "9" * 5000):  # digits to str.isdigit, not to int() (or too long for it)
        with pytest.raises(InputError, match=r"seed must be a whole number from 0 to 9007199254740991"):
            convert.check_seed(bad)


def test_image_id_depends_on_pixels_and_shape():
    a = smooth_image()
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert convert.image_id(a) == convert.image_id(a.copy())
    assert convert.image_id(a) != convert.image_id(b)
    assert convert.image_id(a) != convert.image_id(a.reshape(80, 64, 3))


@pytest.mark.parametrize("sigma", [15, 40])
def test_estimated_sigma_is_close(sigma):
    clean = np.full((128, 128, 3), 128, np.uint8)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)
    assert estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)
    src = session.Source("upload", noisy, convert.image_id(noisy))
    chosen, note = session.suggested_sigma(src)
    assert chosen == pytest.approx(sigma, abs=2) and "estimated" in note


def test_a_grey_noisy_upload_is_told_the_networks_expect_colour_noise():
    grey = np.repeat(np.clip(128 + np.random.default_rng(2).normal(0, 25, (64, 64, 1)), 0, 255).round(), 3, axis=2)
    src = session.Source("upload-grey", grey.astype(np.uint8), "id")
    assert "same in all three channels" in session.suggested_sigma(src)[1]
    colour = session.Source("upload", _clipped_noise(np.full((64, 64, 3), 128.0), 25), "id")
    assert "same in all three channels" not in session.suggested_sigma(colour)[1]


def _clipped_noise(clean: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0, sigma, clean.shape)
    return np.clip(clean + noise, 0, 255).round().astype(np.uint8)


def _whole_image_estimate(noisy: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(noisy / 255.0, channel_axis=-1, average_sigmas=True)) * 255.0


@pytest.mark.parametrize("sigma", [25, 50])
def test_estimated_sigma_is_not_pulled_down_by_clipped_areas(sigma):
    # Near-black and near-white thirds, where clipping leaves about half the noise or none.
    clean = np.zeros((128, 160, 3))
    clean[:, :50], clean[:, 50:100] = 3, 252
    clean[:, 100:] = np.linspace(90, 170, 60)[None, :, None]
    noisy = _clipped_noise(clean, sigma)
    assert _whole_image_estimate(noisy) < 0.75 * sigma  # what the whole-image estimate does
    assert estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.06)


@pytest.mark.parametrize("sigma", [5, 10])
def test_estimated_sigma_is_not_pushed_up_by_texture(sigma):
    from scipy import ndimage

    texture = ndimage.gaussian_filter(np.random.default_rng(3).normal(0, 1, (128, 80)), 0.7)
    clean = np.full((128, 160, 3), 128.0)
    clean[:, :80] = (128 + 60 * texture / texture.std())[..., None]
    noisy = _clipped_noise(clean, sigma)
    assert _whole_image_estimate(noisy) > 1.4 * sigma
    assert estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.06)


def test_estimated_sigma_of_a_grey_image_and_a_tiny_one():
    grey = _clipped_noise(np.full((40, 40), 128.0), 20)  # 2-D
    assert estimate_noise_sigma(grey) == pytest.approx(20, rel=0.1)
    assert estimate_noise_sigma(np.full((32, 32, 3), 200, np.uint8)) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("value", [2**1100, -(2**1100), "1e400", float("inf"), float("nan"), "x" * 100_000])
def test_huge_or_odd_sigmas_get_the_range_message_shortly(value):
    with pytest.raises(InputError, match="sigma must be") as caught:
        convert.check_sigma(value)
    assert len(str(caught.value)) < 150  # a long value is not echoed back whole


@pytest.mark.parametrize("value", [2**1100, 1e400, "9" * 100_000])
def test_huge_seeds_get_the_range_message_shortly(value):
    with pytest.raises(InputError, match="seed must be a whole number") as caught:
        convert.check_seed(value)
    assert len(str(caught.value)) < 150
