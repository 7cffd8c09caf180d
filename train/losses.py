"""The loss terms of both phases, each named after the network it trains.

The losses are taken in float32 on the networks' outputs (under bf16 autocast those come out in
bf16: the VGG19 forward of ``content_loss`` runs in bf16 too, like the generator's). Images are
on [-1, 1].
- ``pixel_loss``: MSE on [-1, 1] (phase 1 alone; weight 0.001 in phase 2).
- ``content_loss``: MSE between VGG19 relu5_4 features of output and target, mean over all
  feature elements (the paper's eq. 7 averaged also over channels and batch).
- ``g_adversarial_loss``: -log D(G(y)) = softplus(-logit).
- ``d_real_loss`` + ``d_fake_loss``: -log D(x) - log(1 - D(G(y))) (the paper's eq. 2), as
  softplus(-logit_real) and softplus(logit_fake).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .vgg import VGG19Features


def pixel_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(output.float(), target.float())


def content_loss(vgg: VGG19Features, output: torch.Tensor, target: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
    """MSE of ``scale`` * relu5_4 features; output and target on [-1, 1]. The target's features
    are taken without a graph: only the output's path needs a backward pass through the VGG."""
    with torch.no_grad():
        real = vgg(target.to(output.dtype) * 0.5 + 0.5).float() * scale
    fake = vgg(output * 0.5 + 0.5).float() * scale
    return F.mse_loss(fake, real)


def g_adversarial_loss(logit_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logit_fake.float()).mean()


def d_real_loss(logit_real: torch.Tensor) -> torch.Tensor:
    """l_d_real = -log D(x)."""
    return F.softplus(-logit_real.float()).mean()


def d_fake_loss(logit_fake: torch.Tensor) -> torch.Tensor:
    """l_d_fake = -log(1 - D(G(y)))."""
    return F.softplus(logit_fake.float()).mean()
