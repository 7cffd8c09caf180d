"""The fidelity <-> detail dial idgan@A: network interpolation between the bundled IDResNet and
the IDGAN fine-tuned from it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import denoisers
from denoisers import weights
from denoisers.io import to_float, to_uint8
from denoisers.metrics import add_noise, psnr
from denoisers.registry import label, parse_methods
from app_support import smooth_image


@pytest.fixture(scope="module")
def noisy():
    clean = smooth_image(48, 56)
    return clean, add_noise(to_float(clean), 25, 0)


def test_the_dial_is_named_like_a_method_but_not_listed():
    assert denoisers.names() == ["idresnet", "idgan", "dncnn", "ffdnet", "cbm3d"]
    d = denoisers.get("idgan@0.30")
    assert (d.name, d.label) == ("idgan@0.3", "IDGAN@0.3")
    assert parse_methods("dncnn, idgan@0.3,idgan@0.30") == ["dncnn", "idgan@0.3"]
    assert label("idgan@1") == "IDGAN@1"


@pytest.mark.parametrize("bad", ["idgan@1.5", "idgan@x", "idgan@", "idgan@-0.1", "idgan@nan", "idgan@1e3"])
def test_bad_dial_settings_name_the_accepted_form(bad):
    with pytest.raises(ValueError, match=r"idgan@A with A a number from 0 to 1"):
        denoisers.get(bad)
    with pytest.raises(ValueError, match=r"idgan@A"):
        parse_methods(f"dncnn,{bad}")


def test_the_ends_of_the_dial_are_the_two_networks(noisy):
    clean, x = noisy
    for alpha, end in (("0", "idresnet"), ("1", "idgan")):
        dial = denoisers.get(f"idgan@{alpha}", precision="fp32").denoise(x, 25)
        net = denoisers.get(end, precision="fp32").denoise(x, 25)
        assert np.abs(dial - net).max() < 1e-5
        assert abs(psnr(clean, to_uint8(dial)) - psnr(clean, to_uint8(net))) < 0.02


def test_the_middle_of_the_dial_lies_between_its_ends(noisy):
    clean, x = noisy
    outs = {a: denoisers.get(f"idgan@{a}", precision="fp32").denoise(x, 25) for a in ("0", "0.5", "1")}
    assert np.abs(outs["0.5"] - outs["0"]).mean() > 1e-4 and np.abs(outs["0.5"] - outs["1"]).mean() > 1e-4
    # Not a pixel blend, but close to one at this size: nearer the midpoint than either end.
    middle = (outs["0"] + outs["1"]) / 2
    assert np.abs(outs["0.5"] - middle).mean() < np.abs(outs["0"] - outs["1"]).mean() / 2


def test_each_setting_is_its_own_model_for_results_and_the_cache():
    ids = {denoisers.get(f"idgan@{a}").weights_id(25) for a in ("0", "0.3", "0.30001", "1")}
    assert len(ids) == 4
    gan = denoisers.get("idgan")
    resnet = denoisers.get("idresnet")
    wid = denoisers.get("idgan@0.3").weights_id(25)
    assert resnet.weights_id(25) in wid and gan.weights_id(25) in wid and wid.endswith("@0.3")


def test_an_unmatched_pair_is_not_blended(monkeypatch):
    real = weights.manifest()
    other = {k: (dataclasses.replace(e, init_sha256="0" * 64) if e.method == "idgan" else e) for k, e in real.items()}
    monkeypatch.setattr(weights, "manifest", lambda: other)
    status = denoisers.get("idgan@0.5").readiness(25)
    assert not status.ready and "only a matched pair can be blended" in status.reason
    assert denoisers.get("idgan").readiness(25).ready  # IDGAN itself is still there
