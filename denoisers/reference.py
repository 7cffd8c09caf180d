"""Published numbers, for showing beside ours (never used as results).

Mean PSNR (dB) on Kodak24. ``PAPER_TABLE1`` is the IDGAN paper's Table 1 (its DnCNN and
CBM3D rows were taken from another paper and sit about 0.3 and 0.15 dB above those methods'
own published values), measured on the full 768x512 images. ``PUBLISHED`` is the Kodak24 table
of the FFDNet paper (CBM3D, CDnCNN-B and FFDNet); those values were measured on the 500x500 centre
crops of Kodak24: run on those crops (``scripts/kodak_centre_crops.py``) our DnCNN, FFDNet and
CBM3D land within 0.052 dB of them, and 0.11-0.22 dB below our full-image means
(``docs/results.md``).
"""
from __future__ import annotations

# What the published Kodak24 values were measured on, for every place that shows them.
PUBLISHED_ON = "the 500x500 centre crops of Kodak24"
KODAK24_IMAGES = 24

PAPER_TABLE1: dict[str, dict[int, float]] = {
    "cbm3d": {25: 31.81, 35: 30.04, 50: 28.62},
    "dncnn": {25: 32.35, 35: 30.76, 50: 29.16},
    "idresnet": {25: 32.52, 35: 30.93, 50: 29.45},
    "idgan": {25: 30.58, 35: 29.41, 50: 29.19},
}

PUBLISHED: dict[str, dict[int, float]] = {
    "cbm3d": {15: 34.28, 25: 31.68, 50: 28.46},
    "dncnn": {15: 34.48, 25: 32.03, 50: 28.85},
    "ffdnet": {15: 34.63, 25: 32.13, 50: 28.98},
}
