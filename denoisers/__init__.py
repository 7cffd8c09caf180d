"""Image denoisers behind one contract (see ``denoisers.base``), and the evaluation protocol.

    >>> import denoisers
    >>> denoisers.names()
    ['idresnet', 'idgan', 'dncnn', 'ffdnet', 'cbm3d']
    >>> d = denoisers.get("dncnn")          # no weights loaded yet
    >>> out = d.denoise(noisy, sigma=25)    # HxWx3 float32 in [0, 1]
"""
from __future__ import annotations

# Registration order is display order; each import registers its classes explicitly.
from . import idresnet, dncnn, ffdnet, cbm3d, dial  # noqa: F401,E401  (after registry)
from .base import Denoiser, NotReadyError, Readiness, TorchDenoiser, check_input, check_sigma
from .registry import get, names

__all__ = ["Denoiser", "NotReadyError", "Readiness", "TorchDenoiser", "check_input", "check_sigma", "get", "names"]
