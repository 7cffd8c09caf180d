"""``Denoiser.denoise_region``: a region of the output from the region plus its context, equal
to the whole run's crop for the networks (within 1/255), close to it for CBM3D."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import denoisers
from app_support import needs_nets, smooth_image
from denoisers import NotReadyError
from denoisers.base import MIN_SIZE, Denoiser, context_window
from denoisers.io import to_uint8
from denoisers.metrics import add_noise, psnr

TOLERANCE = 1 / 255


def _noisy(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = smooth_image(h, w, seed)
    return clean, add_noise(clean.astype(np.float32) / 255, 25, seed)


def _boxes(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """Centre, the four borders, the four corners, odd sizes and places, one pixel, everything."""
    return [
        (h // 2 - 5, w // 2 - 6, 11, 13),  # centre
        (0, w // 2 - 4, 9, 7), (h - 7, w // 3, 7, 10), (h // 3, 0, 12, 5), (h // 2, w - 9, 9, 9),  # borders
        (0, 0, 10, 12), (0, w - 13, 13, 13), (h - 8, 0, 8, 15), (h - 11, w - 7, 11, 7),  # corners
        (17, 23, 1, 1), (0, 0, h, w),
    ]


def _assert_region_is_the_crop(d: Denoiser, noisy: np.ndarray, boxes) -> None:
    whole = d.denoise(noisy, 25)
    for top, left, height, width in boxes:
        region = d.denoise_region(noisy, 25, (top, left, height, width))
        assert region.dtype == np.float32 and region.shape == (height, width, 3)
        crop = whole[top:top + height, left:left + width]
        assert np.abs(region - crop).max() <= TOLERANCE, (top, left, height, width)


@pytest.mark.parametrize("shape", [(64, 80), (63, 81)])
@pytest.mark.parametrize("name", ["idresnet", "idgan"])
def test_generator_regions_equal_the_whole_run(name, shape, tiny_generators):
    """Tiny generators (receptive radius 7, the margin) leave most of a 64x80 image outside
    each window, so the margin, not the whole image, is what makes them equal; their windows
    are run without padding inside the image (``forward_region``), padded where a window meets
    the image's border."""
    d = denoisers.get(name, device="cpu", precision="fp32")
    margin, align = d.region_context(25)
    assert (margin, align) == (7, 1)
    _, noisy = _noisy(*shape)
    _assert_region_is_the_crop(d, noisy, _boxes(*shape))


@needs_nets
@pytest.mark.parametrize("shape", [(64, 80), (67, 93)])
@pytest.mark.parametrize("name", ["dncnn", "ffdnet"])
def test_released_network_regions_equal_the_whole_run(name, shape):
    d = denoisers.get(name, device="cpu")
    _, noisy = _noisy(*shape, seed=1)
    _assert_region_is_the_crop(d, noisy, _boxes(*shape))


@pytest.mark.parametrize("name", ["idresnet", "idgan"])
def test_bundled_generators_at_their_default_precision(name):
    """The bundled 32-block networks (margin 73, their receptive radius) on an image wider than
    two margins, in the precision ``denoise`` uses (bf16 for IDResNet on the CPU)."""
    d = denoisers.get(name, device="cpu")
    if not d.readiness(25).ready:
        pytest.skip(f"{name}: {d.readiness(25).reason}")
    assert d.region_context(25) == (73, 1)
    _, noisy = _noisy(67, 195, seed=2)
    boxes = [(30, 90, 11, 13), (58, 0, 9, 10)]  # the middle, a corner
    windows = [context_window(b, 73, 1, noisy.shape) for b in boxes]
    assert all(right - left < 195 for _, left, _, right in windows)  # not the whole image
    _assert_region_is_the_crop(d, noisy, boxes)


@needs_nets
def test_ffdnet_windows_start_on_its_2x2_grid():
    """FFDNet's windows start at even coordinates: the same boxes run one pixel off the grid
    give other values, so the alignment is what keeps them equal."""
    d = denoisers.get("ffdnet", device="cpu")
    assert d.region_context(25) == (32, 2)
    _, noisy = _noisy(67, 93, seed=3)
    box = (30, 41, 5, 9)
    window = context_window(box, 32, 2, noisy.shape)
    assert window[0] % 2 == 0 and window[1] % 2 == 0
    whole = d.denoise(noisy, 25)[30:35, 41:50]
    shifted = d.denoise(noisy[1:, 1:], 25)[29:34, 40:49]  # the grid moved by one pixel
    assert np.abs(shifted - whole).max() > TOLERANCE
    assert np.abs(d.denoise_region(noisy, 25, box) - whole).max() <= TOLERANCE


def test_cbm3d_region_is_close_to_the_whole_run():
    """CBM3D from the window plus the whole image's statistics: close to the whole run's crop
    (block matching near the window's edge sees less). On this small synthetic image the four
    24x24 crops come within 0.07 dB of it (margin 24; with 36 one came 0.19 dB below); the
    0.1 dB bound on 96x96 Kodak24 crops is measured by scripts/region_accuracy.py
    (docs/region.md)."""
    d = denoisers.get("cbm3d")
    if not d.readiness(25).ready:
        pytest.skip(d.readiness(25).reason)
    clean, noisy = _noisy(130, 150, seed=4)
    whole = d.denoise(noisy, 25)
    for top, left in ((50, 60), (0, 0), (106, 126), (0, 70)):
        box = (top, left, 24, 24)
        window = context_window(box, d.region_margin, d.region_align, noisy.shape)
        assert (window[2] - window[0]) * (window[3] - window[1]) < 130 * 150  # not the whole image
        region = d.denoise_region(noisy, 25, box)
        crop = (slice(top, top + 24), slice(left, left + 24))
        assert abs(psnr(clean[crop], to_uint8(region)) - psnr(clean[crop], to_uint8(whole[crop]))) < 0.15
        assert np.abs(region - whole[crop]).mean() < 1 / 255


class _Smooth(Denoiser):
    """A 5x5 mean filter (reach 2) that records the shapes it was given."""

    name, label = "smooth", "Smooth"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def _denoise(self, noisy, sigma):
        self.shapes.append(noisy.shape)
        return ndimage.uniform_filter(noisy, size=(5, 5, 1), mode="reflect")


class _SmoothWithMargin(_Smooth):
    region_margin = 2


def test_a_method_that_declares_no_margin_gets_the_whole_image():
    d = _Smooth()
    _, noisy = _noisy(40, 50)
    region = d.denoise_region(noisy, 25, (10, 20, 5, 6))
    assert d.shapes == [noisy.shape]
    np.testing.assert_array_equal(region, d.denoise(noisy, 25)[10:15, 20:26])


def test_a_declared_margin_is_used_and_the_window_is_never_under_the_minimum():
    d = _SmoothWithMargin()
    _, noisy = _noisy(40, 50)
    whole = d.denoise(noisy, 25)
    for box in [(10, 20, 15, 18), (0, 0, 3, 3), (37, 47, 3, 3), (20, 0, 14, 1)]:
        d.shapes.clear()
        region = d.denoise_region(noisy, 25, box)
        h, w = d.shapes[0][:2]
        assert MIN_SIZE <= h < 40 and MIN_SIZE <= w < 50
        top, left, height, width = box
        np.testing.assert_allclose(region, whole[top:top + height, left:left + width], atol=1e-6)
    assert d.shapes == [(18, 16, 3)]  # the last box: 2 + 14 + 2 rows; 1 + 2 columns, grown to 16


def test_a_bad_margin_from_a_method_is_its_error():
    class Bad(_Smooth):
        region_margin = -1

    with pytest.raises(RuntimeError, match="Smooth: region_context gave margin -1"):
        Bad().denoise_region(_noisy(40, 50)[1], 25, (0, 0, 4, 4))


@pytest.mark.parametrize("box", [
    (0, 0, 0, 5), (0, 0, 5, 0), (0, 0, -3, 5), (-1, 0, 5, 5), (0, -1, 5, 5),  # empty or negative
    (0, 0, 41, 5), (0, 0, 5, 51), (36, 0, 5, 5), (0, 46, 5, 5), (40, 0, 1, 1),  # outside the 50x40 image
    (0, 0, 5), (0, 0, 5, 5, 5), (), None, 5, "0,0,5,5",  # not four values
    (0.0, 0, 5, 5), (0, 0, 5.5, 5), (True, 0, 5, 5), ("0", 0, 5, 5), (0, 0, None, 5),  # not whole numbers
])
def test_bad_boxes_are_refused_naming_the_accepted_form(box):
    d = _Smooth()
    with pytest.raises(ValueError, match=r"\(top, left, height, width\): four whole numbers"):
        d.denoise_region(_noisy(40, 50)[1], 25, box)
    assert d.shapes == []  # refused before any work


def test_numpy_integers_and_lists_are_boxes():
    d = _SmoothWithMargin()
    noisy = _noisy(40, 50)[1]
    by_list = d.denoise_region(noisy, 25, [np.int64(3), np.int32(4), 5, 6])
    np.testing.assert_array_equal(by_list, d.denoise_region(noisy, 25, (3, 4, 5, 6)))


def test_bad_inputs_and_unready_methods_as_denoise(monkeypatch):
    d = _Smooth()
    with pytest.raises(ValueError, match="float32"):
        d.denoise_region(np.zeros((40, 50, 3)), 25, (0, 0, 4, 4))
    with pytest.raises(ValueError, match="sigma"):
        d.denoise_region(_noisy(40, 50)[1], 0, (0, 0, 4, 4))
    monkeypatch.setattr(denoisers.weights, "entries_for", lambda method: [])
    with pytest.raises(NotReadyError, match="not trained"):
        denoisers.get("idresnet").denoise_region(_noisy(40, 50)[1], 25, (0, 0, 4, 4))


def test_cbm3d_window_gets_the_whole_range_far_from_the_region():
    """bm3d scales its block-matching threshold by the range of the channel it matches on: the
    window is given the whole image's min and max, in two pixels far from the region."""
    from denoisers.cbm3d import _with_range

    whole = np.random.default_rng(5).uniform(0.2, 0.8, (60, 70))
    whole[3, 4], whole[50, 60] = 0.0, 1.0
    window, box = (10, 20, 50, 66), (30, 40, 10, 10)
    part = whole[10:50, 20:66]
    out = _with_range(part, whole, window, box)
    assert (out.min(), out.max()) == (0.0, 1.0)
    changed = np.argwhere(out != part) + (10, 20)
    assert len(changed) == 2 and all(max(r - 39, 30 - r, c - 49, 40 - c) >= 20 for r, c in changed)
    np.testing.assert_array_equal(part, whole[10:50, 20:66])  # the input is left alone


@pytest.mark.parametrize("window", [(20, 24, 60, 70), (0, 24, 60, 70), (20, 0, 64, 70), (0, 0, 48, 80),
                                    (10, 30, 48, 80), (0, 0, 48, 31)])
def test_generator_forward_region_gives_the_whole_images_values(window):
    """``forward_region`` on a window of a 48x80 input: the window less the receptive radius on
    each side inside the image, equal to ``forward`` on the whole input there (random weights:
    a check of the arithmetic, not of a trained network)."""
    import torch
    from denoisers.nets.idresnet import IDResNetGenerator

    torch.manual_seed(0)
    model = IDResNetGenerator(blocks=2, channels=8, head_kernel=5).eval()
    for act in (m for m in model.modules() if isinstance(m, torch.nn.PReLU)):
        torch.nn.init.uniform_(act.weight, -0.5, 0.5)  # slopes that matter, not PReLU's 0.25 everywhere
    x = torch.rand(1, 3, 48, 80)
    top, left, bottom, right = window
    bottom, right = min(bottom, 48), min(right, 80)
    at_border = (top == 0, bottom == 48, left == 0, right == 80)
    r = model.receptive_radius
    with torch.no_grad():
        whole = model(x)
        part = model.forward_region(x[..., top:bottom, left:right], at_border)
    t, b = top + r * (not at_border[0]), bottom - r * (not at_border[1])
    l, rr = left + r * (not at_border[2]), right - r * (not at_border[3])
    assert part.shape[-2:] == (b - t, rr - l)
    assert torch.allclose(part, whole[..., t:b, l:rr], atol=1e-5)


def test_cbm3d_channels_side_by_side_equal_bm3ds_multichannel_call():
    """A region's channels 1 and 2 run side by side with channel 0's block matches: the same
    numbers as bm3d's own multichannel call (up to float rounding), twice in a row (bm3d's
    thread pool is launched by one call at a time)."""
    bm3d = pytest.importorskip("bm3d")
    from denoisers.cbm3d import _bm3d_channels

    rng = np.random.default_rng(5)
    part = (np.linspace(0, 1, 40 * 44 * 3).reshape(40, 44, 3) + rng.normal(0, 0.1, (40, 44, 3))).astype(np.float32)
    sigmas = np.array([0.1, 0.06, 0.08])
    expected = bm3d.bm3d(part, sigmas.reshape(1, 1, 3))
    for _ in range(2):
        out = _bm3d_channels(part, sigmas)
        assert out.shape == part.shape
        np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.abs(out - part).mean() > 0.03  # it filtered: the noise (0.1) is mostly gone


def test_cbm3d_profile_overrides_take_effect_and_are_undone():
    """The measurement scripts' hook: the settings reach bm3d in the block (one thread per
    call gives the same numbers twice; fewer noise-statistics layers give others), bm3d's
    defaults are back after it, an error inside included, and bad settings change nothing."""
    bm3d = pytest.importorskip("bm3d")
    from denoisers.cbm3d import CBM3D, profile_overrides

    rng = np.random.default_rng(7)
    noisy = (np.linspace(0.2, 0.8, 36 * 40 * 3).reshape(36, 40, 3) + rng.normal(0, 0.1, (36, 40, 3))).astype(np.float32)
    d = CBM3D()
    defaults = (bm3d.BM3DProfile.nf, bm3d.BM3DProfile.k, bm3d.BM3DProfile.num_threads)
    with profile_overrides(num_threads=1):
        assert bm3d.BM3DProfile().num_threads == 1
        one = d.denoise(noisy, 25.0)
        np.testing.assert_array_equal(d.denoise(noisy, 25.0), one)
        with profile_overrides(k=1):
            fewer = d.denoise(noisy, 25.0)
    assert np.abs(fewer - one).max() > 1e-4
    with pytest.raises(RuntimeError), profile_overrides(nf=16):
        raise RuntimeError("inside")
    for bad in ({"nf": 24}, {"nf": 16, "no_such_setting": 1}):
        with pytest.raises(ValueError), profile_overrides(**bad):
            pass
    assert (bm3d.BM3DProfile.nf, bm3d.BM3DProfile.k, bm3d.BM3DProfile.num_threads) == defaults
