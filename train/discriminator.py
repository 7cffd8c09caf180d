"""The SRGAN discriminator (Ledig et al. 2017, Figure 4), which the IDGAN paper reuses.

k3n64s1 + LeakyReLU, then seven conv + batch norm + LeakyReLU blocks
(64s2, 128s1, 128s2, 256s1, 256s2, 512s1, 512s2), dense 1024, LeakyReLU, dense 1.
``forward`` returns the logit; D(x) = sigmoid(logit), kept out of the module so the losses can
use the numerically stable ``softplus`` forms of -log D and -log(1 - D).

The dense layer's input size depends on the crop size, so the module is built for one crop
size and refuses any other with a clear error (instead of a shape mismatch deep inside).
The batch norms always use batch statistics (``track_running_stats=False``): the
discriminator is only ever used in training, and this way a forward pass in the generator's
step changes nothing in it.
"""
from __future__ import annotations

import torch
from torch import nn

# (output channels as a multiple of the base width, stride) for the conv blocks after the first.
BLOCKS = ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))


def feature_side(crop: int) -> int:
    """Spatial side after the convs: each stride-2, pad-1, 3x3 conv maps s to (s - 1) // 2 + 1."""
    side = crop
    for _, stride in BLOCKS:
        side = (side - 1) // stride + 1
    return side


class Discriminator(nn.Module):
    """[B, 3, crop, crop] image on [-1, 1] -> [B] logits (real is positive)."""

    def __init__(self, crop: int, channels: int = 64, dense: int = 1024, slope: float = 0.2) -> None:
        super().__init__()
        if crop < 16:
            raise ValueError(f"the discriminator needs crops of at least 16 px, got {crop}")
        self.crop = crop
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.LeakyReLU(slope)]
        in_ch = channels
        for mult, stride in BLOCKS:
            out_ch = channels * mult
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_ch, track_running_stats=False),
                nn.LeakyReLU(slope),
            ]
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        side = feature_side(crop)
        self.flat = in_ch * side * side
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(self.flat, dense), nn.LeakyReLU(slope), nn.Linear(dense, 1)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if tuple(image.shape[-2:]) != (self.crop, self.crop):
            raise ValueError(
                f"this discriminator was built for {self.crop}x{self.crop} crops (dense layer of "
                f"{self.flat} inputs), got {tuple(image.shape[-2:])}"
            )
        return self.head(self.features(image)).squeeze(1)  # [B]


def check_state_dict(disc: Discriminator, state: dict[str, torch.Tensor]) -> None:
    """Refuse a saved discriminator built for another crop size, naming both sizes."""
    key = "head.1.weight"
    if key in state and state[key].shape[1] != disc.flat:
        raise ValueError(
            f"saved discriminator has a dense layer of {state[key].shape[1]} inputs, this crop "
            f"({disc.crop}px) needs {disc.flat}: the crop size differs from the checkpoint's"
        )
