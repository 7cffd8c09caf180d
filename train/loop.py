"""The training loop of both phases, top to bottom: config, data, models, optimizers, loop.

``run(...)`` trains one phase into a run folder holding ``config.yaml``, ``metrics.jsonl``,
``log.txt``, ``last.pt`` (exact resume) and, at the end, ``generator.pt`` (float16 export).
Under ``torchrun`` each process trains on its own GPU with DistributedDataParallel; rank 0
alone logs, evaluates and writes files.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from denoisers.files import write_text
from denoisers.io import array_to_tensor, read_image, tensor_to_array, to_float, to_uint8
from denoisers.metrics import add_noise, high_frequency_energy, psnr
from denoisers.nets.idresnet import IDResNetGenerator

from . import checkpoint as ckpt
from .config import Config, ConfigError, save_yaml
from .data import BatchMaker, load_bank
from .discriminator import Discriminator, check_state_dict
from .losses import content_loss, d_fake_loss, d_real_loss, g_adversarial_loss, pixel_loss
from .vgg import VGG19Features, load_vgg19

CALIBRATION_STEPS = 100  # steps timed (after 5 warm-up steps) to plan a minutes-bounded run
# Keys that may change between a run and its resumption without breaking exactness.
RUN_CONTROL_KEYS = {"minutes", "log_every", "eval_every", "eval_images", "eval_sigmas", "ckpt_every",
                    "mse_steps", "gan_steps", "compile", "preset"}
LOSS_NAMES = {"mse": ("l_g_pix",), "gan": ("l_g_pix", "l_g_content", "l_g_adv", "l_d_real", "l_d_fake",
                                            "d_real", "d_fake")}


# ----------------------------------------------------------------------------- setup

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the run stops before writing weights from it."""


def parse_device(device: str | None) -> torch.device:
    """``device`` as a torch device, checked here so that a typo or a missing GPU is one clear
    error before any work (default: cuda when present, else cpu)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r} (cpu, cuda, cuda:1 ...): {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but this torch sees no CUDA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: training runs on cpu or cuda")
    return dev


def setup_distributed(device: str | None = None) -> Dist:
    """One process, or one of ``torchrun``'s (WORLD_SIZE > 1: one GPU per process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            dev = torch.device("cuda", local)
        else:
            dev = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        return Dist(dist.get_rank(), world, dev)
    return Dist(0, 1, parse_device(device))


def autocast(cfg: Config, device: torch.device):
    if cfg.amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def lr_at(cfg: Config, step: int, total: int) -> float:
    """The paper's step schedule: lr divided by ``1/lr_gamma`` at each milestone fraction;
    scaled linearly from 1/lr_warmup up to 1 over the phase's first ``lr_warmup`` steps."""
    drops = sum(step >= math.ceil(m * total) for m in cfg.lr_milestones)
    warm = min(1.0, (step + 1) / cfg.lr_warmup) if cfg.lr_warmup else 1.0
    return cfg.lr * cfg.lr_gamma ** drops * warm


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


# ----------------------------------------------------------------------------- the run state

@dataclass
class Run:
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


# ----------------------------------------------------------------------------- one step each

def mse_step(run: Run, noisy: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    with autocast(run.cfg, run.device):
        output = run.g_train(noisy)
    l_g_pix = pixel_loss(output, target)
    run.opt_g.zero_grad(set_to_none=True)
    l_g_pix.backward()
    run.opt_g.step()
    return {"l_g_pix": l_g_pix.detach()}


def g_step(run: Run, noisy: torch.Tensor, target: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Generator step of phase 2 with D frozen; returns the losses and the fake batch."""
    cfg, d_plain = run.cfg, run.d
    # D is called unwrapped (no DDP hooks) with requires_grad off: its weights get no gradient.
    d_plain.requires_grad_(False)
    with autocast(cfg, run.device):
        fake = run.g_train(noisy)
        l_g_content = content_loss(run.vgg, fake, target, cfg.content_feature_scale)
        logit_fake = d_plain(fake)
    l_g_pix = pixel_loss(fake, target)
    l_g_adv = g_adversarial_loss(logit_fake)
    l_g = cfg.w_pix * l_g_pix + cfg.w_content * l_g_content + cfg.w_adv * l_g_adv
    run.opt_g.zero_grad(set_to_none=True)
    l_g.backward()
    run.opt_g.step()
    d_plain.requires_grad_(True)
    losses = {"l_g_pix": l_g_pix.detach(), "l_g_content": l_g_content.detach(), "l_g_adv": l_g_adv.detach()}
    return losses, fake


def d_step(run: Run, target: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """Discriminator step on the real batch and the detached fake, one forward/backward each
    (BasicSR's order; under DDP each backward is its own gradient all-reduce)."""
    fake = fake.detach()
    run.opt_d.zero_grad(set_to_none=True)
    with autocast(run.cfg, run.device):
        logit_real = run.d_train(target)
    l_d_real = d_real_loss(logit_real)
    l_d_real.backward()
    with autocast(run.cfg, run.device):
        logit_fake = run.d_train(fake)
    l_d_fake = d_fake_loss(logit_fake)
    l_d_fake.backward()
    run.opt_d.step()
    return {
        "l_d_real": l_d_real.detach(), "l_d_fake": l_d_fake.detach(),
        "d_real": torch.sigmoid(logit_real.detach().float()).mean(),  # mean D(x)
        "d_fake": torch.sigmoid(logit_fake.detach().float()).mean(),  # mean D(G(y))
    }


def gan_step(run: Run, noisy: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """One generator step (D frozen), then one discriminator step (fake detached): k = 1."""
    losses, fake = g_step(run, noisy, target)
    return {**losses, **d_step(run, target, fake)}


STEPS: dict[str, Callable[[Run, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]] = {
    "mse": mse_step, "gan": gan_step,
}


# ----------------------------------------------------------------------------- evaluation

def load_eval_images(paths: list[Path]) -> list[tuple[str, np.ndarray]]:
    return [(p.name, read_image(p)) for p in paths]


@torch.no_grad()
def evaluate(g: IDResNetGenerator, images: list[tuple[str, np.ndarray]], sigmas: tuple[float, ...],
             device: torch.device) -> dict[str, float]:
    """Per sigma under the evaluation protocol (seed 0, unclipped noise, fp32): mean PSNR
    (``psnr_s25``) and detail, the outputs' mean high-frequency energy over the clean images'
    (``detail_s25``, as ``denoisers.report`` computes it). On a GPU, cuDNN's TF32 convolutions
    (on by default in PyTorch, and fine for training) are off while it runs: fp32 means fp32."""
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        return _evaluate(g, images, sigmas, device)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def _evaluate(g, images, sigmas, device) -> dict[str, float]:
    out = {}
    for sigma in sigmas:
        values, energy, clean_energy = [], 0.0, 0.0
        for _, clean_u8 in images:
            noisy = add_noise(to_float(clean_u8), sigma, seed=0)
            output_u8 = to_uint8(tensor_to_array(g.to_unit(g(array_to_tensor(noisy, device)))))
            values.append(psnr(clean_u8, output_u8))
            energy += high_frequency_energy(output_u8)
            clean_energy += high_frequency_energy(clean_u8)
        out[f"psnr_s{sigma:g}"] = float(np.mean(values))
        out[f"detail_s{sigma:g}"] = energy / clean_energy if clean_energy else float("nan")
    return out


# ----------------------------------------------------------------------------- bookkeeping

class Recorder:
    """metrics.jsonl, log.txt and the terminal (a tqdm bar on a terminal, plain lines otherwise)."""

    def __init__(self, out: Path, enabled: bool, total: int, initial: int, bar: bool | None = None) -> None:
        self.out, self.enabled = out, enabled
        self.bar = None
        if enabled and (sys.stderr.isatty() if bar is None else bar):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, leave=True)

    def metrics(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"{_dt.datetime.now().strftime('%H:%M:%S')} {message}"
        with open(self.out / "log.txt", "a") as f:
            f.write(line + "\n")
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def progress(self, step: int, total: int, postfix: str) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = step
            self.bar.set_postfix_str(postfix, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after ``step`` (written after the checkpoint a resume starts from), and a
    last line cut short by a killed run; the file is replaced in one rename."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # half a line: the process died while writing it
            continue
        if record.get("step", 0) <= step:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))


def save_checkpoint(run: Run) -> Path:
    state = {
        "version": ckpt.VERSION, "phase": run.phase, "step": run.step, "total_steps": run.total_steps,
        "planned": run.planned, "steps_before": run.steps_before, "config": run.cfg.to_dict(),
        "arch": run.cfg.arch, "g": run.g.state_dict(), "opt_g": run.opt_g.state_dict(),
        "rng": ckpt.rng_state(),
    }
    if run.d is not None:
        state.update(d=run.d.state_dict(), opt_d=run.opt_d.state_dict())
    return ckpt.save_atomic(state, run.out / "last.pt")


def restore_checkpoint(run: Run, path: Path) -> None:
    state = ckpt.load(path)
    if state.get("phase") != run.phase:
        raise ConfigError(f"{path} is a {state.get('phase')!r} checkpoint, this run is {run.phase!r}")
    # A key added after the checkpoint was written takes its default, which is the old behaviour.
    saved = {k: v for k, v in {**Config().to_dict(), **state["config"]}.items() if k not in RUN_CONTROL_KEYS}
    now = {k: v for k, v in run.cfg.to_dict().items() if k not in RUN_CONTROL_KEYS}
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        raise ConfigError(f"cannot resume {path}: config differs in {', '.join(differ)} "
                          f"(use a new --out folder to start afresh)")
    run.g.load_state_dict(state["g"])
    run.opt_g.load_state_dict(state["opt_g"])
    if run.d is not None:
        check_state_dict(run.d, state["d"])
        run.d.load_state_dict(state["d"])
        run.opt_d.load_state_dict(state["opt_d"])
    run.step, run.total_steps = int(state["step"]), int(state["total_steps"])
    run.planned, run.steps_before = bool(state.get("planned")), int(state.get("steps_before", 0))
    ckpt.set_rng_state(state["rng"])


def export_generator(run: Run, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Float16 generator weights with everything a model card needs."""
    payload = {
        "state_dict": {k: v.detach().to("cpu", torch.float16) for k, v in run.g.state_dict().items()},
        "version": ckpt.VERSION, "method": "idresnet" if run.phase == "mse" else "idgan",
        "phase": run.phase, "arch": run.cfg.arch, "config": run.cfg.to_dict(),
        "sigma": list(run.cfg.sigma_range), "steps": run.steps_before + run.step,
        "phase_steps": run.step, "device": describe_device(run.device), "world_size": run.dist.world,
        "torch": str(torch.__version__), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    return ckpt.save_atomic(payload, path)


def plan_total_steps(step: int, rate: float, seconds_left: float, eval_seconds: float,
                     eval_every: int, cap: int) -> int:
    """Steps that fit in ``seconds_left`` at ``rate`` it/s, leaving time for the evaluations
    still due; never more than ``cap``. Fixed once, so the lr milestones scale with it."""
    budget = max(seconds_left * 0.97, 0.0)
    steps = int(rate * budget)
    for _ in range(3):  # the evaluations' time depends on how many steps remain
        evals = steps // eval_every + 1
        steps = int(rate * max(budget - evals * eval_seconds, 0.0))
    return min(cap, step + max(steps, 1))


# ----------------------------------------------------------------------------- the run

def run(cfg: Config, phase: str, data: list[Path], out: str | Path, init: str | Path | None = None,
        eval_paths: list[Path] | None = None, device: str | None = None, pretrained_vgg: bool = True,
        steps: int | None = None, bar: bool | None = None, stop_after: int | None = None) -> Path:
    """Train ``phase`` ("mse" or "gan") and return the run folder.

    ``data``: training image files. ``init``: generator weights to start from (required for
    "gan": the phase-1 result; optional for "mse": a warm start). ``steps`` overrides the
    phase's step count; ``stop_after`` ends the process early after that many steps in total
    (as an interruption would; used to test resuming). A ``last.pt`` already in ``out`` is
    resumed exactly.
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
    return _loop(state, resumed, eval_paths or [], bar, stop_after)


def prepare(cfg: Config, phase: str, bank, dist_info: Dist, out: Path, init: str | Path | None = None,
            pretrained_vgg: bool = True, steps: int | None = None, vgg: VGG19Features | None = None
            ) -> tuple[Run, bool]:
    """Models, optimizers and batches for ``phase``, restored from ``out/last.pt`` if present,
    else initialised from ``init``; then wrapped for speed (channels_last, DDP, compile)."""
    torch.manual_seed(cfg.seed)
    batches = BatchMaker(bank, cfg.crop, cfg.batch, cfg.sigma_range, cfg.seed, dist_info.rank)
    g, d, vgg = build_models(cfg, phase, dist_info.device, pretrained_vgg, vgg)
    state = Run(cfg, phase, dist_info, out, g, adam(g.parameters(), cfg), batches, d,
                adam(d.parameters(), cfg) if d is not None else None, vgg)
    state.total_steps = steps or cfg.steps_for(phase)
    last = out / "last.pt"
    resumed = last.exists()
    if resumed:
        restore_checkpoint(state, last)
    elif init is not None:
        weights, meta = ckpt.generator_state(init)
        try:
            g.load_state_dict(weights)
        except RuntimeError as exc:
            raise ConfigError(f"--init {init} does not fit this config's generator {cfg.arch} "
                              f"(its own: {meta.get('arch', 'not recorded')}): "
                              f"{str(exc).splitlines()[-1].strip()}") from None
        state.steps_before, state.init_meta = int(meta.get("steps", 0)), meta
    if steps is not None and not state.planned:
        state.total_steps = steps  # an explicit length wins, also when resuming

    if cfg.channels_last:
        for m in (g, d, vgg):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    state.g_train, state.d_train = g, d
    if dist_info.world > 1:
        ids = [dist_info.device.index] if dist_info.device.type == "cuda" else None
        state.g_train = nn.parallel.DistributedDataParallel(g, device_ids=ids)
        if d is not None:
            state.d_train = nn.parallel.DistributedDataParallel(d, device_ids=ids)
    if cfg.compile != "none":
        # compile is a speed setting only: a compile error falls back to eager, with dynamo's
        # warning in the log, rather than failing the phase (a lease cannot repeat a job).
        torch._dynamo.config.suppress_errors = True
        state.g_train = torch.compile(state.g_train, mode=None if cfg.compile == "default" else cfg.compile)
    return state, resumed


def _loop(run: Run, resumed: bool, eval_paths: list[Path], bar: bool | None, stop_after: int | None) -> Path:
    cfg, out, main = run.cfg, run.out, run.dist.main
    rec = Recorder(out, main, run.total_steps, run.step, bar)
    if resumed:
        truncate_metrics(out / "metrics.jsonl", run.step)
    images = load_eval_images(eval_paths) if main else []
    rec.metrics({"event": "resume" if resumed else "start", "step": run.step, "phase": run.phase,
                 "device": describe_device(run.device), "world_size": run.dist.world,
                 "torch": str(torch.__version__), "sigma": list(cfg.sigma_range), "steps_before": run.steps_before,
                 "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    rec.log(f"{run.phase}: {'resuming' if resumed else 'starting'} at step {run.step} of {run.total_steps} "
            f"on {describe_device(run.device)} x{run.dist.world}, preset {cfg.preset}")

    t_start = time.perf_counter()
    deadline = t_start + cfg.minutes * 60 if cfg.minutes else None
    eval_seconds = _eval(run, images, rec) if images and not resumed else 0.0
    channels_last = torch.channels_last if cfg.channels_last else torch.contiguous_format
    step_fn = STEPS[run.phase]
    sums: dict[str, torch.Tensor] = {}
    window_steps, window_t = 0, time.perf_counter()
    calib_from: tuple[int, float] | None = None
    first_step = run.step

    while run.step < run.total_steps:
        lr = lr_at(cfg, run.step, run.total_steps)
        for opt in (run.opt_g, run.opt_d):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        noisy, target = run.batches.make(run.step)
        noisy = noisy.contiguous(memory_format=channels_last)
        target = target.contiguous(memory_format=channels_last)
        losses = step_fn(run, noisy, target)
        run.step += 1
        window_steps += 1
        for k, v in losses.items():
            sums[k] = sums[k] + v if k in sums else v.clone()

        # A minutes-bounded run fixes its length once it has measured its speed (after
        # compilation and warm-up), so that the lr milestones fall where they should.
        if deadline is not None and not run.planned:
            now = time.perf_counter()
            if run.step == first_step + 5:
                _sync(run.device)
                calib_from = (run.step, time.perf_counter())
            # Step-counted, so that every DDP rank plans at the same step.
            elif calib_from and (run.step - calib_from[0] >= CALIBRATION_STEPS or (
                    run.dist.world == 1 and now - calib_from[1] >= 0.1 * cfg.minutes * 60)):
                _sync(run.device)
                rate = (run.step - calib_from[0]) / (time.perf_counter() - calib_from[1])
                total = plan_total_steps(run.step, rate, deadline - time.perf_counter(), eval_seconds,
                                         cfg.eval_every, run.total_steps)
                run.total_steps = _broadcast_int(total, run.dist)
                run.planned = True
                rec.log(f"measured {rate:.2f} it/s: this run ends at step {run.total_steps}")

        if run.step % cfg.log_every == 0 or run.step == run.total_steps:
            values = {k: v.item() / window_steps for k, v in sums.items()}
            _check_finite(values, run)
            now = time.perf_counter()
            it_s = window_steps / (now - window_t)
            record = {"event": "train", "step": run.step, "lr": lr, **values, "it_s": round(it_s, 3),
                      "elapsed_s": round(now - t_start, 1)}
            rec.metrics(record)
            text = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            if rec.bar is None:
                rec.log(f"step {run.step}/{run.total_steps} lr={lr:.1e} {text} {it_s:.2f} it/s")
            rec.progress(run.step, run.total_steps, f"{text} {it_s:.2f} it/s")
            sums, window_steps, window_t = {}, 0, time.perf_counter()
        if images and run.step % cfg.eval_every == 0 and run.step != run.total_steps:
            _eval(run, images, rec)
        if main and run.step % cfg.ckpt_every == 0:
            _check_finite({k: v.item() for k, v in sums.items()}, run)  # never checkpoint a diverged run
            save_checkpoint(run)
        if stop_after is not None and run.step >= stop_after:
            rec.close()
            return out
        if deadline is not None and run.dist.world == 1 and time.perf_counter() > deadline:
            rec.log(f"time is up at step {run.step}")
            break

    _check_finite({k: v.item() for k, v in sums.items()}, run)  # steps since the last log line
    if images:
        _eval(run, images, rec)
    seconds = time.perf_counter() - t_start
    if main:
        save_checkpoint(run)
        export_generator(run, out / "generator.pt")
    done = run.step - first_step
    rec.metrics({"event": "end", "step": run.step, "seconds": round(seconds, 1),
                 "it_s": round(done / seconds, 3) if seconds > 0 else None})
    rec.log(f"{run.phase}: done, step {run.step}, {done} steps in {seconds:.0f} s")
    rec.close()
    return out


def _eval(run: Run, images, rec: Recorder) -> float:
    t = time.perf_counter()
    result = evaluate(run.g, images, run.cfg.eval_sigmas, run.device)
    seconds = time.perf_counter() - t
    rec.metrics({"event": "eval", "step": run.step, **{k: round(v, 4) for k, v in result.items()},
                 "images": [name for name, _ in images], "seconds": round(seconds, 2)})
    rec.log("eval " + " ".join(f"{k}={v:.2f}" for k, v in result.items()) + f" ({len(images)} images)")
    return seconds


def _check_finite(losses: dict[str, float], run: Run) -> None:
    """Stop a diverged run (a too large lr, say) before it checkpoints or exports NaN weights;
    ``last.pt``, if any, keeps the last checkpoint written before."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        kept = run.out / "last.pt"
        raise TrainingDiverged(
            f"{run.phase}: loss became non-finite by step {run.step} "
            f"({', '.join(f'{k}={v}' for k, v in bad.items())}); nothing written from it"
            + (f" ({kept} holds the last checkpoint before)" if kept.exists() else "")
            + ": lower lr or check the data")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _broadcast_int(value: int, info: Dist) -> int:
    if info.world == 1:
        return value
    t = torch.tensor([value], device=info.device)
    dist.broadcast(t, 0)
    return int(t.item())
