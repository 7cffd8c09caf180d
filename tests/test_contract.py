"""The denoiser contract, over every registered method (as timm tests run over list_models)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import denoisers
from denoisers import NotReadyError
from denoisers.base import same_output
from denoisers.io import to_uint8

ALL = denoisers.names()


def test_names_in_display_order():
    assert ALL == ["idresnet", "idgan", "dncnn", "ffdnet", "cbm3d"]


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown denoiser"):
        denoisers.get("nlm")


@pytest.mark.parametrize("name", ALL)
def test_building_loads_nothing(name, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("weights were loaded or downloaded while building")

    monkeypatch.setattr(torch, "load", fail)
    monkeypatch.setattr(denoisers.fetch.urllib.request, "urlopen", fail)
    d = denoisers.get(name)
    assert d.name == name and d.label
    assert isinstance(d.readiness().reason, str) and isinstance(d.readiness(25).ready, bool)


@pytest.mark.parametrize("name", ["idresnet", "idgan"])
def test_untrained_generators_are_not_ready_and_refuse(name, noisy_image, monkeypatch):
    monkeypatch.setattr(denoisers.weights, "entries_for", lambda method: [])  # a manifest without them
    d = denoisers.get(name)
    status = d.readiness(25)
    assert not status.ready and "not trained" in status.reason
    with pytest.raises(NotReadyError, match="not trained"):
        d.denoise(noisy_image, 25)


def _ready(name: str) -> denoisers.Denoiser:
    d = denoisers.get(name)
    if not d.readiness(25).ready:
        pytest.skip(f"{name}: {d.readiness(25).reason}")
    return d


@pytest.fixture(params=ALL)
def ready_denoiser(request, weights_mirror, tiny_generators):
    return _ready(request.param)


@pytest.mark.parametrize("shape", [(40, 48), (17, 23), (16, 31)])
def test_shape_dtype_range(ready_denoiser, shape):
    rng = np.random.default_rng(0)
    noisy = (0.5 + rng.normal(0, 0.2, shape + (3,))).astype(np.float32)
    assert noisy.min() < 0 and noisy.max() > 1  # unclipped input
    out = ready_denoiser.denoise(noisy, 25)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_deterministic(ready_denoiser, noisy_image):
    a = ready_denoiser.denoise(noisy_image, 30)
    b = ready_denoiser.denoise(noisy_image, 30)
    assert ready_denoiser.bit_exact == (ready_denoiser.name != "cbm3d")
    if not ready_denoiser.bit_exact:
        # bm3d runs multi-threaded (its default, for speed) and its aggregation then sums in
        # a varying order: outputs agree to ~1e-6, and where that tips a near-tie in block
        # matching a few values move by ~1e-4 (0.03 of an 8-bit step; seen under load).
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=0)
        assert same_output(to_uint8(a), to_uint8(b), bit_exact=False)
    else:
        np.testing.assert_array_equal(a, b)


def test_input_is_not_modified(ready_denoiser, noisy_image):
    before = noisy_image.copy()
    ready_denoiser.denoise(noisy_image, 25)
    np.testing.assert_array_equal(before, noisy_image)


BAD_ARRAYS = {
    "float64": lambda x: x.astype(np.float64),
    "uint8": lambda x: (np.clip(x, 0, 1) * 255).astype(np.uint8),
    "grey": lambda x: x[..., 0],
    "rgba": lambda x: np.concatenate([x, x[..., :1]], axis=2),
    "chw": lambda x: np.ascontiguousarray(x.transpose(2, 0, 1)),
    "batch": lambda x: x[None],
    "tiny": lambda x: x[:15],
    "nan": lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x).astype(np.float32),
    "inf": lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.inf, x).astype(np.float32),
    "list": lambda x: x.tolist(),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", list(BAD_ARRAYS))
def test_bad_arrays_are_refused(name, bad, noisy_image):
    with pytest.raises(ValueError):
        denoisers.get(name).denoise(BAD_ARRAYS[bad](noisy_image), 25)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sigma", [0, -5, 100.5, 255, float("nan"), float("inf"), "abc", None])
def test_bad_sigma_is_refused(name, sigma, noisy_image):
    with pytest.raises(ValueError, match="sigma"):
        denoisers.get(name).denoise(noisy_image, sigma)


def test_generators_pick_the_nearest_trained_sigma(tiny_generators):
    d = denoisers.get("idresnet")
    assert d.readiness(25).ready and d.readiness(25).reason == ""
    note = d.readiness(35).reason
    assert "not trained for sigma 35; uses the network trained for sigma 25" in note
    assert "trained for sigma 50" in d.readiness(45).reason
    assert d.weights_id(30) != d.weights_id(45)
    assert d.readiness().reason == "trained for sigma 25, 50"


def test_a_network_trained_over_a_range_serves_all_of_it(tiny_generators):
    manifest = json.loads(denoisers.weights.MANIFEST.read_text())
    manifest["idresnet_s50"]["sigma_range"] = [40, 55]
    denoisers.weights.MANIFEST.write_text(json.dumps(manifest))
    denoisers.weights.manifest.cache_clear()
    d = denoisers.get("idresnet")
    assert d.readiness(40).ready and d.readiness(40).reason == ""  # inside the range: no caveat
    assert d.weights_id(40) == d.weights_id(50) != d.weights_id(36)  # 36: nearer 25, outside 40-55
    assert "trained for sigma 40-55" in d.readiness(60).reason
    assert d.readiness().reason == "trained for sigma 25, 40-55"
    manifest["idresnet_s50"]["sigma_range"] = [55, 40]
    denoisers.weights.MANIFEST.write_text(json.dumps(manifest))
    denoisers.weights.manifest.cache_clear()
    with pytest.raises(ValueError, match="sigma_range"):
        denoisers.weights.manifest()


def test_corrupted_bundled_generator_is_refused(tiny_generators, noisy_image):
    path = tiny_generators["idgan_s25"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(denoisers.weights.WeightsError, match="expected"):
        denoisers.get("idgan").denoise(noisy_image, 25)


def test_same_output_allows_only_what_a_method_promises():
    a = np.zeros((40, 50, 3), np.uint8)
    b = a.copy()
    b[0, :4, 0] = 1  # 4 of 6000 values one step apart
    assert same_output(a, a) and not same_output(a, b)
    assert same_output(a, b, bit_exact=False)
    b[0, 0, 0] = 2  # two steps
    assert not same_output(a, b, bit_exact=False)
    b[:, :, :] = a
    b[:2, :, 0] = 1  # 100 values: over 0.5%
    assert not same_output(a, b, bit_exact=False) and not same_output(a, a[:-1], bit_exact=False)


def test_cbm3d_denoises_a_grey_image_as_grey():
    """Equal channels (a noisy grey photo): bm3d_rgb would return all NaN, which 8 bits showed
    as a black image. Plain BM3D on the one channel denoises it."""
    d = _ready("cbm3d")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    clean = (0.3 + 0.4 * ((xx + yy) > 1)).astype(np.float32)
    noisy = np.repeat((clean + rng.normal(0, 25 / 255, clean.shape))[..., None], 3, axis=2).astype(np.float32)
    out = d.denoise(noisy, 25)
    assert np.isfinite(out).all() and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    noisy_err = float(np.mean((np.clip(noisy[..., 0], 0, 1) - clean) ** 2))
    assert float(np.mean((out[..., 0] - clean) ** 2)) < noisy_err / 4  # over 6 dB better than the input


def test_a_method_returning_nan_is_an_error_not_a_black_image(noisy_image):
    class Broken(denoisers.Denoiser):
        name, label = "broken", "Broken"

        def readiness(self, sigma=None):
            return denoisers.Readiness(True)

        def _denoise(self, noisy, sigma):
            out = noisy.copy()
            out[0, 0, 0] = np.nan
            return out

    with pytest.raises(RuntimeError, match="Broken returned NaN"):
        Broken().denoise(noisy_image, 25)
