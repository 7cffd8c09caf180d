"""IDResNet (MSE-trained generator) and IDGAN (the same generator fine-tuned with the detail
loss): networks trained for one sigma or over a sigma range; a sigma none was trained for
uses the nearest trained network, and says so."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from .base import Readiness, TorchDenoiser
from .nets.idresnet import IDResNetGenerator
from .registry import register
from . import weights
from .io import tensor_to_array
from .weights import WeightsEntry, WeightsError


class _GeneratorDenoiser(TorchDenoiser):
    method: ClassVar[str]
    trained_here = True

    def _entries(self) -> list[WeightsEntry]:
        return sorted((e for e in weights.entries_for(self.method) if e.sigma is not None), key=lambda e: e.sigma)

    def nearest(self, sigma: float) -> WeightsEntry:
        """The network used at ``sigma``: one trained for it (a network trained over a sigma
        range covers the whole range), else the nearest trained sigma (lower on ties)."""
        entries = self._entries()
        if not entries:
            raise WeightsError(f"{self.label}: not trained yet (no weights in assets/weights/)")
        return min(entries, key=lambda e: (not e.covers(sigma), abs(e.sigma - sigma), e.sigma))

    def readiness(self, sigma: float | None = None) -> Readiness:
        entries = self._entries()
        if not entries or not all(weights.is_available_locally(e) for e in entries):
            return Readiness(False, "not trained yet")
        if sigma is None:
            return Readiness(True, f"trained for sigma {_trained_text(entries)}")
        chosen = self.nearest(sigma)
        if not chosen.covers(sigma):
            outside = f"not trained for sigma {sigma:g}; uses the network trained for sigma {_trained_text([chosen])}"
            return Readiness(True, outside, outside_training=outside)
        return Readiness(True)

    def weights_id(self, sigma: float) -> str:
        return self.nearest(sigma).sha256

    def _model_key(self, sigma: float) -> str:
        # By file content: a network trained over several sigmas is listed once per sigma
        # but loaded once.
        return self.nearest(sigma).sha256

    def _build(self, key: str) -> torch.nn.Module:
        entry = next(e for e in self._entries() if e.sha256 == key)
        model = IDResNetGenerator(**entry.arch)
        state = {k: v.float() for k, v in weights.load_state_dict(entry).items()}
        model.load_state_dict(state)
        return model

    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return IDResNetGenerator.to_unit(model(x))

    def region_context(self, sigma: float) -> tuple[int, int]:
        # Exactly the receptive radius: ``_denoise_box`` computes only what the window determines.
        return int(self.model(sigma).receptive_radius), 1

    def _denoise_box(self, noisy: np.ndarray, sigma: float, window: tuple[int, int, int, int],
                     box: tuple[int, int, int, int]) -> np.ndarray:
        """The generator's unpadded-inside-the-image forward (``forward_region``) on the window:
        it gives the window less the receptive radius on each side inside the image, the same
        numbers as the whole image's run there, for about half the work of the padded window."""
        model = self.model(sigma)
        top, left, bottom, right = window
        at_border = (top == 0, bottom == noisy.shape[0], left == 0, right == noisy.shape[1])
        with torch.inference_mode(), self._autocast():
            y = model.forward_region(self._tensor(noisy[top:bottom, left:right]), at_border)
        out = tensor_to_array(IDResNetGenerator.to_unit(y.float()))
        radius = int(model.receptive_radius)
        part_top, part_left = top + radius * (not at_border[0]), left + radius * (not at_border[2])
        return out[box[0] - part_top: box[0] - part_top + box[2], box[1] - part_left: box[1] - part_left + box[3]]


def _trained_text(entries: list[WeightsEntry]) -> str:
    """``20-55`` for a network trained over a range, ``25, 50`` for per-sigma networks."""
    parts = []
    for e in entries:
        lo, hi = e.sigma_range or (e.sigma, e.sigma)
        text = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
        if text not in parts:
            parts.append(text)
    return ", ".join(parts)


@register
class IDResNet(_GeneratorDenoiser):
    name = "idresnet"
    label = "IDResNet"
    method = "idresnet"
    # Kodak24, sigma 25: bf16 costs the bundled network 0.006 dB at 2.7x the speed of fp32 on a
    # 2-core CPU, within the 0.02 dB allowed (docs/benchmark_denoisers.txt).
    cpu_bf16 = True


@register
class IDGAN(_GeneratorDenoiser):
    name = "idgan"
    label = "IDGAN"
    method = "idgan"
    # Kodak24, sigma 25: bf16 costs the bundled network 0.028 dB, over the 0.02 dB allowed, so it
    # runs in fp32 on the CPU by default (docs/benchmark_denoisers.txt).
    cpu_bf16 = False
