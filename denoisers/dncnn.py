"""DnCNN: the official blind colour model CDnCNN-B."""
from __future__ import annotations

import torch

from .base import Readiness, TorchDenoiser
from .nets.dncnn import DnCNN as DnCNNNet
from .registry import register
from .weights import is_available_locally, load_state_dict, manifest


@register
class DnCNN(TorchDenoiser):
    name = "dncnn"
    label = "DnCNN"
    key = "dncnn_color_blind"

    def readiness(self, sigma: float | None = None) -> Readiness:
        if is_available_locally(manifest()[self.key]):
            return Readiness(True)
        return Readiness(True, "weights are downloaded on first use")

    def weights_id(self, sigma: float) -> str:
        return manifest()[self.key].sha256

    def _model_key(self, sigma: float) -> str:
        return self.key  # blind: one network for every sigma

    def _build(self, key: str) -> torch.nn.Module:
        entry = manifest()[key]
        model = DnCNNNet(**entry.arch)
        model.load_state_dict(load_state_dict(entry))
        return model

    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return model(x)  # blind model: sigma is accepted and ignored
