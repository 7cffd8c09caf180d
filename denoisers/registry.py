"""The explicit registry of denoiser classes, in display order."""
from __future__ import annotations

from .base import Denoiser

_REGISTRY: dict[str, type[Denoiser]] = {}


def register(cls: type[Denoiser]) -> type[Denoiser]:
    """Class decorator: add ``cls`` under ``cls.name`` (registration order = display order)."""
    if cls.name in _REGISTRY:
        raise ValueError(f"denoiser {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Every registered method, in display order."""
    return list(_REGISTRY)


def get(name: str, **kwargs) -> Denoiser:
    """A new denoiser ``name``. Building it touches neither the network nor the weights."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(_REGISTRY)}") from None
    return cls(**kwargs)
