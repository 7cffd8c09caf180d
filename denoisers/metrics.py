"""The evaluation protocol (docs/evaluation.md) in one place: noise, quantisation, PSNR, SSIM;
the perceptual distances LPIPS and DISTS (networks in ``perceptual.py``, imported on first use);
the detail measure; the noise estimate for inputs that come already noisy."""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from .io import to_uint8


def add_noise(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Additive white Gaussian noise, sigma on the 0-255 scale; the result is NOT clipped.

    ``clean`` is float32 on [0, 1]. The noise is drawn in float64 by
    ``np.random.default_rng(seed).normal`` and cast to float32, exactly as the protocol says.
    """
    noise = np.random.default_rng(seed).normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    return (clean.astype(np.float32) + noise).astype(np.float32)


def psnr(reference_u8: np.ndarray, test_u8: np.ndarray) -> float:
    """PSNR in dB of two uint8 RGB arrays: all channels, whole image, peak 255."""
    _check_pair(reference_u8, test_u8)
    mse = np.mean((reference_u8.astype(np.float64) - test_u8.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def ssim(reference_u8: np.ndarray, test_u8: np.ndarray) -> float:
    """SSIM of two uint8 RGB arrays (skimage, channel_axis=-1, data_range=255)."""
    _check_pair(reference_u8, test_u8)
    return float(structural_similarity(reference_u8, test_u8, channel_axis=-1, data_range=255))


def score(clean_u8: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of a float output (clipped and rounded first) against the clean uint8 image."""
    out_u8 = to_uint8(output)
    return psnr(clean_u8, out_u8), ssim(clean_u8, out_u8)


# ITU-R BT.601 luma weights (those of JPEG's YCbCr).
LUMA = np.array([0.299, 0.587, 0.114])


def high_frequency_energy(image_u8: np.ndarray) -> float:
    """Mean squared Laplacian of the luminance (0-255 scale): how much fine detail an image has.

    The 3x3 Laplacian (``scipy.ndimage.laplace``, reflected borders) of the BT.601 luma. A
    denoiser that smooths lowers it below the clean image's; leftover noise or invented texture
    raises it. Grey images (H x W) are taken as their own luminance.
    """
    if image_u8.dtype != np.uint8:
        raise ValueError(f"high_frequency_energy takes a uint8 image, got {image_u8.dtype}")
    if image_u8.ndim == 3 and image_u8.shape[-1] == 3:
        luma = image_u8.astype(np.float64) @ LUMA
    elif image_u8.ndim == 2:
        luma = image_u8.astype(np.float64)
    else:
        raise ValueError(f"high_frequency_energy takes an H x W x 3 or H x W image, got {image_u8.shape}")
    return float(np.mean(ndimage.laplace(luma, mode="reflect") ** 2))


def detail_ratio(clean_u8: np.ndarray, test_u8: np.ndarray, clean_energy: float | None = None) -> float | None:
    """``test_u8``'s high-frequency energy over ``clean_u8``'s (1 = as much fine detail as the
    clean image, below 1 = smoothed); None for a flat clean image, which has none to keep.
    ``clean_energy``: ``high_frequency_energy(clean_u8)`` when the caller has it already."""
    _check_pair(clean_u8, test_u8)
    clean = high_frequency_energy(clean_u8) if clean_energy is None else clean_energy
    return None if clean == 0 else high_frequency_energy(test_u8) / clean


def _details(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The finest db2 wavelet details (horizontal, vertical, diagonal). For white Gaussian
    noise of deviation sigma each is Gaussian with deviation sigma, and the three are independent."""
    import pywt

    return pywt.dwt2(channel, "db2", mode="symmetric")[1]


def _mad_sigma(coefficients: np.ndarray) -> float:
    return float(np.median(np.abs(coefficients))) / 0.6745


def estimate_noise_sigma(image: np.ndarray, rounds: int = 3) -> float:
    """Gaussian noise sigma of an 8-bit image on the 0-255 scale.

    The classic wavelet estimate (median absolute diagonal detail / 0.6745 per channel, then
    the mean) is biased both ways: it reads low where the noise was clipped at 0 or 255 (near
    black or white an 8-bit value cannot swing both ways; a saturated area has no noise left),
    and high on texture, which leaks into the diagonal details. So the median is taken only
    over diagonal details (a) whose neighbourhood mean lies at least 2 sigma from both bounds
    (1.5, then 1 sigma when under 2 % of the image is left) and (b) where the horizontal and
    vertical details are no stronger than noise of that sigma would make them (1.5x; they are
    independent of the diagonal ones under white noise, so this adds no bias). Sigma starts
    from the whole-image estimate and is refined ``rounds`` times. A channel left with under
    2 % of its area keeps its whole-image value. ``scripts/benchmark_noise_estimate.py`` measures it."""
    pixels = image.astype(np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = [pixels[..., c] for c in range(pixels.shape[-1])]
    details = [_details(c) for c in channels]
    whole = [_mad_sigma(hh) for _, _, hh in details]
    means = [ndimage.uniform_filter(c, 7) for c in channels]
    energies = [ndimage.uniform_filter((lh ** 2 + hl ** 2) / 2, 5) for lh, hl, _ in details]
    sigma = float(np.mean(whole))
    for _ in range(rounds):
        per_channel = []
        for mean, energy, (_, _, hh), fallback in zip(means, energies, details, whole):
            value = fallback
            flat = energy < (1.5 * sigma) ** 2
            for band in (2.0, 1.5, 1.0):
                inside = (mean > band * sigma) & (mean < 255.0 - band * sigma)
                inside = ndimage.binary_erosion(inside, iterations=2)
                # Detail (i, j) covers the pixels near (2i, 2j); db2 gives one extra row/column.
                keep = np.zeros(hh.shape, bool)
                half = inside[::2, ::2][:hh.shape[0], :hh.shape[1]]
                keep[:half.shape[0], :half.shape[1]] = half
                chosen = next((k for k in (keep & flat, keep) if k.mean() >= 0.02), None)
                if chosen is not None:
                    value = _mad_sigma(hh[chosen])
                    break
            per_channel.append(value)
        sigma = float(np.mean(per_channel))
    return sigma


def _check_perceptual_pair(a: np.ndarray, b: np.ndarray, name: str) -> None:
    from .perceptual import MIN_SIDE

    for label, x in (("reference", a), ("image", b)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 3 or x.shape[-1] != 3:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"{name} takes H x W x 3 uint8 RGB arrays; the {label} is {got}")
    if a.shape != b.shape:
        raise ValueError(f"{name} takes two images of one size; shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < MIN_SIDE:
        raise ValueError(f"{name} takes images of at least {MIN_SIDE} x {MIN_SIDE} pixels, got "
                         f"{a.shape[1]} x {a.shape[0]}")


def lpips(reference: np.ndarray, image: np.ndarray, net: str = "alex") -> float:
    """LPIPS v0.1 (Zhang et al. 2018) of two H x W x 3 uint8 RGB arrays of one size, at least
    32 x 32: a learned distance of deep features, 0 for identical images, lower is closer.
    ``net`` is ``"alex"`` (AlexNet trunk, the usual choice) or ``"vgg"`` (VGG16).
    Weights: manifest entries ``lpips_alex`` / ``lpips_vgg`` (``denoisers/perceptual.py``)."""
    from . import perceptual

    if net not in perceptual.NETS:
        raise ValueError(f"lpips net must be one of {', '.join(map(repr, perceptual.NETS))}, got {net!r}")
    _check_perceptual_pair(reference, image, "lpips")
    return perceptual.lpips(reference, image, net)


def dists(reference: np.ndarray, image: np.ndarray) -> float:
    """DISTS (Ding et al. 2020) of two H x W x 3 uint8 RGB arrays of one size, at least 32 x 32:
    structure and texture similarity of VGG16 features, about 0 for identical images (to
    1e-7), lower is closer; tolerant of resampled texture. Weights: ``dists`` and ``lpips_vgg``."""
    from . import perceptual

    _check_perceptual_pair(reference, image, "dists")
    return perceptual.dists(reference, image)


PERCEPTUAL = ("lpips", "dists")  # the perceptual distances, in the order tables show them


def scorer(name: str, reference: np.ndarray) -> Callable[[np.ndarray], float]:
    """``name`` ("lpips", AlexNet, or "dists") of images against one ``reference``, as a
    function of the image: for scoring many outputs of one clean image. DISTS computes the
    reference's features once, so that each image costs one pass of VGG16 instead of two (about
    half the time); the values are those of ``dists(reference, image)`` to float rounding."""
    from . import perceptual

    if name not in PERCEPTUAL:
        raise ValueError(f"scorer takes one of {', '.join(map(repr, PERCEPTUAL))}, got {name!r}")
    _check_perceptual_pair(reference, reference, name)
    if name == "lpips":
        return lambda image: lpips(reference, image)
    against = perceptual.DistsReference(reference)

    def score(image: np.ndarray) -> float:
        _check_perceptual_pair(reference, image, name)
        return against(image)

    return score


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"metrics take uint8 arrays, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
