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
    trained_sigma = (0.0, 55.0)  # the blind models of the DnCNN paper: sigma in [0, 55]

    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return model(x)  # blind model: sigma is accepted and ignored
