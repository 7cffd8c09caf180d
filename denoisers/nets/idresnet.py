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
import torch.nn.functional as F
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

    def forward_region(self, noisy: torch.Tensor, at_border: tuple[bool, bool, bool, bool]) -> torch.Tensor:
        """``forward`` on a window of a larger image, computing only what the window determines.

        ``at_border`` says which sides of the window (top, bottom, left, right) lie on the image's
        border. There each conv zero-pads as ``forward`` does on the whole image; elsewhere it
        pads nothing, so every layer's output shrinks by the conv's radius on that side and
        holds exactly the whole image's values there. The result is the window less
        ``receptive_radius`` pixels on each side not on the border: the same numbers as
        ``forward`` on the whole image (up to float summation order) for about half the work
        of running the padded window, whose outer ring is wrong anyway."""
        top, bottom, left, right = (bool(b) for b in at_border)

        def conv(layer: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
            p = layer.kernel_size[0] // 2
            pads = (p * left, p * right, p * top, p * bottom)
            return F.conv2d(F.pad(x, pads) if any(pads) else x, layer.weight, layer.bias)

        def cut(x: torch.Tensor, p: int) -> torch.Tensor:
            """``x`` less ``p`` pixels on each side that is not on the border."""
            h, w = x.shape[-2:]
            return x[..., p * (not top): h - p * (not bottom), p * (not left): w - p * (not right)]

        head_conv, head_act = self.head
        features = head_act(conv(head_conv, noisy))
        x = features
        for block in self.body:
            x = cut(x, 2) + conv(block.conv2, block.act(conv(block.conv1, x)))
        reach = 2 * len(self.body) + self.body_tail.kernel_size[0] // 2  # the long skip's shrink
        return conv(self.tail, cut(features, reach) + conv(self.body_tail, x))

    @staticmethod
    def to_unit(output: torch.Tensor) -> torch.Tensor:
        """Generator output on [-1, 1] -> image on [0, 1] (not clipped)."""
        return (output + 1.0) * 0.5

    @staticmethod
    def to_signed(image: torch.Tensor) -> torch.Tensor:
        """Clean image on [0, 1] -> the training target scale [-1, 1]."""
        return image * 2.0 - 1.0
