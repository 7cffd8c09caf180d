"""The evaluation protocol and image reading."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile
from scipy import ndimage

from denoisers.io import ImageReadError, read_image, to_float, to_uint8
from denoisers.metrics import add_noise, detail_ratio, high_frequency_energy, psnr, score, ssim


def test_noise_follows_the_protocol():
    clean = np.full((8, 9, 3), 0.5, np.float32)
    noisy = add_noise(clean, 25, seed=3)
    expected = np.random.default_rng(3).normal(0.0, 25 / 255, clean.shape).astype(np.float32)
    assert noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy, clean + expected)


def test_noise_is_not_clipped():
    noisy = add_noise(np.zeros((32, 32, 3), np.float32), 50, 0)
    assert noisy.min() < 0


def test_quantisation_clips_then_rounds():
    x = np.array([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 0.999, 1.3], np.float32)
    assert to_uint8(x).tolist() == [0, 0, 0, 2, 255, 255]  # numpy rounds half to even


def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # mse = 255^2 / 48
    assert psnr(a, b) == pytest.approx(10 * np.log10(48))
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="uint8"):
        psnr(a.astype(np.float32), b)
    with pytest.raises(ValueError, match="shapes"):
        psnr(a, b[:2])


def test_score_rounds_the_output_first():
    clean = (np.arange(48 * 48 * 3) % 256).astype(np.uint8).reshape(48, 48, 3)
    output = to_float(clean) + 0.4 / 255  # rounds back to clean
    p, s = score(clean, output)
    assert p == float("inf") and s == pytest.approx(1.0)
    assert ssim(clean, clean) == pytest.approx(1.0)


def _png(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_high_frequency_energy_known_values():
    assert high_frequency_energy(np.full((9, 9, 3), 77, np.uint8)) == 0.0  # flat: no detail
    dot = np.zeros((9, 9, 3), np.uint8)
    dot[4, 4] = 255  # white: luminance 255; the Laplacian is -4*255 there and 255 at 4 neighbours
    assert high_frequency_energy(dot) == pytest.approx(20 * 255.0**2 / 81)
    red = np.zeros((9, 9, 3), np.uint8)
    red[4, 4, 0] = 255  # only red: luminance 0.299 * 255
    assert high_frequency_energy(red) == pytest.approx(20 * (0.299 * 255) ** 2 / 81)
    assert high_frequency_energy(dot[..., 0]) == pytest.approx(high_frequency_energy(dot))  # grey


def test_high_frequency_energy_falls_with_smoothing_and_rises_with_noise():
    y, x = np.mgrid[0:64, 0:64]
    image = np.repeat((128 + 60 * np.sin(x / 2.0) * np.cos(y / 3.0))[..., None], 3, axis=2)
    clean = to_uint8(image / 255)
    blurred = to_uint8(ndimage.uniform_filter(image, size=(3, 3, 1), mode="reflect") / 255)
    noisy = to_uint8(add_noise(to_float(clean), 15, 0))
    assert high_frequency_energy(blurred) < high_frequency_energy(clean) < high_frequency_energy(noisy)
    assert detail_ratio(clean, blurred) == pytest.approx(high_frequency_energy(blurred) / high_frequency_energy(clean))
    assert detail_ratio(clean, clean) == 1.0
    assert detail_ratio(clean, blurred, high_frequency_energy(clean)) == detail_ratio(clean, blurred)
    assert detail_ratio(np.full_like(clean, 9), clean) is None  # a flat image has no detail to keep
    with pytest.raises(ValueError, match="uint8"):
        high_frequency_energy(image)
    with pytest.raises(ValueError, match="H x W"):
        high_frequency_energy(clean[..., :2])


def test_read_conversions():
    rgb = Image.new("RGB", (40, 30), (10, 200, 30))
    assert read_image(_png(rgb))[0, 0].tolist() == [10, 200, 30]
    assert read_image(_png(Image.new("L", (40, 30), 77)))[5, 5].tolist() == [77, 77, 77]
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))  # fully transparent -> white
    assert read_image(_png(rgba))[0, 0].tolist() == [255, 255, 255]
    half = Image.new("RGBA", (40, 30), (0, 0, 0, 128))
    assert read_image(_png(half))[0, 0].tolist() == [127, 127, 127]
    sixteen = Image.fromarray(np.full((30, 40), 257 * 100, np.uint16))
    assert read_image(_png(sixteen))[0, 0].tolist() == [100, 100, 100]
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    assert read_image(_png(palette))[0, 0].tolist() == [10, 200, 30]
    cmyk = Image.new("CMYK", (40, 30), (0, 0, 0, 0))
    assert read_image(_png(cmyk, "JPEG", quality=100))[0, 0].tolist() == [255, 255, 255]


def test_images_whose_range_the_file_does_not_say_are_refused_not_guessed(tmp_path):
    """A 16-bit greyscale PGM (Pillow's mode "I") is 16-bit even when dark; a 32-bit integer
    TIFF or a float TIFF outside 0-1 has no defined range and is refused with the reason."""
    dark = np.full((30, 40), 199, np.uint16)
    (tmp_path / "dark.pgm").write_bytes(b"P5 40 30 65535\n" + dark.astype(">u2").tobytes())
    assert read_image(tmp_path / "dark.pgm")[0, 0].tolist() == [1, 1, 1]  # 199 / 65535 * 255
    Image.fromarray(np.full((30, 40), 4095, np.int32)).save(tmp_path / "twelve.tif")
    with pytest.raises(ImageReadError, match="32-bit integers"):
        read_image(tmp_path / "twelve.tif")
    Image.fromarray(np.full((30, 40), 200.0, np.float32)).save(tmp_path / "float255.tif")
    with pytest.raises(ImageReadError, match="floating-point values from 200 to 200"):
        read_image(tmp_path / "float255.tif")
    Image.fromarray(np.full((30, 40), 0.5, np.float32)).save(tmp_path / "float1.tif")
    assert read_image(tmp_path / "float1.tif")[0, 0].tolist() == [128, 128, 128]
    tifffile = pytest.importorskip("tifffile")  # writes the float RGB TIFF that Pillow cannot open
    tifffile.imwrite(tmp_path / "rgb_float.tif", np.full((30, 40, 3), 0.5, np.float32), photometric="rgb")
    with pytest.raises(ImageReadError, match="a TIFF of a pixel type this tool cannot read"):
        read_image(tmp_path / "rgb_float.tif")


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = read_image(_png(img, "PNG", exif=exif))
    assert out.shape == (40, 20, 3)
    assert out[0, -1].tolist() == [255, 0, 0]
    # A photo over the size limit is described as it is shown (20 wide, 40 high), not as stored.
    with pytest.raises(ImageReadError, match="is 20x40 = "):
        read_image(_png(img, "PNG", exif=exif), max_pixels=100)
    with pytest.raises(ImageReadError, match="is 20x40 = "):
        read_image(_png(img, "JPEG", exif=exif), max_pixels=100)


def test_an_image_over_the_limit_is_refused_without_decoding_it(tmp_path, monkeypatch):
    # A small file can hold a huge image (an all-black 20000x20000 PNG is about 1 MB and
    # decodes to 1.2 GB): the size in the header decides, the pixels are never read.
    for fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        (tmp_path / f"big.{fmt.lower()}").write_bytes(_png(Image.new("RGB", (300, 200)), fmt))

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        with pytest.raises(ImageReadError, match=r"is 300x200 = 0\.06 MP, over the limit of 0\.05 MP"):
            read_image(tmp_path / f"big.{fmt.lower()}", max_pixels=50_000)


def test_bad_files_are_refused_clearly(tmp_path):
    with pytest.raises(ImageReadError, match="not a readable image") as err:
        read_image(b"this is text")
    assert "BufferedReader" not in str(err.value) and "BytesIO" not in str(err.value)
    truncated = _png(Image.new("RGB", (64, 64), (1, 2, 3)))[:60]
    with pytest.raises(ImageReadError):
        read_image(truncated)
    with pytest.raises(ImageReadError, match="cannot open"):
        read_image(tmp_path / "missing.png")
    frames = [Image.new("RGB", (32, 32), (i * 40, 0, 0)) for i in range(3)]
    for fmt in ("GIF", "PNG", "WEBP"):  # which frame would be denoised? none: the user picks one
        with pytest.raises(ImageReadError, match=r"is an animation \(3 frames\)"):
            read_image(_png(frames[0], fmt, save_all=True, append_images=frames[1:]))
    assert read_image(_png(frames[1], "GIF")).shape == (32, 32, 3)  # a still GIF is read
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png is an empty file"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="over the limit"):
        read_image(_png(Image.new("RGB", (100, 100))), max_pixels=5000)


def test_an_image_just_over_the_pixel_limit_is_told_apart_from_it(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (2000, 2001)).save(path)
    with pytest.raises(ImageReadError, match=r"is 2000x2001 = 4\.002 MP, over the limit of 4\.000 MP"):
        read_image(path, max_pixels=4_000_000)
