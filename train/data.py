"""Training batches made on the training device: random crops, dihedral augmentation, noise,
and, where the config asks, scale, channel-order and brightness variation (``Augment``).

The whole image set is decoded once into one uint8 tensor on the device, so a GPU is never
waiting for a data loader. Portrait images are stored transposed (CBSD432 has 481x321 and
321x481 images): the random 90-degree rotations and flips make both orientations equally
likely anyway, so nothing is lost. Images of other sizes are zero-padded to the largest
height and width, and each crop is drawn inside its own image's valid area.

A batch is a pure function of (seed, rank, step): the crop/noise generator is re-seeded from
those three numbers at every step. Resuming at any step therefore draws exactly the batches
an unbroken run would have, with no generator state to save, and each DDP rank draws its own.
An augmentation that is off draws nothing, so runs without any draw the same batches as before
they existed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from denoisers.io import read_image
from denoisers.nets.idresnet import IDResNetGenerator

from .config import ConfigError


@dataclass
class ImageBank:
    """All training images on one device: ``pixels`` [N, Hmax, Wmax, 3] uint8, ``sizes`` [N, 2]."""

    pixels: torch.Tensor
    sizes: torch.Tensor  # (h, w) of each image's valid area, int64, same device

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    def __len__(self) -> int:
        return self.pixels.shape[0]


def load_bank(paths: list[Path], device: torch.device | str, min_size: int) -> ImageBank:
    """Decode ``paths`` once, transpose portraits to landscape, pad to one tensor on ``device``."""
    images = []
    for path in paths:
        img = read_image(path)  # HxWx3 uint8
        if img.shape[0] > img.shape[1]:
            img = img.transpose(1, 0, 2)
        if min(img.shape[:2]) < min_size:
            raise ConfigError(f"{path} is {img.shape[1]}x{img.shape[0]}, smaller than the {min_size}px crop")
        images.append(img)
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    pixels = np.zeros((len(images), h, w, 3), dtype=np.uint8)
    for k, img in enumerate(images):
        pixels[k, : img.shape[0], : img.shape[1]] = img
    sizes = torch.tensor([i.shape[:2] for i in images], dtype=torch.int64)
    return ImageBank(torch.from_numpy(pixels).to(device), sizes.to(device))


def batch_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for (seed, rank, step); distinct triples give unrelated streams."""
    mixed = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    return int(mixed[0]) << 31 | int(mixed[1]) >> 1


@dataclass(frozen=True)
class Augment:
    """Variation of the clean crops beyond flips and rotations, each off by default.

    ``scale``: (lo, hi) with 0 < lo <= hi <= 1, or None. Each batch draws s uniformly from it,
    cuts its crops at crop / s pixels and shrinks them to the crop (bilinear, antialiased), so
    textures come at more scales than the photos' own (s = 0.5: half size).
    ``channels``: each crop's R, G, B in one of the six orders, drawn per crop (the noise is the
    same in every channel, so a denoiser should not care; colours it never saw come in).
    ``brightness``: each crop times a factor drawn per crop from [1 - brightness, 1] (darker
    only: nothing is clipped, every pixel stays a possible photo's)."""

    scale: tuple[float, float] | None = None
    channels: bool = False
    brightness: float = 0.0


class BatchMaker:
    """``make(step)`` -> (noisy on [0, 1], target on [-1, 1]), both [B, 3, crop, crop] float32."""

    def __init__(self, bank: ImageBank, crop: int, batch: int, sigma_range: tuple[float, float],
                 seed: int, rank: int = 0, augment: Augment = Augment()) -> None:
        smallest = int(bank.sizes.min())
        if crop > smallest:
            raise ConfigError(f"crop {crop} is larger than the smallest image side {smallest}")
        largest_cut = crop if augment.scale is None else _cut_side(crop, augment.scale[0])
        if largest_cut > smallest:
            raise ConfigError(f"scale augmentation down to {augment.scale[0]:g} cuts {largest_cut} px for a "
                              f"{crop} px crop, more than the smallest image side {smallest}")
        self.bank, self.crop, self.batch, self.augment = bank, crop, batch, augment
        self.sigma_lo, self.sigma_hi = sigma_range
        self.seed, self.rank = seed, rank
        self.generator = torch.Generator(device=bank.device)
        self.offsets = torch.arange(largest_cut, device=bank.device)  # sliced per batch: no allocation per step

    def make(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        g.manual_seed(batch_seed(self.seed, self.rank, step))
        dev, b, c, aug = self.bank.device, self.batch, self.crop, self.augment
        cut = c
        if aug.scale is not None:
            lo, hi = aug.scale
            cut = _cut_side(c, lo + (hi - lo) * float(torch.rand(1, generator=g, device=dev)))
        idx = torch.randint(len(self.bank), (b,), generator=g, device=dev)
        hw = self.bank.sizes[idx]  # [B, 2]
        # Uniform top-left corners inside each image's own valid area.
        y = (torch.rand(b, generator=g, device=dev) * (hw[:, 0] - cut + 1)).long()
        x = (torch.rand(b, generator=g, device=dev) * (hw[:, 1] - cut + 1)).long()
        offsets = self.offsets[:cut]
        rows = (y[:, None] + offsets)[:, :, None]  # [B, cut, 1]
        cols = (x[:, None] + offsets)[:, None, :]  # [B, 1, cut]
        crops = self.bank.pixels[idx[:, None, None], rows, cols]  # [B, cut, cut, 3] uint8
        clean = crops.permute(0, 3, 1, 2).float().div_(255.0)  # [B, 3, cut, cut] on [0, 1]
        if cut != c:
            clean = F.interpolate(clean, size=(c, c), mode="bilinear", align_corners=False,
                                  antialias=True).clamp_(0.0, 1.0)
        clean = _dihedral(clean, torch.rand(b, 3, generator=g, device=dev) < 0.5)
        if aug.channels:
            order = torch.rand(b, 3, generator=g, device=dev).argsort(dim=1)  # a uniform permutation per crop
            clean = clean.gather(1, order[:, :, None, None].expand_as(clean))
        if aug.brightness > 0:
            clean = clean * (1.0 - aug.brightness * torch.rand(b, 1, 1, 1, generator=g, device=dev))
        sigma = self.sigma_lo + (self.sigma_hi - self.sigma_lo) * torch.rand(b, generator=g, device=dev)
        noise = torch.randn(clean.shape, generator=g, device=dev) * (sigma / 255.0).view(b, 1, 1, 1)
        noisy = clean + noise  # not clipped, as in the evaluation protocol
        return noisy, IDResNetGenerator.to_signed(clean)


def _cut_side(crop: int, scale: float) -> int:
    """Pixels to cut so that shrinking by ``scale`` gives ``crop``."""
    return max(crop, math.ceil(crop / scale - 1e-9))


def _dihedral(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Per-sample flips (vertical, horizontal) and transpose: all 8 rotations/reflections."""
    x = torch.where(flips[:, 0, None, None, None], x.flip(2), x)
    x = torch.where(flips[:, 1, None, None, None], x.flip(3), x)
    return torch.where(flips[:, 2, None, None, None], x.transpose(2, 3), x)


def resolve_images(spec: str, limit: int | None = None, download: bool = True) -> list[Path]:
    """A folder of images, or a dataset name of ``denoisers.datasets`` (mirror, cache, download)."""
    path = Path(spec)
    if path.is_dir():
        from denoisers.io import image_files

        return image_files(path)[:limit]
    from denoisers import datasets

    if spec not in datasets.DATASETS:
        raise FileNotFoundError(f"{spec!r} is neither a folder nor a dataset name ({', '.join(datasets.DATASETS)})")
    return datasets.files(spec, download=download, limit=limit)
