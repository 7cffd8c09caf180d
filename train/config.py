"""Training configuration: one frozen dataclass, named presets, YAML in and out.

Units: ``sigma`` on the 0-255 scale; ``crop`` in pixels; ``lr_milestones`` as fractions of the
phase's total steps (the paper divides the lr by 10 half-way through each phase: after 2e5 of
4e5 MSE steps and after 1e5 of 2e5 GAN steps, so the milestone is 0.5 for both). A run
bounded by ``minutes`` measures its speed first and then fixes its total steps, so that the
milestones scale with the run's real length (see ``loop.plan_total_steps``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An unknown key, a bad value, or an inconsistent combination of settings."""


@dataclass(frozen=True)
class Config:
    preset: str = "paper"
    # Generator (IDResNetGenerator arguments).
    blocks: int = 32
    channels: int = 64
    head_kernel: int = 9
    # Discriminator (SRGAN): base width and the dense layer's width.
    d_channels: int = 64
    d_dense: int = 1024
    # Data: square crops, batch per process, noise level(s).
    crop: int = 100
    batch: int = 16
    # One value: that sigma for every crop (the paper: one network per sigma).
    # A pair (lo, hi): each crop draws its own sigma uniformly from [lo, hi] (a mixed-sigma run).
    sigma: float | tuple[float, float] = 25.0
    # Variation of the clean crops (train.data.Augment), all off in the paper's setting:
    # [lo, hi]: each batch cut at crop / s and shrunk by s, s uniform in [lo, hi], 0 < lo <= hi <= 1;
    scale_aug: tuple[float, float] | None = None
    channel_aug: bool = False  # each crop's R, G, B in a random order
    brightness_aug: float = 0.0  # each crop times a factor from [1 - this, 1], this in [0, 1)
    # Optimisation (Adam, same lr for G and D).
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    mse_steps: int = 400_000
    gan_steps: int = 200_000
    lr_milestones: tuple[float, ...] = (0.5,)
    lr_gamma: float = 0.1
    # Steps of linear lr warm-up at the start of each phase (0: none, the paper). A phase that
    # starts from trained weights with a fresh Adam otherwise moves every weight by about lr in
    # its very first step (Adam's first update is lr times the gradient's sign).
    lr_warmup: int = 0
    # Phase 2 loss weights (the paper's), on MSE in [-1, 1], raw relu5_4 features, -log D.
    w_pix: float = 0.001
    w_content: float = 0.0061
    w_adv: float = 0.001
    # Multiplies the VGG features before their MSE. 1.0 because the paper's 0.0061 already
    # is SRGAN's 1/12.75 rescaling squared (1 / 12.75**2 = 0.00615); see docs/training.md.
    content_feature_scale: float = 1.0
    # Run control.
    seed: int = 0
    minutes: float | None = None
    log_every: int = 50
    eval_every: int = 2000
    eval_images: int = 3
    eval_sigmas: tuple[float, ...] = (25.0,)
    ckpt_every: int = 2000
    # Speed.
    amp: str = "bf16"  # "bf16" autocast or "none" (fp32)
    channels_last: bool = True
    compile: str = "none"  # "none", or a torch.compile mode: "default", "max-autotune-no-cudagraphs", ...

    def __post_init__(self) -> None:
        check(self)

    @property
    def arch(self) -> dict[str, int]:
        return {"blocks": self.blocks, "channels": self.channels, "head_kernel": self.head_kernel}

    @property
    def augment(self) -> dict[str, Any]:
        """``train.data.Augment``'s arguments."""
        return {"scale": self.scale_aug, "channels": self.channel_aug, "brightness": float(self.brightness_aug)}

    @property
    def sigma_range(self) -> tuple[float, float]:
        s = self.sigma
        return (float(s), float(s)) if isinstance(s, (int, float)) else (float(s[0]), float(s[1]))

    def steps_for(self, phase: str) -> int:
        return {"mse": self.mse_steps, "gan": self.gan_steps}[phase]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def replace(self, **changes: Any) -> "Config":
        return from_dict({**self.to_dict(), **changes})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _need_int(cfg: Config, name: str, low: int) -> None:
    value = getattr(cfg, name)
    if not _is_int(value):
        raise ConfigError(f"{name} must be an integer, got {_show(value)}")
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")


def _need_number(name: str, value: Any) -> None:
    if _is_number(value):
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        return
    hint = ""
    if isinstance(value, str):
        try:
            float(value)
            hint = " (YAML reads a number like 1e-4 or 1.0e6 as text: write 1.0e-4 or 1.0e+6)"
        except ValueError:
            pass
    raise ConfigError(f"{name} must be a number, got {_show(value)}{hint}")


def _need_sequence(name: str, value: Any, what: str) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be {what}, got {_show(value)}")
    return tuple(value)


def check(cfg: Config) -> None:
    """Every field's type, shape and range; a ``ConfigError`` naming the key otherwise."""
    if not isinstance(cfg.preset, str) or not cfg.preset:
        raise ConfigError(f"preset must be a non-empty name, got {_show(cfg.preset)}")
    for name in ("blocks", "channels", "d_channels", "d_dense", "batch", "mse_steps", "gan_steps",
                 "log_every", "eval_every", "eval_images", "ckpt_every"):
        _need_int(cfg, name, 1)
    _need_int(cfg, "head_kernel", 1)
    if cfg.head_kernel % 2 == 0:
        raise ConfigError(f"head_kernel must be odd (the padding keeps the image size), got {cfg.head_kernel}")
    _need_int(cfg, "crop", 16)
    _need_int(cfg, "seed", 0)
    _need_int(cfg, "lr_warmup", 0)

    sigma = cfg.sigma
    if isinstance(sigma, (list, tuple)):
        if len(sigma) != 2:
            raise ConfigError(f"sigma must be one value or a pair [lo, hi], got {len(sigma)} values: {list(sigma)}")
        for value in sigma:
            _need_number("sigma", value)
        lo, hi = sigma
        if not 0 < lo <= hi <= 255:
            raise ConfigError(f"sigma range [lo, hi] must have 0 < lo <= hi <= 255, got {list(sigma)}")
    else:
        _need_number("sigma", sigma)
        if not 0 < sigma <= 255:
            raise ConfigError(f"sigma must be in (0, 255], got {sigma}")

    if cfg.scale_aug is not None:
        scale = _need_sequence("scale_aug", cfg.scale_aug, "null or a pair [lo, hi] of shrink factors")
        if len(scale) != 2:
            raise ConfigError(f"scale_aug must be a pair [lo, hi], got {len(scale)} values: {list(scale)}")
        for value in scale:
            _need_number("scale_aug", value)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"scale_aug [lo, hi] must have 0 < lo <= hi <= 1, got {list(scale)}")
    if not isinstance(cfg.channel_aug, bool):
        raise ConfigError(f"channel_aug must be true or false, got {_show(cfg.channel_aug)}")
    _need_number("brightness_aug", cfg.brightness_aug)
    if not 0 <= cfg.brightness_aug < 1:
        raise ConfigError(f"brightness_aug must be in [0, 1), got {cfg.brightness_aug}")

    eval_sigmas = _need_sequence("eval_sigmas", cfg.eval_sigmas, "a list of noise levels")
    if not eval_sigmas:
        raise ConfigError("eval_sigmas must hold at least one noise level")
    for value in eval_sigmas:
        _need_number("eval_sigmas", value)
        if not 0 < value <= 255:
            raise ConfigError(f"eval_sigmas must be in (0, 255], got {list(eval_sigmas)}")

    for name in ("lr", "lr_gamma"):
        _need_number(name, getattr(cfg, name))
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(cfg, name)}")
    betas = _need_sequence("betas", cfg.betas, "a pair [beta1, beta2]")
    if len(betas) != 2:
        raise ConfigError(f"betas must be a pair [beta1, beta2], got {len(betas)} values: {list(betas)}")
    for value in betas:
        _need_number("betas", value)
        if not 0 <= value < 1:
            raise ConfigError(f"betas must lie in [0, 1), got {list(betas)}")
    milestones = _need_sequence("lr_milestones", cfg.lr_milestones, "a list of fractions in (0, 1), e.g. [0.5]")
    for value in milestones:
        _need_number("lr_milestones", value)
        if not 0 < value < 1:
            raise ConfigError(f"lr_milestones are fractions of the run in (0, 1), got {list(milestones)}")
    for name in ("w_pix", "w_content", "w_adv", "content_feature_scale"):
        _need_number(name, getattr(cfg, name))
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)}")

    if cfg.minutes is not None:
        _need_number("minutes", cfg.minutes)
        if cfg.minutes <= 0:
            raise ConfigError(f"minutes must be positive, got {cfg.minutes}")
    if cfg.amp not in ("bf16", "none"):
        raise ConfigError(f"amp must be 'bf16' or 'none', got {_show(cfg.amp)}")
    if not isinstance(cfg.channels_last, bool):
        raise ConfigError(f"channels_last must be true or false, got {_show(cfg.channels_last)}")
    if cfg.compile not in COMPILE_MODES:
        raise ConfigError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {_show(cfg.compile)}")


# "none", or a mode of torch.compile ("default" is its mode=None).
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

_TUPLES = {"sigma", "betas", "lr_milestones", "eval_sigmas", "scale_aug"}


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a Config, refusing unknown keys (a typo must not silently fall back to a default)."""
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {k: (tuple(v) if k in _TUPLES and isinstance(v, (list, tuple)) else v) for k, v in raw.items()}
    return Config(**values)


# The paper's settings (section 4.2); batch 16 of 100x100 crops, one network per sigma.
PAPER = Config(preset="paper")

# Sized for one ~8-minute stretch of a single H100 (see docs/training.md). Batch 32 keeps the
# GPU busier than the paper's 16. One network for sigma 20..55 serves the paper's 25, 35 and 50
# (a mixed-sigma start: three per-sigma runs would each get a third of a lease); per-sigma
# fine-tunes start from it with ``--set sigma=25``. The step counts are caps: a ``minutes``
# bound measures the speed and plans the real length.
GPU = Config(
    preset="gpu",
    batch=32,
    sigma=(20.0, 55.0),
    mse_steps=40_000,
    gan_steps=20_000,
    lr_warmup=200,  # every lease starts from trained weights with a fresh Adam
    minutes=8.0,
    log_every=100,
    eval_every=5000,
    eval_sigmas=(25.0, 35.0, 50.0),
    ckpt_every=5000,
)

# For CPU tests and dry runs: a few blocks, few channels, tiny crops, tens of steps.
TINY = Config(
    preset="tiny",
    blocks=2,
    channels=8,
    head_kernel=3,
    d_channels=8,
    d_dense=32,
    crop=32,
    batch=4,
    mse_steps=40,
    gan_steps=20,
    log_every=5,
    eval_every=20,
    eval_images=1,
    ckpt_every=10,
    amp="none",
    channels_last=False,
)

PRESETS: dict[str, Config] = {c.preset: c for c in (PAPER, GPU, TINY)}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def load_yaml(path: str | Path) -> Config:
    """A YAML file of Config keys; ``preset: NAME`` starts from that preset's values."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys")
    base = preset(raw.get("preset", "paper")).to_dict()
    return from_dict({**base, **raw})


def save_yaml(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``sigma=[15,55]``, ``compile=default``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({exc})") from None
