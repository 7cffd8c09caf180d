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

    def readiness(self, sigma: float | None = None) -> Readiness:
        if weights.is_available_locally(weights.manifest()[self.key]):
            return Readiness(True)
        return Readiness(True, "weights are downloaded on first use")

    def weights_id(self, sigma: float) -> str:
        return weights.manifest()[self.key].sha256

    def _model_key(self, sigma: float) -> str:
        return self.key

    def _build(self, key: str) -> torch.nn.Module:
        entry = weights.manifest()[key]
        model = self.net(**entry.arch)
        model.load_state_dict(weights.load_state_dict(entry))
        return model
