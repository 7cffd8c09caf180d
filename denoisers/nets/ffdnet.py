"""FFDNet (Zhang et al., IEEE TIP 2018): pixel-unshuffle, noise-level map, 3x3 conv stack."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FFDNet(nn.Module):
    """Colour FFDNet with merged batch norm; layer names follow the released state dict."""

    def __init__(self, in_channels: int = 3, features: int = 96, depth: int = 12) -> None:
        super().__init__()
        sub = in_channels * 4
        layers: list[nn.Module] = [nn.Conv2d(sub + 1, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, sub, 3, padding=1))
        self.model = nn.Sequential(*layers)
        self.receptive_radius = 2 * depth + 1

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, H, W] on [0, 1]; sigma: [B] on the same [0, 1] scale. Returns the image."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")  # even size for the x2 unshuffle
        x = F.pixel_unshuffle(x, 2)  # [B, 12, H/2, W/2]
        level = sigma.view(-1, 1, 1, 1).to(x.dtype).expand(x.shape[0], 1, *x.shape[-2:])
        x = self.model(torch.cat([x, level], dim=1))
        return F.pixel_shuffle(x, 2)[..., :h, :w]
