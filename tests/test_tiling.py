"""The tiling path equals the untiled run where both fit, with no seams."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import denoisers
from denoisers.io import to_uint8
from denoisers.metrics import add_noise, psnr
from denoisers.tiling import run_tiled


def _image(h: int = 150, w: int = 203) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    clean = np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 11.0)], 2) * 0.4 + 0.5
    clean_u8 = to_uint8(clean)
    return clean_u8, add_noise(clean_u8.astype(np.float32) / 255, 25, 0)


@pytest.mark.parametrize("name", ["dncnn", "ffdnet", "idresnet"])
def test_tiled_equals_untiled(name, weights_mirror, tiny_generators):
    clean, noisy = _image()
    d = denoisers.get(name, device="cpu", precision="fp32")
    whole = d.denoise(noisy, 25)
    tiled = d.denoise_tiled(noisy, 25, tile=48)
    assert abs(psnr(clean, to_uint8(whole)) - psnr(clean, to_uint8(tiled))) < 0.01
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_blending_hides_seams_when_the_margin_is_short():
    """A 5x5 box blur (radius 2) with no margin: tiles differ from the untiled run only near
    their inner borders, and the blend keeps every tile's error small and smooth."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 90)
    blur = torch.nn.Conv2d(3, 3, 5, padding=2, groups=3, bias=False)
    blur.weight.data.fill_(1 / 25)
    with torch.no_grad():
        whole = blur(x)
        exact = run_tiled(blur, x, tile=32, overlap=8, margin=2)
        short = run_tiled(blur, x, tile=32, overlap=8, margin=0)
    torch.testing.assert_close(exact, whole)
    assert (short - whole).abs().max() < 0.25
    assert (short - whole).abs().mean() < 0.01


def test_tiles_cover_the_image_once_in_weight():
    x = torch.rand(1, 3, 77, 131)
    ident = run_tiled(lambda t: t, x, tile=32, overlap=8, margin=4)
    torch.testing.assert_close(ident, x)
    with pytest.raises(ValueError, match="overlap"):
        run_tiled(lambda t: t, x, tile=8, overlap=8)


def test_large_images_go_through_tiles(weights_mirror, monkeypatch):
    """Above the pixel threshold the tiling path is taken (bounded memory)."""
    calls = []
    import denoisers.base as base

    real = base.run_tiled
    monkeypatch.setattr(base, "run_tiled", lambda *a, **k: calls.append(k) or real(*a, **k))
    d = denoisers.get("ffdnet", device="cpu", precision="fp32")
    monkeypatch.setattr(type(d), "tile_above_pixels", 64 * 64)
    _, noisy = _image(80, 90)
    d.denoise(noisy, 25)
    assert calls and calls[0]["margin"] >= 25


def test_aligned_windows_cover_without_duplicates():
    from denoisers.tiling import _windows

    for length in (993, 992, 1000, 513, 600):
        windows = _windows(length, 512, 480, 2)
        assert len(set(windows)) == len(windows), windows
        assert windows[0][0] == 0 and windows[-1][1] == length
        assert all(start % 2 == 0 for start, _ in windows)
        assert all(b[0] < a[1] for a, b in zip(windows, windows[1:]))  # consecutive windows overlap
