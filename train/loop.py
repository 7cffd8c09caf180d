"""The training of one phase, top to bottom: config, data, models, optimizers, loop.

``train_phase(...)`` trains one phase into a run folder holding ``config.yaml``,
``metrics.jsonl``, ``log.txt``, ``last.pt`` (exact resume) and, at the end, ``generator.pt``
(float16 export). Under ``torchrun`` each process trains on its own GPU with
DistributedDataParallel; rank 0 alone logs, evaluates and writes files.

The parts it is made of: ``distributed`` (devices and ranks), ``data`` (batches), ``steps``
(one optimisation step per phase), ``budget`` (a minutes-bounded run's length),
``evaluation`` (the in-run PSNR), ``records`` (metrics and log) and ``checkpoint``.
"""
from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from denoisers.nets.idresnet import IDResNetGenerator

from . import checkpoint as ckpt
from .budget import TimeBudget
from .config import Config, ConfigError, save_yaml
from .data import Augment, BatchMaker, load_bank
from .discriminator import Discriminator, check_state_dict
from .distributed import Dist, describe_device, setup_distributed
from .evaluation import evaluate, load_eval_images
from .records import Recorder, truncate_metrics
from .steps import STEPS
from .vgg import VGG19Features, load_vgg19

# Keys that may change between a run and its resumption without breaking exactness.
RUN_CONTROL_KEYS = {"minutes", "log_every", "eval_every", "eval_images", "eval_sigmas", "ckpt_every",
                    "mse_steps", "gan_steps", "compile", "preset"}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the run stops before writing weights from it."""


def lr_at(cfg: Config, step: int, total: int) -> float:
    """The paper's step schedule: lr divided by ``1/lr_gamma`` at each milestone fraction;
    scaled linearly from 1/lr_warmup up to 1 over the phase's first ``lr_warmup`` steps."""
    drops = sum(step >= math.ceil(m * total) for m in cfg.lr_milestones)
    warm = min(1.0, (step + 1) / cfg.lr_warmup) if cfg.lr_warmup else 1.0
    return cfg.lr * cfg.lr_gamma ** drops * warm


# ----------------------------------------------------------------------------- the state of a phase

@dataclass
class TrainState:
    cfg: Config
    phase: str
    dist: Dist
    out: Path
    g: IDResNetGenerator
    opt_g: torch.optim.Optimizer
    batches: BatchMaker
    d: Discriminator | None = None
    opt_d: torch.optim.Optimizer | None = None
    vgg: VGG19Features | None = None
    g_train: nn.Module | None = None  # g wrapped for training (DDP and/or compiled)
    d_train: nn.Module | None = None
    step: int = 0
    total_steps: int = 0
    planned: bool = False  # total_steps fixed from a measured speed (minutes-bounded runs)
    steps_before: int = 0  # steps of the initialising generator (warm starts), for model cards
    init_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.dist.device


def build_models(cfg: Config, phase: str, device: torch.device, pretrained_vgg: bool = True,
                 vgg: VGG19Features | None = None):
    """Generator, and for phase 2 the discriminator (checked against the crop) and VGG19
    (``vgg`` reuses one already loaded)."""
    g = IDResNetGenerator(**cfg.arch).to(device)
    if phase == "mse":
        return g, None, None
    d = Discriminator(cfg.crop, cfg.d_channels, cfg.d_dense).to(device)
    if vgg is None:
        vgg = load_vgg19("relu5_4", pretrained=pretrained_vgg)
    return g, d, vgg.to(device)


def adam(params, cfg: Config) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(state: TrainState) -> Path:
    saved = {
        "version": ckpt.VERSION, "phase": state.phase, "step": state.step, "total_steps": state.total_steps,
        "planned": state.planned, "steps_before": state.steps_before, "config": state.cfg.to_dict(),
        "arch": state.cfg.arch, "g": state.g.state_dict(), "opt_g": state.opt_g.state_dict(),
        "rng": ckpt.rng_state(),
    }
    if state.d is not None:
        saved.update(d=state.d.state_dict(), opt_d=state.opt_d.state_dict())
    return ckpt.save_atomic(saved, state.out / "last.pt")


def restore_checkpoint(state: TrainState, path: Path) -> None:
    saved = ckpt.load(path)
    if saved.get("phase") != state.phase:
        raise ConfigError(f"{path} is a {saved.get('phase')!r} checkpoint, this run is {state.phase!r}")
    # A key added after the checkpoint was written takes its default, which is the old behaviour.
    then = {k: v for k, v in {**Config().to_dict(), **saved["config"]}.items() if k not in RUN_CONTROL_KEYS}
    now = {k: v for k, v in state.cfg.to_dict().items() if k not in RUN_CONTROL_KEYS}
    differ = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
    if differ:
        raise ConfigError(f"cannot resume {path}: config differs in {', '.join(differ)} "
                          f"(use a new --out folder to start afresh)")
    state.g.load_state_dict(saved["g"])
    state.opt_g.load_state_dict(saved["opt_g"])
    if state.d is not None:
        check_state_dict(state.d, saved["d"])
        state.d.load_state_dict(saved["d"])
        state.opt_d.load_state_dict(saved["opt_d"])
    state.step, state.total_steps = int(saved["step"]), int(saved["total_steps"])
    state.planned, state.steps_before = bool(saved.get("planned")), int(saved.get("steps_before", 0))
    ckpt.set_rng_state(saved["rng"])


def export_generator(state: TrainState, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Float16 generator weights with everything a model card needs."""
    payload = {
        "state_dict": {k: v.detach().to("cpu", torch.float16) for k, v in state.g.state_dict().items()},
        "version": ckpt.VERSION, "method": "idresnet" if state.phase == "mse" else "idgan",
        "phase": state.phase, "arch": state.cfg.arch, "config": state.cfg.to_dict(),
        "sigma": list(state.cfg.sigma_range), "steps": state.steps_before + state.step,
        "phase_steps": state.step, "device": describe_device(state.device), "world_size": state.dist.world,
        "torch": str(torch.__version__), "created": _now(),
        **(extra or {}),
    }
    return ckpt.save_atomic(payload, path)


# ----------------------------------------------------------------------------- losses

class LossSums:
    """Running sums of the step losses, kept on the device (no sync per step): a window per log
    line (reset by each line) and the steps since the last checkpoint (reset only by the
    finiteness check before a checkpoint, so that check sees every step it vouches for)."""

    def __init__(self) -> None:
        self.window: dict[str, torch.Tensor] = {}
        self.since_checkpoint: dict[str, torch.Tensor] = {}
        self.window_steps = 0
        self.window_start = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for sums in (self.window, self.since_checkpoint):
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
        self.window_steps += 1

    def take_window(self) -> tuple[dict[str, float], float]:
        """The window's mean losses and its speed in it/s; starts the next window."""
        means = {k: v.item() / self.window_steps for k, v in self.window.items()}
        it_s = self.window_steps / (time.perf_counter() - self.window_start)
        self.window, self.window_steps, self.window_start = {}, 0, time.perf_counter()
        return means, it_s

    def take_since_checkpoint(self) -> dict[str, float]:
        """The sums of the steps since the last checkpoint (NaN or inf if any step's was)."""
        sums = {k: v.item() for k, v in self.since_checkpoint.items()}
        self.since_checkpoint = {}
        return sums


def check_finite(losses: dict[str, float], state: TrainState) -> None:
    """Stop a diverged run (a too large lr, say) before it checkpoints or exports NaN weights;
    ``last.pt``, if any, keeps the last checkpoint written before."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        kept = state.out / "last.pt"
        raise TrainingDiverged(
            f"{state.phase}: loss became non-finite by step {state.step} "
            f"({', '.join(f'{k}={v}' for k, v in bad.items())}); nothing written from it"
            + (f" ({kept} holds the last checkpoint before)" if kept.exists() else "")
            + ": lower lr or check the data")


# ----------------------------------------------------------------------------- one phase

def train_phase(cfg: Config, phase: str, data: list[Path], out: str | Path, init: str | Path | None = None,
                eval_paths: list[Path] | None = None, device: str | None = None, pretrained_vgg: bool = True,
                steps: int | None = None, bar: bool | None = None, stop_after: int | None = None) -> Path:
    """Train ``phase`` ("mse" or "gan") and return the run folder.

    ``data``: training image files. ``init``: generator weights to start from (required for
    "gan": the phase-1 result; optional for "mse": a warm start). ``steps`` overrides the
    phase's step count; ``stop_after`` ends the run early after that many steps in total,
    without the end's checkpoint and export, as an interruption would (to test resuming).
    A ``last.pt`` already in ``out`` is resumed exactly.
    """
    if phase not in STEPS:
        raise ConfigError(f"unknown phase {phase!r}; use 'mse' or 'gan'")
    if phase == "gan" and init is None and not (Path(out) / "last.pt").exists():
        raise ConfigError("phase 'gan' starts from a phase-1 generator: give --init")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"steps must be a positive whole number, got {steps!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a run folder")
    dist_info = setup_distributed(device)
    if dist_info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick its fastest kernels
    bank = load_bank(data, dist_info.device, cfg.crop)  # decoded once, onto the training device
    state, resumed = prepare(cfg, phase, bank, dist_info, out, init, pretrained_vgg, steps)
    if dist_info.main:  # only now: a refused resume leaves the folder's config as it was
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, out / "config.yaml")
    return train_loop(state, resumed, eval_paths or [], bar, stop_after)


def prepare(cfg: Config, phase: str, bank, dist_info: Dist, out: Path, init: str | Path | None = None,
            pretrained_vgg: bool = True, steps: int | None = None, vgg: VGG19Features | None = None
            ) -> tuple[TrainState, bool]:
    """Models, optimizers and batches for ``phase``, restored from ``out/last.pt`` if present,
    else initialised from ``init``; then wrapped for speed (channels_last, DDP, compile)."""
    torch.manual_seed(cfg.seed)
    batches = BatchMaker(bank, cfg.crop, cfg.batch, cfg.sigma_range, cfg.seed, dist_info.rank, Augment(**cfg.augment))
    g, d, vgg = build_models(cfg, phase, dist_info.device, pretrained_vgg, vgg)
    state = TrainState(cfg, phase, dist_info, out, g, adam(g.parameters(), cfg), batches, d,
                       adam(d.parameters(), cfg) if d is not None else None, vgg)
    state.total_steps = steps or cfg.steps_for(phase)
    last = out / "last.pt"
    resumed = last.exists()
    if resumed:
        restore_checkpoint(state, last)
    elif init is not None:
        load_init(state, init)
    if steps is not None and not state.planned:
        state.total_steps = steps  # an explicit length wins, also when resuming
    wrap_for_speed(state)
    return state, resumed


def load_init(state: TrainState, init: str | Path) -> None:
    """Start the generator from ``init`` (a run folder or a generator file)."""
    weights, meta = ckpt.generator_state(init)
    try:
        state.g.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError(f"--init {init} does not fit this config's generator {state.cfg.arch} "
                          f"(its own: {meta.get('arch', 'not recorded')}): "
                          f"{str(exc).splitlines()[-1].strip()}") from None
    state.steps_before, state.init_meta = int(meta.get("steps", 0)), meta


def wrap_for_speed(state: TrainState) -> None:
    """channels_last, DDP and torch.compile, as the config asks: ``g_train`` and ``d_train``."""
    cfg, g, d = state.cfg, state.g, state.d
    if cfg.channels_last:
        for m in (g, d, state.vgg):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    state.g_train, state.d_train = g, d
    if state.dist.world > 1:
        ids = [state.device.index] if state.device.type == "cuda" else None
        state.g_train = nn.parallel.DistributedDataParallel(g, device_ids=ids)
        if d is not None:
            state.d_train = nn.parallel.DistributedDataParallel(d, device_ids=ids)
    if cfg.compile != "none":
        # compile is a speed setting only: a compile error falls back to eager, with dynamo's
        # warning in the log, rather than failing the phase (a lease cannot repeat a job).
        torch._dynamo.config.suppress_errors = True
        state.g_train = torch.compile(state.g_train, mode=None if cfg.compile == "default" else cfg.compile)


def train_loop(state: TrainState, resumed: bool, eval_paths: list[Path], bar: bool | None = None,
               stop_after: int | None = None) -> Path:
    """Step until ``total_steps`` (or the deadline): lr, batch, step; then log, evaluate and
    checkpoint when due. Ends with an evaluation, a checkpoint and the generator export."""
    cfg, main = state.cfg, state.dist.main
    rec = Recorder(state.out, main, state.total_steps, state.step, bar)
    if resumed:
        truncate_metrics(state.out / "metrics.jsonl", state.step)
    images = load_eval_images(eval_paths) if main else []
    log_start(state, rec, resumed)
    t_start = time.perf_counter()
    eval_seconds = log_eval(state, images, rec) if images and not resumed else 0.0
    budget = TimeBudget(cfg.minutes, state.dist, state.step, t_start, eval_seconds, cfg.eval_every)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    step_fn = STEPS[state.phase]
    sums = LossSums()
    first_step = state.step

    while state.step < state.total_steps:
        lr = set_lr(state)
        noisy, target = state.batches.make(state.step)
        sums.add(step_fn(state, noisy.contiguous(memory_format=memory_format),
                         target.contiguous(memory_format=memory_format)))
        state.step += 1
        if not state.planned:
            plan_length(state, budget, rec)
        if state.step % cfg.log_every == 0 or state.step == state.total_steps:
            log_train(state, rec, sums, lr, t_start)
        if images and state.step % cfg.eval_every == 0 and state.step != state.total_steps:
            log_eval(state, images, rec)
        if main and state.step % cfg.ckpt_every == 0:
            check_finite(sums.take_since_checkpoint(), state)  # never checkpoint a diverged run
            save_checkpoint(state)
        if stop_after is not None and state.step >= stop_after:
            rec.close()
            return state.out
        if budget.time_is_up():
            rec.log(f"time is up at step {state.step}")
            break

    check_finite(sums.take_since_checkpoint(), state)
    return finish(state, images, rec, t_start, first_step)


def set_lr(state: TrainState) -> float:
    lr = lr_at(state.cfg, state.step, state.total_steps)
    for opt in (state.opt_g, state.opt_d):
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = lr
    return lr


def plan_length(state: TrainState, budget: TimeBudget, rec: Recorder) -> None:
    """A minutes-bounded run fixes its length once it has measured its speed."""
    total = budget.plan(state.step, state.total_steps)
    if total is not None:
        state.total_steps, state.planned = total, True
        rec.log(f"measured {budget.rate:.2f} it/s: this run ends at step {state.total_steps}")


def log_start(state: TrainState, rec: Recorder, resumed: bool) -> None:
    rec.metrics({"event": "resume" if resumed else "start", "step": state.step, "phase": state.phase,
                 "device": describe_device(state.device), "world_size": state.dist.world,
                 "torch": str(torch.__version__), "sigma": list(state.cfg.sigma_range),
                 "steps_before": state.steps_before, "time": _now()})
    rec.log(f"{state.phase}: {'resuming' if resumed else 'starting'} at step {state.step} of {state.total_steps} "
            f"on {describe_device(state.device)} x{state.dist.world}, preset {state.cfg.preset}")


def log_train(state: TrainState, rec: Recorder, sums: LossSums, lr: float, t_start: float) -> None:
    """The log window's mean losses (refused when not finite) into metrics.jsonl and the log."""
    values, it_s = sums.take_window()
    check_finite(values, state)
    record = {"event": "train", "step": state.step, "lr": lr, **values, "it_s": round(it_s, 3),
              "elapsed_s": round(time.perf_counter() - t_start, 1)}
    rec.metrics(record)
    text = " ".join(f"{k}={v:.4g}" for k, v in values.items())
    if rec.bar is None:
        rec.log(f"step {state.step}/{state.total_steps} lr={lr:.1e} {text} {it_s:.2f} it/s")
    rec.progress(state.step, state.total_steps, f"{text} {it_s:.2f} it/s")


def log_eval(state: TrainState, images, rec: Recorder) -> float:
    """Evaluate the generator, record the scores; returns the seconds it took."""
    t = time.perf_counter()
    result = evaluate(state.g, images, state.cfg.eval_sigmas, state.device)
    seconds = time.perf_counter() - t
    rec.metrics({"event": "eval", "step": state.step, **{k: round(v, 4) for k, v in result.items()},
                 "images": [name for name, _ in images], "seconds": round(seconds, 2)})
    rec.log("eval " + " ".join(f"{k}={v:.2f}" for k, v in result.items()) + f" ({len(images)} images)")
    return seconds


def finish(state: TrainState, images, rec: Recorder, t_start: float, first_step: int) -> Path:
    """The last evaluation, checkpoint and export, and the run's end record."""
    if images:
        log_eval(state, images, rec)
    seconds = time.perf_counter() - t_start
    if state.dist.main:
        save_checkpoint(state)
        export_generator(state, state.out / "generator.pt")
    done = state.step - first_step
    rec.metrics({"event": "end", "step": state.step, "seconds": round(seconds, 1),
                 "it_s": round(done / seconds, 3) if seconds > 0 else None})
    rec.log(f"{state.phase}: done, step {state.step}, {done} steps in {seconds:.0f} s")
    rec.close()
    return state.out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
