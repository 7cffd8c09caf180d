"""Shared fixtures. Tests never use the network or a GPU.

Real weights and images come from the mirror folders named by ``DENOISERS_WEIGHTS_MIRROR``
and ``DENOISERS_DATA_MIRROR`` (the test command sets them); tests that need them are skipped
with a reason when they are not set.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from denoisers import datasets, weights
from denoisers.fetch import sha256_of
from denoisers.io import read_image
from denoisers.nets.idresnet import IDResNetGenerator

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Downloads (there are none in tests) and caches go to a temporary folder."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("DENOISERS_CACHE")
    os.environ["DENOISERS_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("DENOISERS_CACHE", None)
    else:
        os.environ["DENOISERS_CACHE"] = old


def _need(var: str) -> None:
    if not os.environ.get(var):
        pytest.skip(f"{var} is not set (point it at a local mirror folder)")


@pytest.fixture(scope="session")
def weights_mirror() -> None:
    _need(weights.MIRROR_ENV)


@pytest.fixture(scope="session")
def data_mirror() -> None:
    _need(datasets.MIRROR_ENV)


@pytest.fixture(scope="session")
def kodak_crops(data_mirror) -> list[np.ndarray]:
    """Three 96x128 uint8 crops from the first Kodak24 images (top-left corner)."""
    return [read_image(p)[:96, :128] for p in datasets.files("kodak24", download=False, limit=3)]


@pytest.fixture
def noisy_image() -> np.ndarray:
    """A small synthetic image with unclipped noise (float32, strays outside [0, 1])."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    clean = np.stack([yy, xx, 0.5 + 0.4 * np.sin(6 * xx)], axis=2)
    return (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32)


@pytest.fixture
def tiny_generators(tmp_path, monkeypatch) -> dict[str, Path]:
    """A temporary manifest with tiny random-weight generators for idresnet/idgan at sigma 25
    and 50, so their code paths can be exercised; never shown as trained models."""
    assets = tmp_path / "assets"
    assets.mkdir()
    manifest = {k: v for k, v in json.loads(weights.MANIFEST.read_text()).items()
                if v["method"] not in ("idresnet", "idgan")}  # only the tiny ones below
    arch = {"blocks": 2, "channels": 8, "head_kernel": 3}
    files = {}
    for method in ("idresnet", "idgan"):
        for sigma in (25, 50):
            torch.manual_seed(sigma)
            model = IDResNetGenerator(**arch)
            path = assets / f"{method}_s{sigma}.pt"
            torch.save({"state_dict": {k: v.half() for k, v in model.state_dict().items()}}, path)
            files[f"{method}_s{sigma}"] = path
            manifest[f"{method}_s{sigma}"] = {
                "method": method, "file": path.name, "sha256": sha256_of(path), "sigma": sigma,
                "arch": arch, "license": "test", "source": "test", "trained_on": "nothing", "bundled": True,
            }
    (assets / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(weights, "ASSETS", assets)
    monkeypatch.setattr(weights, "MANIFEST", assets / "manifest.json")
    weights.manifest.cache_clear()
    yield files
    weights.manifest.cache_clear()
