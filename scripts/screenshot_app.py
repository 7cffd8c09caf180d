"""Save a screenshot of the real app for the README (docs/screenshot.png, under 1 MB).

Starts ``python -m app``, opens a linked view (Kodak24 image, every method, a crop) in
Debian's chromium through Playwright, waits for the comparison and saves one 1440x900 screen.

    python scripts/screenshot_app.py [--cache-dir DIR] [--out docs/screenshot.png]
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_server import ROOT, AppServer, opened_view  # noqa: E402

VIEW = "?image=kodim23&sigma=25&seed=0&x=540&y=170&crop=96&zoom=2&methods=idresnet,idgan,dncnn,ffdnet,cbm3d"
MAX_BYTES = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse a result cache (default: a fresh one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1440, help="the window's width (a desktop screen)")
    parser.add_argument("--height", type=int, default=900, help="the window's height: what one screen shows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, AppServer(args.cache_dir or Path(tmp)) as server:
        with opened_view(server.url + VIEW, args.chromium, {"width": args.width, "height": args.height}) as page:
            page.wait_for_timeout(6000)
            shot = page.screenshot(full_page=False)
    img = Image.open(io.BytesIO(shot)).convert("RGB")
    width = img.width
    while True:
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        if buf.tell() < MAX_BYTES or width < 700:
            break
        width = int(width * 0.85)
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.getvalue())
    print(f"saved {args.out} ({img.width}x{img.height}, {buf.tell() / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
