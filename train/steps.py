"""One optimisation step of each phase: ``mse`` (IDResNet) and ``gan`` (IDGAN, k = 1).

Loss names say which network they train: ``l_g_pix``, ``l_g_content``, ``l_g_adv`` for the
generator, ``l_d_real``, ``l_d_fake`` for the discriminator; ``d_real`` and ``d_fake`` are the
discriminator's mean outputs, logged to watch the balance of the two.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable

import torch

from .config import Config
from .losses import content_loss, d_fake_loss, d_real_loss, g_adversarial_loss, pixel_loss

if TYPE_CHECKING:
    from .loop import TrainState


def autocast(cfg: Config, device: torch.device):
    if cfg.amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def mse_step(state: TrainState, noisy: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    with autocast(state.cfg, state.device):
        output = state.g_train(noisy)
    l_g_pix = pixel_loss(output, target)
    state.opt_g.zero_grad(set_to_none=True)
    l_g_pix.backward()
    state.opt_g.step()
    return {"l_g_pix": l_g_pix.detach()}


def g_step(state: TrainState, noisy: torch.Tensor, target: torch.Tensor
           ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Generator step of phase 2 with D frozen; returns the losses and the fake batch."""
    cfg, d_plain = state.cfg, state.d
    # D is called unwrapped (no DDP hooks) with requires_grad off: its weights get no gradient.
    d_plain.requires_grad_(False)
    with autocast(cfg, state.device):
        fake = state.g_train(noisy)
        l_g_content = content_loss(state.vgg, fake, target, cfg.content_feature_scale)
        logit_fake = d_plain(fake)
    l_g_pix = pixel_loss(fake, target)
    l_g_adv = g_adversarial_loss(logit_fake)
    l_g = cfg.w_pix * l_g_pix + cfg.w_content * l_g_content + cfg.w_adv * l_g_adv
    state.opt_g.zero_grad(set_to_none=True)
    l_g.backward()
    state.opt_g.step()
    d_plain.requires_grad_(True)
    losses = {"l_g_pix": l_g_pix.detach(), "l_g_content": l_g_content.detach(), "l_g_adv": l_g_adv.detach()}
    return losses, fake


def d_step(state: TrainState, target: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """Discriminator step on the real batch and the detached fake, one forward/backward each
    (BasicSR's order; under DDP each backward is its own gradient all-reduce)."""
    fake = fake.detach()
    state.opt_d.zero_grad(set_to_none=True)
    with autocast(state.cfg, state.device):
        logit_real = state.d_train(target)
    l_d_real = d_real_loss(logit_real)
    l_d_real.backward()
    with autocast(state.cfg, state.device):
        logit_fake = state.d_train(fake)
    l_d_fake = d_fake_loss(logit_fake)
    l_d_fake.backward()
    state.opt_d.step()
    return {
        "l_d_real": l_d_real.detach(), "l_d_fake": l_d_fake.detach(),
        "d_real": torch.sigmoid(logit_real.detach().float()).mean(),  # mean D(x)
        "d_fake": torch.sigmoid(logit_fake.detach().float()).mean(),  # mean D(G(y))
    }


def gan_step(state: TrainState, noisy: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """One generator step (D frozen), then one discriminator step (fake detached): k = 1."""
    losses, fake = g_step(state, noisy, target)
    return {**losses, **d_step(state, target, fake)}


STEPS: dict[str, Callable[[TrainState, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]] = {
    "mse": mse_step, "gan": gan_step,
}
