"""Write the 500x500 centre crops of Kodak24 that some papers report on (the FFDNet paper's
Kodak24 table among them) into a folder, for ``denoisers.evaluate``.

    python scripts/kodak_centre_crops.py OUT_DIR

Crops start at row 6, column 134 for landscape images and row 134, column 6 for portrait
ones: the offsets of the crops in the FFDNet repository's ``testsets/Kodak24``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoisers import datasets  # noqa: E402
from denoisers.io import read_image  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/kodak_centre_crops.py", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the 24 crops (created if needed)")
    out = parser.parse_args(argv).out
    if out.exists() and not out.is_dir():
        parser.error(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for path in datasets.files("kodak24"):
        image = read_image(path)
        top, left = (6, 134) if image.shape[1] > image.shape[0] else (134, 6)
        Image.fromarray(image[top:top + 500, left:left + 500]).save(out / path.name)
    print(f"wrote {len(list(out.glob('*.png')))} crops to {out}")


if __name__ == "__main__":
    main()
