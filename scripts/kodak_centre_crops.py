"""Write the 500x500 centre crops of Kodak24 that some papers report on (the FFDNet paper's
Kodak24 table among them) into a folder, for ``denoisers.evaluate``.

    python scripts/kodak_centre_crops.py OUT_DIR
    python scripts/kodak_centre_crops.py --size 256 OUT_DIR   # the exact centre, 256x256

Without ``--size``, crops start at row 6, column 134 for landscape images and row 134,
column 6 for portrait ones: the offsets of the crops in the FFDNet repository's
``testsets/Kodak24``. With ``--size N`` they are the N x N centres (for studies that need many
runs per image, such as the perception-distortion plane of the dial).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoisers import datasets  # noqa: E402
from denoisers.io import read_image, write_png  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/kodak_centre_crops.py", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the 24 crops (created if needed)")
    parser.add_argument("--size", type=int, default=None,
                        help="N x N centre crops instead of the 500x500 crops at the FFDNet offsets")
    args = parser.parse_args(argv)
    out, size = args.out, args.size
    if size is not None and not 1 <= size <= 512:
        parser.error(f"--size {size}: a crop side from 1 to 512 (Kodak images are 768x512)")
    if out.exists() and not out.is_dir():
        parser.error(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for path in datasets.files("kodak24"):
        image = read_image(path)
        if size is None:
            side = 500
            top, left = (6, 134) if image.shape[1] > image.shape[0] else (134, 6)
        else:
            side = size
            top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        write_png(image[top:top + side, left:left + side], out / path.name)
    print(f"wrote {len(list(out.glob('*.png')))} crops to {out}")


if __name__ == "__main__":
    main()
