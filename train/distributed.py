"""Where training runs: the device of one process, or one of ``torchrun``'s processes.

Under ``torchrun`` (WORLD_SIZE > 1) each process trains on its own GPU with
DistributedDataParallel; rank 0 alone logs, evaluates and writes files.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from .config import ConfigError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


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


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (for timing: CUDA calls return before they finish)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def broadcast_int(value: int, info: Dist) -> int:
    """Rank 0's ``value`` on every rank."""
    if info.world == 1:
        return value
    t = torch.tensor([value], device=info.device)
    dist.broadcast(t, 0)
    return int(t.item())
