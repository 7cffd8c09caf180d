"""The generator of "Image Denoising via GANs with Detail Loss" (2019), Figure 1.

SRResNet (SRGAN's generator) with the batch norms removed, 32 residual blocks instead of 16,
and no PixelShuffle stage. Choices the paper leaves open, and what we chose:

- Kernel sizes: as SRGAN (k9n64s1 first and last conv, k3n64s1 elsewhere).
- Activations: PReLU with one slope per channel, as SRGAN; none inside the skip sums.
- Output: a plain linear conv (no tanh), so the [-1, 1] target is reached without saturation.
- No global input->output residual: the paper's generator maps the noisy image to the clean
  one directly (only the long skip from the first conv's features).
- Scales: input noisy image on [0, 1] (unclipped); output on [-1, 1]; ``to_unit`` maps back.
"""
from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv3x3 - PReLU - conv3x3, plus identity (no batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class IDResNetGenerator(nn.Module):
    """Noisy [B, 3, H, W] on [0, 1] -> denoised [B, 3, H, W] on [-1, 1]. Any H, W."""

    def __init__(self, blocks: int = 32, channels: int = 64, head_kernel: int = 9) -> None:
        super().__init__()
        pad = head_kernel // 2
        self.head = nn.Sequential(nn.Conv2d(3, channels, head_kernel, padding=pad), nn.PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        self.tail = nn.Conv2d(channels, 3, head_kernel, padding=pad)
        self.receptive_radius = 2 * pad + 2 * blocks + 1

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        features = self.head(noisy)  # [B, C, H, W]
        features = features + self.body_tail(self.body(features))  # long skip
        return self.tail(features)  # [B, 3, H, W] on [-1, 1]

    @staticmethod
    def to_unit(output: torch.Tensor) -> torch.Tensor:
        """Generator output on [-1, 1] -> image on [0, 1] (not clipped)."""
        return (output + 1.0) * 0.5

    @staticmethod
    def to_signed(image: torch.Tensor) -> torch.Tensor:
        """Clean image on [0, 1] -> the training target scale [-1, 1]."""
        return image * 2.0 - 1.0
