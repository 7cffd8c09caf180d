"""FFDNet: the official colour model, driven by a noise-level map."""
from __future__ import annotations

import torch

from .base import Readiness, TorchDenoiser
from .nets.ffdnet import FFDNet as FFDNetNet
from .registry import register
from .weights import is_available_locally, load_state_dict, manifest


@register
class FFDNet(TorchDenoiser):
    name = "ffdnet"
    label = "FFDNet"
    key = "ffdnet_color"
    tile_align = 2  # the network runs on a 2x2 pixel-unshuffled grid

    def readiness(self, sigma: float | None = None) -> Readiness:
        if is_available_locally(manifest()[self.key]):
            return Readiness(True)
        return Readiness(True, "weights are downloaded on first use")

    def weights_id(self, sigma: float) -> str:
        return manifest()[self.key].sha256

    def _model_key(self, sigma: float) -> str:
        return self.key

    def _build(self, key: str) -> torch.nn.Module:
        entry = manifest()[key]
        model = FFDNetNet(**entry.arch)
        model.load_state_dict(load_state_dict(entry))
        return model

    def _forward(self, model: torch.nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
        level = torch.full((x.shape[0],), sigma / 255.0, device=x.device)
        return model(x, level)
