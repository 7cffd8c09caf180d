"""DnCNN (Zhang et al., IEEE TIP 2017), with batch norm merged into the convolutions."""
from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """``depth`` 3x3 convs with ReLU between; predicts the noise, returns ``x - noise``.

    Layer names follow the released state dict (``model.{0,2,...}``).
    """

    def __init__(self, in_channels: int = 3, features: int = 64, depth: int = 20) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, in_channels, 3, padding=1))
        self.model = nn.Sequential(*layers)
        self.receptive_radius = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] on [0, 1]
        return x - self.model(x)
