"""LPIPS and DISTS: safe loading of the weights pickles, input checks, one model per process
built under a lock, and agreement with the original implementations on their example images."""
from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from denoisers import datasets, metrics, perceptual, weights
from denoisers.fetch import verify
from denoisers.io import read_image

EXAMPLES = "lpips_examples"
# LPIPS v0.1 of the PerceptualSimilarity example images (datasets SOURCES.md, lpips_examples).
LPIPS_EXPECTED = {("ex_p0", "alex"): 0.7219, ("ex_p0", "vgg"): 0.5686,
                  ("ex_p1", "alex"): 0.1376, ("ex_p1", "vgg"): 0.4217}
# DISTS of the same pairs as the original DISTS_pytorch 0.1 code gives them with these weights
# (its DISTS_pt.py run on the same VGG16 and alpha/beta; ours agreed to 2e-7).
DISTS_EXPECTED = {"ex_p0": 0.387927, "ex_p1": 0.225024}


class RunsCommand:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"Conv_0": {"kernel": RunsCommand(marker)}}))
    with pytest.raises(perceptual.UnsafePickleError, match="refused to load (posix|os)\\.system"):
        perceptual.read_array_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("global_name", ["builtins.eval", "numpy.load", "torch.load"])
def test_only_numpy_array_rebuilding_is_allowed(tmp_path, global_name):
    module, name = global_name.rsplit(".", 1)
    path = tmp_path / "other.ckpt"
    path.write_bytes(b"\x80\x03c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x00xq\x00\x85q\x01Rq\x02.")
    with pytest.raises(perceptual.UnsafePickleError, match=f"refused to load {global_name}"):
        perceptual.read_array_pickle(path)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_nested_float_arrays_load_with_every_protocol(tmp_path, protocol):
    tree = {"Net_0": {"Conv_0": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
                                 "bias": np.array([0.5, -1.0], np.float32)}}}
    path = tmp_path / "w.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    flat = perceptual.read_array_pickle(path)
    assert sorted(flat) == ["Net_0/Conv_0/bias", "Net_0/Conv_0/kernel"]
    np.testing.assert_array_equal(flat["Net_0/Conv_0/kernel"], tree["Net_0"]["Conv_0"]["kernel"])


def test_truncated_or_odd_pickles_give_weights_errors(tmp_path):
    good = pickle.dumps({"a": np.ones(4, np.float32)})
    (tmp_path / "cut.ckpt").write_bytes(good[:-10])
    with pytest.raises(weights.WeightsError, match="cannot read weights file"):
        perceptual.read_array_pickle(tmp_path / "cut.ckpt")
    (tmp_path / "text.ckpt").write_bytes(pickle.dumps({"a": {"b": "not an array"}}))
    with pytest.raises(weights.WeightsError, match="a/b holds str, not a float array"):
        perceptual.read_array_pickle(tmp_path / "text.ckpt")


def _image(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("metric", [metrics.lpips, metrics.dists])
def test_bad_inputs_name_the_accepted_form(metric):
    a = _image()
    with pytest.raises(ValueError, match="H x W x 3 uint8 RGB"):
        metric(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="H x W x 3 uint8 RGB arrays; the image is uint8 \\(40, 48\\)"):
        metric(a, a[..., 0])
    with pytest.raises(ValueError, match="H x W x 3 uint8 RGB"):
        metric(np.dstack([a, a[..., :1]]), a)
    with pytest.raises(ValueError, match="the reference is list"):
        metric(a.tolist(), a)
    with pytest.raises(ValueError, match="shapes differ"):
        metric(a, _image(40, 40))
    with pytest.raises(ValueError, match="at least 32 x 32 pixels, got 48 x 20"):
        metric(a[:20], a[:20])


def test_unknown_lpips_net_is_refused():
    with pytest.raises(ValueError, match="'alex', 'vgg'.*'squeeze'"):
        metrics.lpips(_image(), _image(), net="squeeze")


def _random_lpips_arrays(net: str) -> dict[str, np.ndarray]:
    """Random weights in the files' layout (HWIO kernels): for code paths, never for values."""
    rng = np.random.default_rng(0)
    prefix, convs = perceptual.TRUNKS[net]
    arrays = {}
    for i, (c_in, c_out, k, _, _) in enumerate(convs):
        arrays[f"{prefix}/Conv_{i}/kernel"] = rng.normal(0, (2 / (c_in * k * k)) ** 0.5, (k, k, c_in, c_out))
        arrays[f"{prefix}/Conv_{i}/bias"] = np.zeros(c_out)
    for i, ch in enumerate(perceptual.TAP_CHANNELS[net]):
        arrays[f"NetLinLayer_{i}/Conv_0/kernel"] = rng.random((1, 1, ch, 1))
    return {k: v.astype(np.float32) for k, v in arrays.items()}


@pytest.fixture
def random_alexnet(monkeypatch):
    """LPIPS-alex with random weights, counting how often its file is read."""
    reads = []

    def load(key):
        reads.append(key)
        return _random_lpips_arrays("alex"), "random test weights"

    perceptual.clear_cache()
    monkeypatch.setattr(perceptual, "_load_arrays", load)
    yield reads
    perceptual.clear_cache()


def test_the_model_is_built_once_for_concurrent_callers(random_alexnet):
    a, b = _image(48, 64, 1), _image(48, 64, 2)
    results, errors = [], []
    start = threading.Barrier(6)

    def call():
        try:
            start.wait(timeout=30)
            results.append(metrics.lpips(a, b))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 6
    assert random_alexnet == ["lpips_alex"]  # read and built once, then shared
    assert max(results) - min(results) < 1e-6 and results[0] > 0
    metrics.lpips(b, a)
    assert random_alexnet == ["lpips_alex"]


def test_a_weights_file_of_the_wrong_shape_is_named(monkeypatch):
    arrays = _random_lpips_arrays("alex")
    arrays["NetLinLayer_2/Conv_0/kernel"] = arrays["NetLinLayer_2/Conv_0/kernel"][:, :, :10]
    monkeypatch.setattr(perceptual, "_load_arrays", lambda key: (arrays, "bad.ckpt"))
    perceptual.clear_cache()
    try:
        with pytest.raises(weights.WeightsError, match="bad.ckpt: NetLinLayer_2/Conv_0/kernel has shape"):
            metrics.lpips(_image(), _image())
    finally:
        perceptual.clear_cache()


def test_l2_pooling_of_a_constant_keeps_it_inside():
    import torch

    x = torch.full((1, 2, 8, 8), 3.0)
    pooled = perceptual.l2_pool(x)
    assert pooled.shape == (1, 2, 4, 4)
    assert torch.allclose(pooled[..., 1:, 1:], torch.full((1, 2, 3, 3), 3.0), atol=1e-5)
    assert float(pooled[0, 0, 0, 0]) < 3.0  # the zero padding at the border


# The example images' bytes (PerceptualSimilarity imgs/), so the values above are tied to them.
EXAMPLE_SHA256 = {"ex_ref": "57aff3a0aeb6ebea151411f35b4487ea130aedcac6addd91c8c015969f9df097",
                  "ex_p0": "f44901a99c82755cfe78cdbde66579ae06cd0ebbba4a2539aa35ef96bbe703db",
                  "ex_p1": "6ada2a42a3378bfa408027ba2d54a827c6f2cec30a0506e4f140fddaca661022"}


def _example(name: str) -> np.ndarray:
    path = datasets.mirrors()[0] / EXAMPLES / f"{name}.png"
    verify(path, EXAMPLE_SHA256[name])
    return read_image(path)


@pytest.fixture(scope="module")
def examples(weights_mirror, data_mirror):
    if not (datasets.mirrors()[0] / EXAMPLES).is_dir():
        pytest.skip(f"{EXAMPLES} is not in the data mirror")
    return {n: _example(n) for n in ("ex_ref", "ex_p0", "ex_p1")}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_agrees_with_the_original_on_its_examples(examples, net):
    for other in ("ex_p0", "ex_p1"):
        value = metrics.lpips(examples["ex_ref"], examples[other], net=net)
        assert value == pytest.approx(LPIPS_EXPECTED[(other, net)], abs=0.002), (other, net, value)


def test_dists_agrees_with_the_original_code_on_the_examples(examples):
    for other in ("ex_p0", "ex_p1"):
        assert metrics.dists(examples["ex_ref"], examples[other]) == pytest.approx(DISTS_EXPECTED[other], abs=0.002)


@pytest.fixture(scope="module")
def kodak_pair(weights_mirror, data_mirror):
    """A 64 x 80 Kodak crop, and versions with light and heavy noise (clipped, rounded)."""
    clean = read_image(datasets.files("kodak24", download=False, limit=1)[0])[:64, :80]
    rng = np.random.default_rng(0)
    noisy = {s: np.clip(clean + rng.normal(0, s, clean.shape), 0, 255).round().astype(np.uint8) for s in (10, 50)}
    return clean, noisy


@pytest.mark.parametrize("metric", ["lpips-alex", "lpips-vgg", "dists"])
def test_zero_for_identical_symmetric_and_growing_with_noise(kodak_pair, metric):
    clean, noisy = kodak_pair
    fn = metrics.dists if metric == "dists" else lambda a, b: metrics.lpips(a, b, net=metric.split("-")[1])
    assert abs(fn(clean, clean)) < 1e-6
    light, heavy = fn(clean, noisy[10]), fn(clean, noisy[50])
    assert fn(noisy[10], clean) == pytest.approx(light, abs=1e-6)
    assert 0 < light < heavy
    assert isinstance(light, float)


def test_a_scorer_against_one_reference_gives_the_pairwise_values(kodak_pair):
    """metrics.scorer: DISTS with the reference's features computed once, LPIPS as it is; the
    same numbers as the pairwise functions, and the same input checks."""
    clean, noisy = kodak_pair
    for name in ("dists", "lpips"):
        score = metrics.scorer(name, clean)
        for image in (noisy[10], noisy[50], clean):
            assert score(image) == pytest.approx(getattr(metrics, name)(clean, image), abs=1e-6)
        with pytest.raises(ValueError, match="one size"):
            score(noisy[10][:40])
    with pytest.raises(ValueError, match="scorer takes one of 'lpips', 'dists'"):
        metrics.scorer("psnr", clean)
    with pytest.raises(ValueError, match="uint8"):
        metrics.scorer("dists", clean.astype(np.float32))
