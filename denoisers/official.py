"""Shared behaviour of the methods that run one released network (DnCNN, FFDNet)."""
from __future__ import annotations

from typing import ClassVar

import torch

from .base import Readiness, TorchDenoiser
from . import weights


class ReleasedNetworkDenoiser(TorchDenoiser):
    """One manifest entry (``key``) and one network class (``net``) for every sigma."""

    key: ClassVar[str]
    net: ClassVar[type[torch.nn.Module]]
    #: The noise levels (0-255) the released model was trained on, as its paper gives them.
    trained_sigma: ClassVar[tuple[float, float]]

    def readiness(self, sigma: float | None = None) -> Readiness:
        lo, hi = self.trained_sigma
        notes, outside = [], ""
        if sigma is None:
            notes.append(f"trained for sigma {lo:g}-{hi:g}")
        elif not lo <= sigma <= hi:
            outside = f"not trained for sigma {sigma:g}: trained for sigma {lo:g}-{hi:g}"
            notes.append(outside)
        if not weights.is_available_locally(weights.manifest()[self.key]):
            notes.append("weights are downloaded on first use")
        return Readiness(True, "; ".join(notes), outside_training=outside)

    def weights_id(self, sigma: float) -> str:
        return weights.manifest()[self.key].sha256

    def _model_key(self, sigma: float) -> str:
        return self.key

    def _build(self, key: str) -> torch.nn.Module:
        entry = weights.manifest()[key]
        model = self.net(**entry.arch)
        model.load_state_dict(weights.load_state_dict(entry))
        return model
