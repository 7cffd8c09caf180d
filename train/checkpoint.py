"""Checkpoints that describe themselves, written atomically, read with ``weights_only=True``.

Two kinds:
- ``last.pt`` in a run folder: everything needed to continue *exactly* (generator and
  discriminator weights in float32, both Adam states, the step, the planned total, torch's CPU
  and CUDA RNG states, the config). Batches depend only on (seed, rank, step), see ``data``.
- A generator export (``generator.pt``): float16 weights under ``state_dict`` plus ``arch``,
  ``config``, ``steps`` and provenance, the format ``assets/weights/`` holds. It is also the
  small state a GPU lease carries to the next lease (a warm start, see docs/training.md).

Modules are saved unwrapped: never with ``_orig_mod.`` (torch.compile) or ``module.`` (DDP).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from denoisers.files import atomic_write

VERSION = 1
WRAPPER_PREFIXES = ("_orig_mod.", "module.")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the run."""


def clean_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes from a state dict's keys (for files saved by other tools)."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    with atomic_write(path) as f:
        torch.save(obj, f)
    return path


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupted files
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds {type(obj).__name__}, not a dict")
    return obj


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Float32 generator weights and metadata from a run folder (its ``last.pt``), a
    ``last.pt``, a generator export, or a plain state dict file."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    obj = load(path)
    if "g" in obj:  # a training checkpoint
        state, meta = obj["g"], {k: obj[k] for k in ("arch", "config", "phase") if k in obj}
        meta["steps"] = int(obj.get("steps_before", 0)) + int(obj["step"])
    elif "state_dict" in obj:
        state, meta = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
    else:
        state, meta = obj, {}
    return {k: v.float() for k, v in clean_keys(state).items()}, meta
