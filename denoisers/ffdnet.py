"""FFDNet: the official colour model, driven by a noise-level map."""
from __future__ import annotations

import torch

from .nets.ffdnet import FFDNet as FFDNetNet
from .official import ReleasedNetworkDenoiser
from .registry import register


@register
class FFDNet(ReleasedNetworkDenoiser):
    name = "ffdnet"
    label = "FFDNet"
    key = "ffdnet_color"
    net = FFDNetNet
    trained_sigma = (0.0, 75.0)  # the FFDNet paper: sigma in [0, 75]
    tile_align = 2  # the network runs on a 2x2 pixel-unshuffled grid

    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
        level = torch.full((x.shape[0],), sigma / 255.0, device=x.device)
        return model(x, level)
