"""Quality: our DnCNN/FFDNet are the official models, and every ready method keeps its PSNR.

The official models are the MatConvNet releases (``GD_Color_Blind.mat``,
``FFDNet_color.mat``) from which the published numbers come. Here they are converted
independently (HDF5 layout as described in the weights mirror's SOURCES.md) and run on CBSD68
crops beside our denoisers, which load the PyTorch files of the manifest. Equal outputs mean
the published numbers carry over; the full-set numbers are in docs/results.md.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import denoisers
from denoisers import datasets
from denoisers.evaluate import reference_instance
from denoisers.io import read_image, to_float, to_uint8
from denoisers.metrics import add_noise, detail_ratio, psnr
from denoisers.nets.dncnn import DnCNN
from denoisers.nets.ffdnet import FFDNet

h5py = pytest.importorskip("h5py")


def _mat_convs(path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel OIHW, bias) of every conv layer of a MatConvNet v7.3 model, in order."""
    convs = []
    with h5py.File(path, "r") as f:
        layers = f["net/layers"]
        for i in range(layers.shape[0]):
            layer = f[layers[i, 0]]
            kind = "".join(chr(c) for c in layer["type"][:].flatten())
            if kind != "conv":
                continue
            refs = layer["weights"]
            kernel = np.asarray(f[refs[0, 0]]).transpose(0, 1, 3, 2)  # h5py reverses MATLAB dims
            bias = np.asarray(f[refs[1, 0]]).reshape(-1)
            convs.append((kernel, bias))
    return convs


def _load_convs(model: torch.nn.Module, convs) -> None:
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(layers) == len(convs)
    for layer, (kernel, bias) in zip(layers, convs):
        assert layer.weight.shape == kernel.shape
        layer.weight.data = torch.from_numpy(np.ascontiguousarray(kernel)).float()
        layer.bias.data = torch.from_numpy(bias).float()


def official_dncnn(mirror) -> DnCNN:
    model = DnCNN()
    _load_convs(model, _mat_convs(mirror / "dncnn" / "GD_Color_Blind.mat"))
    return model.eval()


def official_ffdnet(mirror) -> FFDNet:
    convs = _mat_convs(mirror / "ffdnet" / "FFDNet_color.mat")
    # MatConvNet's sub-pixel order puts the row offset fastest: permute each group of four.
    perm = np.concatenate([4 * g + np.array([0, 2, 1, 3]) for g in range(3)])
    first_k, first_b = convs[0]
    first_k = np.concatenate([first_k[:, perm], first_k[:, 12:]], axis=1)
    last_k, last_b = convs[-1]
    convs[0], convs[-1] = (first_k, first_b), (last_k[perm], last_b[perm])
    model = FFDNet()
    _load_convs(model, convs)
    return model.eval()


@pytest.fixture(scope="module")
def cbsd68_crops(data_mirror):
    images = [read_image(p) for p in datasets.files("cbsd68", download=False, limit=4)]
    return [im[100:196, 150:246] for im in images]  # 96x96


@pytest.mark.parametrize("name", ["dncnn", "ffdnet"])
def test_matches_the_official_matconvnet_model(name, cbsd68_crops, weights_mirror):
    mirror = denoisers.weights.mirrors()[0]
    official = official_dncnn(mirror) if name == "dncnn" else official_ffdnet(mirror)
    ours = denoisers.get(name, precision="fp32", device="cpu")
    for seed, clean in enumerate(cbsd68_crops):
        noisy = add_noise(to_float(clean), 25, seed)
        x = torch.from_numpy(noisy.transpose(2, 0, 1))[None]
        with torch.no_grad():
            ref = official(x) if name == "dncnn" else official(x, torch.tensor([25 / 255]))
        ref = np.clip(ref[0].numpy().transpose(1, 2, 0), 0, 1)
        out = ours.denoise(noisy, 25)
        assert np.abs(out - ref).max() < 1e-4
        assert psnr(clean, to_uint8(out)) == pytest.approx(psnr(clean, to_uint8(ref)), abs=0.01)


# Mean PSNR (dB) on the three 96x128 Kodak crops of ``kodak_crops`` at sigma 25, seed 0, as
# measured when these methods were added (noisy input: 20.2 dB). A drop means a regression; a
# rise means new weights or a changed method, to be measured and written here (the failure
# message gives the new mean). IDResNet/IDGAN: the bundled sigma 20-55 networks, a matched pair
# from the third lease (IDGAN fine-tuned from that IDResNet; docs/training.md).
EXPECTED = {"dncnn": 31.80, "ffdnet": 31.93, "cbm3d": 31.38, "idresnet": 32.05, "idgan": 30.38}


@pytest.mark.parametrize("name", denoisers.names())
def test_psnr_gain_regression(name, kodak_crops, weights_mirror):
    d = reference_instance(name)  # as evaluated: networks in fp32 (bf16's cost is benchmarked)
    if not d.readiness(25).ready:
        pytest.skip(f"{name}: {d.readiness(25).reason}")
    gains, scores = [], []
    for clean in kodak_crops:
        noisy = add_noise(to_float(clean), 25, 0)
        out_psnr = psnr(clean, to_uint8(d.denoise(noisy, 25)))
        gains.append(out_psnr - psnr(clean, to_uint8(noisy)))
        scores.append(out_psnr)
    assert min(gains) > 8.0
    expected = EXPECTED.get(name)
    if expected is None:
        pytest.fail(f"{name} is ready but has no expected PSNR here: measure and add it")
    measured = float(np.mean(scores))
    assert measured >= expected - 0.05, f"{name}: {measured:.2f} dB, a regression from {expected:.2f}"
    assert measured <= expected + 0.05, f"{name}: {measured:.2f} dB, up from {expected:.2f}: update EXPECTED"


@pytest.fixture(scope="module")
def gan_pair(kodak_crops, weights_mirror):
    """Per sigma: detail and PSNR of IDResNet and IDGAN on the three crops as one 96x384 image
    (one energy over all three), computed once for the two tests below."""
    cache = {}

    def measure(sigma):
        if sigma not in cache:
            nets = {name: denoisers.get(name) for name in ("idresnet", "idgan")}
            for name, d in nets.items():
                if not d.readiness(sigma).ready:
                    pytest.skip(f"{name}: {d.readiness(sigma).reason}")
            clean = np.concatenate(kodak_crops, axis=1)
            noisy = add_noise(to_float(clean), sigma, 0)
            outputs = {name: to_uint8(d.denoise(noisy, sigma)) for name, d in nets.items()}
            cache[sigma] = ({name: detail_ratio(clean, out) for name, out in outputs.items()},
                            {name: psnr(clean, out) for name, out in outputs.items()})
        return cache[sigma]
    return measure


# Issue-level acceptance of the GAN phase: IDGAN's outputs' high-frequency energy is nearer the
# clean images' than the MSE generator's, and it costs at most 2.5 dB of PSNR against it.
@pytest.mark.parametrize("sigma", [25, 35, 50])
def test_idgan_keeps_more_detail_than_idresnet(sigma, gan_pair):
    detail, _ = gan_pair(sigma)
    assert abs(detail["idgan"] - 1) < abs(detail["idresnet"] - 1), detail


@pytest.mark.parametrize("sigma", [25, 35, 50])
def test_idgan_costs_at_most_2_5_db_against_idresnet(sigma, gan_pair):
    _, scores = gan_pair(sigma)
    assert scores["idresnet"] - scores["idgan"] <= 2.5, scores
