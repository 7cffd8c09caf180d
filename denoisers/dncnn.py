"""DnCNN: the official blind colour model CDnCNN-B."""
from __future__ import annotations

import torch

from .nets.dncnn import DnCNN as DnCNNNet
from .official import ReleasedNetworkDenoiser
from .registry import register


@register
class DnCNN(ReleasedNetworkDenoiser):
    name = "dncnn"
    label = "DnCNN"
    key = "dncnn_color_blind"
    net = DnCNNNet

    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return model(x)  # blind model: sigma is accepted and ignored
