"""The training pipeline on the CPU with the ``tiny`` preset: data, losses, both phases, resume.

Training images come from the data mirror (``DENOISERS_DATA_MIRROR``) when it is set, else
from synthetic images, so these tests never need the network. The VGG19 test needs the real
weights (``DENOISERS_WEIGHTS_MIRROR``) and is skipped without them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from denoisers.nets.idresnet import IDResNetGenerator
from train import checkpoint as ckpt
from train.budget import plan_total_steps
from train.config import TINY, Config, ConfigError, from_dict, load_yaml, preset, save_yaml
from train.data import Augment, BatchMaker, load_bank
from train.discriminator import Discriminator, check_state_dict, feature_side
from train.distributed import Dist
from train.loop import lr_at, prepare, train_phase
from train.losses import d_fake_loss, d_real_loss, g_adversarial_loss
from train.records import truncate_metrics
from train.steps import d_step, g_step

# Generous: a guard against hangs, not a speed check (a busy 2-core machine runs these slowly).
pytestmark = pytest.mark.timeout(600)


def synthetic_image(seed: int, h: int, w: int) -> np.ndarray:
    """A smooth colour image with a few edges (what a denoiser can learn quickly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6)
        channels.append(0.5 + 0.35 * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase))
    img = np.stack(channels, -1)
    img[h // 3: h // 2, w // 4: w // 2] = rng.uniform(0, 1, 3)  # a flat patch with sharp edges
    return np.round(img * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def train_images(tmp_path_factory) -> list[Path]:
    if os.environ.get("DENOISERS_DATA_MIRROR"):
        from denoisers import datasets

        if datasets.available_locally("cbsd432"):
            return datasets.files("cbsd432", download=False, limit=6)
    folder = tmp_path_factory.mktemp("train_images")
    paths = []
    for k in range(6):
        h, w = (96, 72) if k % 2 else (72, 96)  # both orientations, as in CBSD432
        paths.append(folder / f"{k}.png")
        Image.fromarray(synthetic_image(k, h, w)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def eval_image(tmp_path_factory) -> list[Path]:
    path = tmp_path_factory.mktemp("eval") / "eval.png"
    Image.fromarray(synthetic_image(99, 64, 96)).save(path)
    return [path]


def records(run_dir: Path, event: str = "train") -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == event]


def tiny(**changes) -> Config:
    return TINY.replace(**changes)


# ----------------------------------------------------------------------------- config

def test_presets_are_frozen_and_reject_unknown_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key.*bacth"):
        from_dict({**TINY.to_dict(), "bacth": 8})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")
    with pytest.raises(Exception):
        TINY.batch = 3  # frozen
    with pytest.raises(ConfigError, match="sigma"):
        tiny(sigma=[50, 25])
    assert preset("paper").crop == 100 and preset("paper").batch == 16 and preset("paper").sigma == 25.0
    assert tiny(sigma=[15, 55]).sigma_range == (15.0, 55.0) and TINY.sigma_range == (25.0, 25.0)
    save_yaml(tiny(sigma=[15, 55], lr=3e-4), tmp_path / "c.yaml")
    assert load_yaml(tmp_path / "c.yaml") == tiny(sigma=(15.0, 55.0), lr=3e-4)
    (tmp_path / "bad.yaml").write_text("preset: tiny\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_yaml(tmp_path / "bad.yaml")


@pytest.mark.parametrize("key, value", [
    ("sigma", [25]), ("sigma", [10, 20, 30]), ("sigma", "abc"), ("sigma", 0), ("sigma", [0, 25]),
    ("sigma", [30, 20]), ("sigma", 300), ("sigma", True), ("sigma", ["a", 20]),
    ("batch", "abc"), ("batch", 0), ("batch", 2.0), ("batch", True), ("crop", 100.5), ("crop", 8),
    ("blocks", None), ("head_kernel", 4), ("seed", -1), ("eval_images", "3"),
    ("lr", "1e-4"), ("lr", 0), ("lr", [1e-4]), ("lr_gamma", -0.1),
    ("lr_milestones", 0.5), ("lr_milestones", [1.5]), ("lr_milestones", [0]), ("lr_milestones", ["x"]),
    ("betas", [0.9]), ("betas", [0.9, 1.0]), ("betas", 0.9),
    ("eval_sigmas", 25), ("eval_sigmas", []), ("eval_sigmas", [25, "x"]),
    ("w_adv", -1), ("content_feature_scale", "big"), ("minutes", 0), ("minutes", "soon"),
    ("amp", "fp16"), ("channels_last", "yes"), ("compile", 1), ("preset", None),
    ("lr_warmup", -1), ("lr_warmup", 1.5),
    ("scale_aug", 0.5), ("scale_aug", [0.5]), ("scale_aug", [0, 1]), ("scale_aug", [0.8, 0.5]),
    ("scale_aug", [0.5, 1.5]), ("scale_aug", ["a", 1]), ("channel_aug", 1), ("brightness_aug", 1),
    ("brightness_aug", -0.1), ("brightness_aug", "some"),
    ("lr", math.inf), ("lr", math.nan), ("minutes", math.nan), ("sigma", [20, math.inf]),
    ("w_content", math.inf), ("compile", "bogus"),
])
def test_config_refuses_bad_values_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        tiny(**{key: value})


def test_config_accepts_ints_for_floats_and_cli_errors_are_clean(tmp_path, capsys):
    from train.__main__ import main as train_main

    cfg = tiny(lr=1, sigma=30, lr_milestones=[0.25, 0.75], betas=[0, 0.5], minutes=2, eval_sigmas=[15, 50.5])
    assert cfg.sigma_range == (30.0, 30.0) and cfg.lr_milestones == (0.25, 0.75) and cfg.betas == (0, 0.5)
    assert tiny(sigma=[20, 20]).sigma_range == (20.0, 20.0)
    for override in ("sigma=[25]", "sigma=abc", "batch=abc", "lr_milestones=0.5", "sigma=[10,20,30]",
                     "crop=100.5", "sigma=[1,"):
        argv = ["mse", "--preset", "tiny", "--set", override, "--out", str(tmp_path / "run")]
        assert train_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and override.split("=")[0] in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_lr_schedule_scales_with_run_length():
    cfg = preset("paper")
    assert lr_at(cfg, 0, 400_000) == 1e-4 and lr_at(cfg, 199_999, 400_000) == 1e-4
    assert lr_at(cfg, 200_000, 400_000) == pytest.approx(1e-5)
    assert lr_at(cfg, 499, 1000) == 1e-4 and lr_at(cfg, 500, 1000) == pytest.approx(1e-5)
    # A linear warm-up over the phase's first steps, then the same milestones.
    warm = cfg.replace(lr_warmup=200)
    assert lr_at(warm, 0, 1000) == pytest.approx(1e-4 / 200) and lr_at(warm, 99, 1000) == pytest.approx(0.5e-4)
    assert lr_at(warm, 199, 1000) == 1e-4 and lr_at(warm, 500, 1000) == pytest.approx(1e-5)
    assert preset("gpu").lr_warmup == 200 and preset("paper").lr_warmup == 0
    # 100 it/s, 60 s left, evaluations of 1 s every 1000 steps: about 5.7k steps fit.
    total = plan_total_steps(100, 100.0, 60.0, 1.0, 1000, 10**9)
    assert 5_000 < total - 100 < 5_820
    assert plan_total_steps(100, 100.0, 60.0, 1.0, 1000, 2_000) == 2_000


# ----------------------------------------------------------------------------- data

def test_batches_are_on_device_crops_with_the_right_noise(train_images):
    bank = load_bank(train_images, "cpu", 32)
    assert bank.pixels.dtype == torch.uint8 and bank.pixels.shape[1] <= bank.pixels.shape[2]  # landscape
    maker = BatchMaker(bank, 32, 64, (25.0, 25.0), seed=1)
    noisy, target = maker.make(3)
    assert noisy.shape == target.shape == (64, 3, 32, 32)
    assert target.min() >= -1 and target.max() <= 1
    noise = noisy - (target + 1) / 2
    assert noise.std().item() == pytest.approx(25 / 255, rel=0.05)
    assert abs(noise.mean().item()) < 0.005
    again = maker.make(3)
    assert torch.equal(again[0], noisy) and torch.equal(again[1], target)  # a function of the step
    assert not torch.equal(maker.make(4)[1], target)
    mixed = BatchMaker(bank, 32, 256, (15.0, 55.0), seed=1).make(0)
    per_crop = (mixed[0] - (mixed[1] + 1) / 2).flatten(1).std(1) * 255
    assert per_crop.min() > 12 and per_crop.max() < 58 and per_crop.std() > 5  # sigma varies per crop


def _bank_of(tmp_path, images: list[np.ndarray], crop: int):
    paths = []
    for k, img in enumerate(images):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(img).save(paths[-1])
    return load_bank(paths, "cpu", crop)


def test_scale_augmentation_shrinks_what_the_crops_show(tmp_path):
    # A ramp of one 8-bit step per pixel along x: a crop shrunk by s shows 1/s steps per pixel
    # (along one axis or the other after the rotations).
    ramp = np.broadcast_to(np.arange(200, dtype=np.uint8)[None, :, None], (200, 200, 3)).copy()
    bank = _bank_of(tmp_path, [ramp], 32)

    def steps_per_pixel(augment, batch=64, step=5):
        clean = (BatchMaker(bank, 32, batch, (1e-6, 1e-6), seed=2, augment=augment).make(step)[1] + 1) / 2 * 255
        return torch.maximum(clean.diff(dim=2).abs().mean((1, 2, 3)), clean.diff(dim=3).abs().mean((1, 2, 3)))

    assert steps_per_pixel(Augment()) == pytest.approx(torch.ones(64), abs=0.01)
    assert steps_per_pixel(Augment(scale=(0.5, 0.5))) == pytest.approx(torch.full((64,), 2.0), abs=0.02)
    varied = torch.stack([steps_per_pixel(Augment(scale=(0.25, 1.0)), 4, step) for step in range(20)])
    assert torch.all(varied.std(dim=1) < 0.02)  # one s per batch
    assert varied.min() > 0.99 and varied.max() < 4.01 and varied[:, 0].std() > 0.5  # drawn anew per batch
    with pytest.raises(ConfigError, match="cuts 64 px for a 32 px crop, more than the smallest image side 40"):
        BatchMaker(_bank_of(tmp_path, [ramp[:40, :60]], 32), 32, 4, (25.0, 25.0), seed=0, augment=Augment(scale=(0.5, 1.0)))


def test_channel_and_brightness_augmentation(tmp_path):
    flat = np.empty((48, 48, 3), np.uint8)
    flat[...] = (51, 128, 204)
    bank = _bank_of(tmp_path, [flat], 32)
    plain = BatchMaker(bank, 32, 256, (1e-6, 1e-6), seed=0).make(0)[1][:, :, 0, 0].add(1).mul(127.5).round()
    assert torch.all(plain == torch.tensor([51.0, 128.0, 204.0]))
    maker = BatchMaker(bank, 32, 256, (1e-6, 1e-6), seed=0, augment=Augment(channels=True))
    shuffled = maker.make(0)[1][:, :, 0, 0].add(1).mul(127.5).round()
    assert torch.all(shuffled.sort(dim=1).values == torch.tensor([51.0, 128.0, 204.0]))  # the same values
    assert len({tuple(row.tolist()) for row in shuffled}) == 6  # in all six orders
    assert torch.equal(maker.make(0)[1], maker.make(0)[1])  # still a function of the step
    noisy, target = BatchMaker(bank, 32, 256, (25.0, 25.0), seed=0, augment=Augment(brightness=0.5)).make(0)
    clean = (target + 1) / 2
    factor = clean[:, 2, 0, 0] / (204 / 255)
    assert factor.min() >= 0.5 - 1e-6 and factor.max() <= 1 + 1e-6 and factor.std() > 0.1
    assert torch.allclose(clean[:, 0, 0, 0] / (51 / 255), factor, atol=1e-5)  # one factor per crop
    assert (noisy - clean).std().item() == pytest.approx(25 / 255, rel=0.05)  # the noise is not scaled


def test_augmentation_settings_reach_the_batches_and_the_model_card(train_images, tmp_path):
    from train.modelcard import augment_text

    cfg = tiny(scale_aug=[0.5, 1], channel_aug=True, brightness_aug=0.2)
    assert cfg.scale_aug == (0.5, 1) and Augment(**cfg.augment) == Augment((0.5, 1), True, 0.2)
    state, _ = prepare(cfg, "mse", load_bank(train_images, "cpu", 64), Dist(), tmp_path, pretrained_vgg=False)
    assert state.batches.augment == Augment((0.5, 1), True, 0.2)
    assert Augment(**TINY.augment) == Augment()
    assert augment_text(TINY.to_dict()) == "" and augment_text({"crop": 100}) == ""  # older weights' metadata
    assert augment_text(cfg.to_dict()) == (", cut larger and shrunk by a factor uniform in [0.5, 1] per batch"
                                           ", R, G, B in a random order per crop, brightness times [0.8, 1] per crop")


def test_crops_stay_inside_each_image(tmp_path):
    # White images of different sizes: any crop reaching into the zero padding shows black.
    paths = []
    for k, (h, w) in enumerate([(40, 60), (70, 50), (33, 90)]):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(np.full((h, w, 3), 255, np.uint8)).save(paths[-1])
    bank = load_bank(paths, "cpu", 32)
    assert bank.sizes.tolist() == [[40, 60], [50, 70], [33, 90]]
    _, target = BatchMaker(bank, 32, 512, (0.0, 0.0), seed=0).make(0)
    assert torch.all(target == 1.0)
    with pytest.raises(ValueError, match="smaller than the 64px crop"):
        load_bank(paths, "cpu", 64)


# ----------------------------------------------------------------------------- networks and losses

def test_discriminator_is_checked_against_the_crop_size():
    d = Discriminator(100)
    assert feature_side(100) == 7 and d.flat == 512 * 7 * 7  # SRGAN's layout for 100 px crops
    assert d(torch.zeros(2, 3, 100, 100)).shape == (2,)
    with pytest.raises(ValueError, match="built for 100x100 crops"):
        d(torch.zeros(2, 3, 96, 96))
    with pytest.raises(ValueError, match="crop size differs"):
        check_state_dict(Discriminator(96, 8, 16), Discriminator(100, 8, 16).state_dict())
    with pytest.raises(ValueError, match="at least 16"):
        Discriminator(8)


def test_adversarial_losses_have_the_right_signs_and_values():
    sure_real, sure_fake, unsure = torch.full((4,), 20.0), torch.full((4,), -20.0), torch.zeros(4)
    assert d_real_loss(sure_real) < 1e-6 and d_fake_loss(sure_fake) < 1e-6  # D right: no loss
    assert d_real_loss(sure_fake) > 19 and d_fake_loss(sure_real) > 19  # D wrong: large loss
    assert d_real_loss(unsure).item() == pytest.approx(math.log(2)) == d_fake_loss(unsure).item()
    assert g_adversarial_loss(sure_real) < 1e-6 and g_adversarial_loss(sure_fake) > 19  # G fools D: no loss
    logits = torch.linspace(-3, 3, 7)
    p = torch.sigmoid(logits)
    torch.testing.assert_close(d_real_loss(logits), -torch.log(p).mean())  # -log D(x)
    torch.testing.assert_close(d_fake_loss(logits), -torch.log(1 - p).mean())  # -log(1 - D(G(y)))
    torch.testing.assert_close(g_adversarial_loss(logits), -torch.log(p).mean())  # -log D(G(y))


def test_gradients_flow_only_where_they_should(train_images, tmp_path):
    cfg = tiny()
    bank = load_bank(train_images, "cpu", cfg.crop)
    r, _ = prepare(cfg, "gan", bank, Dist(), tmp_path, pretrained_vgg=False)
    assert not any(p.requires_grad for p in r.vgg.parameters())
    noisy, target = r.batches.make(0)

    def snap(m):
        return {k: v.detach().clone() for k, v in m.state_dict().items()}

    g0, d0 = snap(r.g), snap(r.d)
    losses, fake = g_step(r, noisy, target)
    assert fake.requires_grad and set(losses) == {"l_g_pix", "l_g_content", "l_g_adv"}
    assert all(torch.equal(v, d0[k]) for k, v in r.d.state_dict().items()), "G step changed D"
    assert all(p.grad is None for p in r.d.parameters()), "G step left gradients in D"
    assert all(p.grad is None for p in r.vgg.parameters())
    assert any(not torch.equal(v, g0[k]) for k, v in r.g.state_dict().items()), "G step did not train G"
    assert all(p.requires_grad for p in r.d.parameters()), "D left frozen after the G step"

    g1, grads = snap(r.g), [p.grad.clone() for p in r.g.parameters()]
    losses = d_step(r, target, fake)
    assert all(torch.equal(v, g1[k]) for k, v in r.g.state_dict().items()), "D step changed G"
    assert all(torch.equal(p.grad, g) for p, g in zip(r.g.parameters(), grads)), "D step reached G (fake not detached)"
    assert all(p.grad is not None for p in r.d.parameters())
    assert any(not torch.equal(v, d0[k]) for k, v in r.d.state_dict().items()), "D step did not train D"
    assert 0 < losses["d_real"] < 1 and 0 < losses["d_fake"] < 1


@pytest.mark.skipif(not os.environ.get("DENOISERS_WEIGHTS_MIRROR"),
                    reason="needs the VGG19 weights file: set DENOISERS_WEIGHTS_MIRROR to the shared weights folder")
def test_vgg19_relu5_4_features_see_content_not_noise():
    from denoisers.metrics import add_noise
    from train.vgg import load_vgg19

    vgg = load_vgg19("relu5_4")
    assert list(vgg.layers.named_children())[-1][0] == "relu5_4" and len(vgg.layers) == 36
    a = synthetic_image(1, 128, 128).astype(np.float32) / 255
    b = synthetic_image(2, 128, 128).astype(np.float32) / 255
    if os.environ.get("DENOISERS_DATA_MIRROR"):  # natural images when the data mirror is there
        from denoisers import datasets
        from denoisers.io import read_image

        paths = datasets.files("kodak24", download=False, limit=2)
        a, b = (read_image(p)[100:228, 200:328].astype(np.float32) / 255 for p in paths)
    noisy = add_noise(a, 25, seed=0)

    def feats(x):
        return vgg(torch.from_numpy(x).permute(2, 0, 1)[None])

    fa, fn, fb = feats(a), feats(noisy), feats(b)
    assert fa.shape == (1, 512, 8, 8) and fa.min() >= 0 and fa.max() > 1  # after ReLU, 0-255 scale
    to_noisy, to_other = (fa - fn).pow(2).mean(), (fa - fb).pow(2).mean()
    assert to_noisy < 0.5 * to_other, f"noisy copy {to_noisy:.3g} vs other image {to_other:.3g}"


# ----------------------------------------------------------------------------- both phases end to end

@pytest.fixture(scope="module")
def mse_run(train_images, eval_image, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mse")
    train_phase(tiny(lr=1e-3, log_every=1, eval_every=30), "mse", train_images, out, eval_paths=eval_image, steps=60,
        bar=False)
    return out


def test_mse_phase_runs_and_the_loss_falls(mse_run):
    rows = records(mse_run)
    assert [r["step"] for r in rows] == list(range(1, 61))
    first = np.mean([r["l_g_pix"] for r in rows[:10]])
    last = np.mean([r["l_g_pix"] for r in rows[-10:]])
    assert last < 0.6 * first, f"MSE went from {first:.4f} to {last:.4f}"
    assert rows[0]["lr"] == 1e-3 and rows[-1]["lr"] == pytest.approx(1e-4)  # milestone at half-way
    evals = records(mse_run, "eval")
    assert [e["step"] for e in evals] == [0, 30, 60] and evals[-1]["psnr_s25"] > evals[0]["psnr_s25"]
    assert all(e["detail_s25"] > 0 for e in evals)  # the outputs' energy over the clean image's
    for name in ("config.yaml", "log.txt", "last.pt", "generator.pt"):
        assert (mse_run / name).is_file()


def test_generator_export_is_self_describing_and_unwrapped(mse_run):
    export = torch.load(mse_run / "generator.pt", map_location="cpu", weights_only=True)
    assert export["arch"] == TINY.arch and export["steps"] == 60 and export["method"] == "idresnet"
    assert all(v.dtype == torch.float16 for v in export["state_dict"].values())
    assert not any(k.startswith(ckpt.WRAPPER_PREFIXES) for k in export["state_dict"])
    g = IDResNetGenerator(**export["arch"])
    g.load_state_dict({k: v.float() for k, v in export["state_dict"].items()})
    last = torch.load(mse_run / "last.pt", map_location="cpu", weights_only=True)
    assert last["version"] == ckpt.VERSION and last["step"] == 60 and last["config"]["preset"] == "tiny"
    assert set(last["rng"]) >= {"cpu"} and "opt_g" in last
    assert not any(k.startswith(ckpt.WRAPPER_PREFIXES) for k in last["g"])
    assert not list(mse_run.glob(".*.tmp"))  # no temporary files left by the atomic writes


def test_gan_phase_runs_end_to_end(mse_run, train_images, tmp_path):
    pretrained = bool(os.environ.get("DENOISERS_WEIGHTS_MIRROR"))
    out = train_phase(tiny(log_every=2), "gan", train_images, tmp_path, init=mse_run, steps=4, bar=False,
              pretrained_vgg=pretrained)
    rows = records(out)
    assert [r["step"] for r in rows] == [2, 4]
    for r in rows:
        for name in ("l_g_pix", "l_g_content", "l_g_adv", "l_d_real", "l_d_fake"):
            assert math.isfinite(r[name]) and r[name] > 0, name
        assert 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1
    export = torch.load(out / "generator.pt", weights_only=True)
    assert export["method"] == "idgan" and export["steps"] == 64 and export["phase_steps"] == 4
    with pytest.raises(ConfigError, match="--init"):
        train_phase(tiny(), "gan", train_images, tmp_path / "no-init", steps=2)


@pytest.mark.parametrize("phase", ["mse", "gan"])
def test_resume_continues_bit_identically(phase, mse_run, train_images, tmp_path):
    cfg = tiny(log_every=1, ckpt_every=4)
    init = mse_run if phase == "gan" else None
    kw = dict(init=init, steps=10, bar=False, pretrained_vgg=False)
    straight = train_phase(cfg, phase, train_images, tmp_path / "straight", **kw)
    broken = tmp_path / "broken"
    train_phase(cfg, phase, train_images, broken, stop_after=6, **kw)  # dies after step 6; last.pt is at 4
    assert torch.load(broken / "last.pt", weights_only=True)["step"] == 4
    train_phase(cfg, phase, train_images, broken, **kw)  # resumes from step 4
    a, b = records(straight), records(broken)
    assert [r["step"] for r in b] == list(range(1, 11))
    for ra, rb in zip(a, b):
        assert {k: v for k, v in ra.items() if k.startswith(("l_", "d_"))} == \
               {k: v for k, v in rb.items() if k.startswith(("l_", "d_"))}, f"step {ra['step']} differs"
    ga = torch.load(straight / "last.pt", weights_only=True)["g"]
    gb = torch.load(broken / "last.pt", weights_only=True)["g"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


def test_resume_refuses_a_changed_config(mse_run, train_images, tmp_path):
    train_phase(tiny(), "mse", train_images, tmp_path, steps=2, bar=False)
    with pytest.raises(ConfigError, match="crop"):
        train_phase(tiny(crop=48), "mse", train_images, tmp_path, steps=4, bar=False)
    with pytest.raises(ConfigError, match="lr_warmup"):
        train_phase(tiny(lr_warmup=5), "mse", train_images, tmp_path, steps=4, bar=False)
    # A refused resume leaves the folder's config.yaml describing what is in it.
    assert load_yaml(tmp_path / "config.yaml") == tiny()
    # A checkpoint written before a config key existed resumes with that key's default.
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["config"]["lr_warmup"]
    torch.save(state, tmp_path / "last.pt")
    train_phase(tiny(), "mse", train_images, tmp_path, steps=4, bar=False)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 4


@pytest.fixture(scope="module")
def train_folder(train_images, tmp_path_factory) -> Path:
    """Three training images in a folder, for the command line's ``--data``."""
    folder = tmp_path_factory.mktemp("images")
    for path in train_images[:3]:
        (folder / path.name).symlink_to(path)
    return folder


def test_cli_trains_a_tiny_phase(train_folder, tmp_path, capsys):
    from train.__main__ import main

    rc = main(["mse", "--preset", "tiny", "--data", str(train_folder), "--out", str(tmp_path / "r"), "--steps", "3",
               "--no-eval", "--set", "log_every=1"])
    assert rc == 0 and len(records(tmp_path / "r")) == 3
    assert "step 3/3" in capsys.readouterr().out  # plain log lines when not on a terminal
    assert main(["mse", "--preset", "tiny", "--out", str(tmp_path / "x"), "--set", "bacth=2"]) == 2


def test_a_diverging_run_stops_without_writing_weights(train_images, train_folder, tmp_path, capsys):
    """An lr far too large makes the loss NaN: the run stops with an error before any
    checkpoint or export, so no NaN weights can be shipped or resumed from."""
    from train.__main__ import main
    from train.loop import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="non-finite"):
        train_phase(tiny(lr=1e6, log_every=2, ckpt_every=100), "mse", train_images, tmp_path / "a", steps=20, bar=False)
    assert not (tmp_path / "a" / "generator.pt").exists() and not (tmp_path / "a" / "last.pt").exists()
    # Caught between log lines as well: checked before every checkpoint and before the export.
    with pytest.raises(TrainingDiverged):
        train_phase(tiny(lr=1e6, log_every=100, ckpt_every=7), "mse", train_images, tmp_path / "b", steps=20, bar=False)
    assert not (tmp_path / "b" / "last.pt").exists()
    argv = ["mse", "--preset", "tiny", "--data", str(train_folder), "--out", str(tmp_path / "c"), "--no-eval",
            "--steps", "20", "--set", "lr=1.0e+6"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "non-finite" in err and not (tmp_path / "c" / "generator.pt").exists()


def test_the_check_before_a_checkpoint_sees_the_steps_since_the_last_one():
    """A log line starts a new window of sums; the finiteness check before a checkpoint still
    sees every step since the last checkpoint, the ones already logged included."""
    from train.loop import LossSums

    sums = LossSums()
    for value in (1.0, math.nan, 2.0):
        sums.add({"l_g_pix": torch.tensor(value)})
    means, _ = sums.take_window()  # a log line at this step
    assert math.isnan(means["l_g_pix"])
    sums.add({"l_g_pix": torch.tensor(3.0)})
    assert sums.take_window()[0] == {"l_g_pix": 3.0}
    assert math.isnan(sums.take_since_checkpoint()["l_g_pix"])  # not reset by the log lines
    sums.add({"l_g_pix": torch.tensor(4.0)})
    assert sums.take_since_checkpoint() == {"l_g_pix": 4.0}  # reset by the check itself


def test_a_nan_loss_in_the_last_interval_before_a_checkpoint_is_caught(train_images, tmp_path, monkeypatch):
    """Step 5 returns a NaN loss; no log line falls between it and the checkpoint at step 6,
    which is refused: last.pt stays the one of step 3 and nothing is exported."""
    from train import steps
    from train.loop import TrainingDiverged

    real = steps.STEPS["mse"]

    def nan_at_step_5(state, noisy, target):
        losses = real(state, noisy, target)
        return {k: v * math.nan for k, v in losses.items()} if state.step == 4 else losses

    monkeypatch.setitem(steps.STEPS, "mse", nan_at_step_5)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="non-finite by step 6"):
        train_phase(tiny(log_every=4, ckpt_every=3), "mse", train_images, out, steps=12, bar=False)
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3
    assert not (out / "generator.pt").exists()
    assert [r["step"] for r in records(out)] == [4]  # the log line before the NaN step


def test_cli_refuses_bad_runs_before_training(train_folder, tmp_path, capsys):
    from train.__main__ import main

    big = IDResNetGenerator(blocks=3, channels=16)
    torch.save(big.state_dict(), tmp_path / "other.pt")
    (tmp_path / "truncated.pt").write_bytes(b"PK\x03\x04 not a whole checkpoint")
    (tmp_path / "bad.yaml").write_text("lr: [\n")
    (tmp_path / "a_file").write_text("keep me")
    cases = {
        "--steps 0": (["--steps", "0"], "steps"),
        "unknown device": (["--device", "banana"], "banana"),
        "--init of another size": (["--init", str(tmp_path / "other.pt")], "does not fit"),
        "truncated --init": (["--init", str(tmp_path / "truncated.pt")], "cannot read"),
        "invalid YAML": (["--config", str(tmp_path / "bad.yaml")], "not valid YAML"),
        "crop larger than the images": (["--set", "crop=2000"], "crop"),
        "--out is a file": (["--out", str(tmp_path / "a_file")], "is a file"),
    }
    for name, (extra, expected) in cases.items():
        out = ["--out", str(tmp_path / "run")] if "--out" not in extra else []
        try:
            rc = main(["mse", "--preset", "tiny", "--data", str(train_folder), "--no-eval", *out, *extra])
        except SystemExit as exc:  # argparse's own refusals
            rc = exc.code
        err = capsys.readouterr().err
        assert rc == 2, name
        assert expected in err and "Traceback" not in err, (name, err)
    assert (tmp_path / "a_file").read_text() == "keep me" and not (tmp_path / "run").exists()


def test_benchmark_runs_on_the_cpu(capsys):
    from train.bench import bench

    results = bench(tiny(), "gan", None, steps=2, warmup=1, device="cpu", pretrained_vgg=False, batches=[2],
                    compile_modes=[])
    assert [t.name for t in results] == ["naive fp32 eager, no TF32", "preset tiny", "preset, batch 2"]
    assert all(t.it_s > 0 for t in results) and "x naive" in capsys.readouterr().out


# torch's own compiler imports a deprecated torch.jit helper; the warning is not ours.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_a_compiled_generator_trains_saves_and_resumes_like_an_eager_one(train_images, tmp_path):
    # `--set compile=default` is what a lease adds when its benchmark finds compilation faster:
    # the checkpoint and the export must hold plain keys, and a compiled run must resume.
    cfg = tiny(compile="default", log_every=1, ckpt_every=2)
    out = tmp_path / "compiled"
    train_phase(cfg, "mse", train_images, out, steps=4, bar=False, stop_after=2)
    train_phase(cfg, "mse", train_images, out, steps=4, bar=False)
    assert [r["step"] for r in records(out)] == [1, 2, 3, 4]
    state = torch.load(out / "last.pt", weights_only=True)
    export = torch.load(out / "generator.pt", weights_only=True)
    for keys in (state["g"], export["state_dict"]):
        assert not [k for k in keys if "_orig_mod" in k or k.startswith("module.")]
    IDResNetGenerator(**TINY.arch).load_state_dict({k: v.float() for k, v in export["state_dict"].items()})


def test_a_compile_error_falls_back_to_eager_instead_of_failing_the_phase(train_images, tmp_path, monkeypatch, request):
    import torch._dynamo
    import torch._inductor.compile_fx

    def broken_backend(*args, **kwargs):
        raise RuntimeError("injected compiler failure")

    monkeypatch.setattr(torch._inductor.compile_fx, "compile_fx", broken_backend)
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)  # restored afterwards
    torch._dynamo.reset()  # no graph cached by an earlier test, and none left for a later one
    request.addfinalizer(torch._dynamo.reset)
    out = tmp_path / "fallback"
    train_phase(tiny(compile="default", log_every=1), "mse", train_images, out, steps=2, bar=False)
    assert [r["step"] for r in records(out)] == [1, 2]
    assert torch.load(out / "generator.pt", weights_only=True)["state_dict"]


def test_the_in_run_evaluation_runs_without_tf32_and_restores_it(monkeypatch):
    """Training may use cuDNN's TF32 convolutions; the in-run PSNR (fp32 by the protocol) may not."""
    from train import evaluation

    seen = []
    monkeypatch.setattr(evaluation, "_evaluate", lambda *a: seen.append(torch.backends.cudnn.allow_tf32) or {})
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    evaluation.evaluate(None, [], (25.0,), torch.device("cpu"))
    assert seen == [False] and torch.backends.cudnn.allow_tf32 is True


def test_a_resume_drops_the_records_after_its_checkpoint_and_a_half_written_line(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"event": "start", "step": 0}\n{"event": "train", "step": 100}\n'
                       '{"event": "train", "step": 200}\n{"event": "tra')  # killed mid-line
    truncate_metrics(metrics, 100)
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [0, 100]
