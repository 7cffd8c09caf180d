"""The in-run evaluation: a few Kodak images under the evaluation protocol (docs/evaluation.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from denoisers.io import array_to_tensor, read_image, tensor_to_array, to_float, to_uint8
from denoisers.metrics import add_noise, high_frequency_energy, psnr
from denoisers.nets.idresnet import IDResNetGenerator


def load_eval_images(paths: list[Path]) -> list[tuple[str, np.ndarray]]:
    return [(p.name, read_image(p)) for p in paths]


@torch.no_grad()
def evaluate(g: IDResNetGenerator, images: list[tuple[str, np.ndarray]], sigmas: tuple[float, ...],
             device: torch.device) -> dict[str, float]:
    """Per sigma under the evaluation protocol (seed 0, unclipped noise, fp32): mean PSNR
    (``psnr_s25``) and detail, the outputs' mean high-frequency energy over the clean images'
    (``detail_s25``, as ``denoisers.report`` computes it). On a GPU, cuDNN's TF32 convolutions
    (on by default in PyTorch, and fine for training) are off while it runs: fp32 means fp32."""
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        return _evaluate(g, images, sigmas, device)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def _evaluate(g, images, sigmas, device) -> dict[str, float]:
    out = {}
    for sigma in sigmas:
        values, energy, clean_energy = [], 0.0, 0.0
        for _, clean_u8 in images:
            noisy = add_noise(to_float(clean_u8), sigma, seed=0)
            output_u8 = to_uint8(tensor_to_array(g.to_unit(g(array_to_tensor(noisy, device)))))
            values.append(psnr(clean_u8, output_u8))
            energy += high_frequency_energy(output_u8)
            clean_energy += high_frequency_energy(clean_u8)
        out[f"psnr_s{sigma:g}"] = float(np.mean(values))
        out[f"detail_s{sigma:g}"] = energy / clean_energy if clean_energy else float("nan")
    return out
