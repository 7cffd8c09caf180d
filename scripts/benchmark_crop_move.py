"""How long moving the crop takes: the browser's wait from pressing Enter in the crop-centre
box to the new panels, and the server's PNG encoding of one render's panels, the app's
fast lossless PNG against gradio's own encoder, both measured in this run.

    python scripts/benchmark_crop_move.py [--cache-dir DIR] [--moves 7]

Starts ``python -m app``, opens Kodak24 image 23 with four methods (computed once, then from
the cache) in Debian's chromium, and moves the crop ``--moves`` times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app_server import AppServer, opened_view  # noqa: E402

VIEW = "?image=kodim23&sigma=25&seed=0&methods=idresnet,idgan,dncnn,ffdnet"


def browser_moves(url: str, moves: int, chromium: str) -> list[float]:
    centre = "document.querySelector('#centre textarea, #centre input').value"
    times = []
    with opened_view(url + VIEW, chromium, {"width": 1400, "height": 1000}) as page:
        page.wait_for_timeout(2000)
        y_box = page.locator("#centre-y input")
        for i in range(moves):
            y = 100 + 40 * i
            y_box.fill(str(y))
            start = time.perf_counter()
            y_box.press("Enter")
            page.wait_for_function(f"{centre}.startsWith('centre x=384, y={y}')", timeout=60_000)
            times.append(time.perf_counter() - start)
    return times


def encode_times() -> tuple[float, float, int]:
    """Seconds to encode one render's panels (six full views and six 4x crops of kodim23) with
    the app's PNG and with gradio's encoder, and how many panels that is."""
    import numpy as np
    from gradio import processing_utils
    from PIL import Image

    from app import crops, export
    from denoisers import datasets
    from denoisers.io import read_image

    clean = read_image(datasets.files("kodak24", limit=23)[22])
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    box = crops.crop_box(None, crops.CROP_DEFAULT, clean.shape)
    fulls = [crops.draw_box(img, box) for img in [clean, noisy] + [clean] * 4]  # outputs are smooth like clean
    panels = fulls + [crops.zoomed_crop(img, box, crops.ZOOM_DEFAULT) for img in fulls]
    start = time.perf_counter()
    for img in panels:
        export.png_bytes(img, level=1)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for img in panels:
        processing_utils.encode_pil_to_bytes(Image.fromarray(img), "png")
    theirs = time.perf_counter() - start
    return ours, theirs, len(panels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse a result cache (default: a fresh one)")
    parser.add_argument("--moves", type=int, default=7)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    ours, theirs, n = encode_times()
    print(f"one render's {n} panels (kodim23): app PNG {ours:.3f} s, gradio's encoder {theirs:.3f} s; "
          f"ratio {theirs / ours:.1f}")
    with tempfile.TemporaryDirectory() as tmp, AppServer(args.cache_dir or Path(tmp)) as server:
        times = browser_moves(server.url, args.moves, args.chromium)
    print(f"crop move, Enter to new panels in the browser: median {statistics.median(times):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
