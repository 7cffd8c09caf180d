"""How live the fidelity <-> detail dial feels: the browser's wait from a dial setting to the
IDGAN crop showing it (the pixel-blend preview), and to the blended network's output, for
several settings; with the server-side preview and render times measured in this run.

    python scripts/benchmark_dial.py [--cache-dir DIR] [--settings 0.75,0.5,0.25,0.1,0.9]

Starts ``python -m app``, opens Kodak24 image 23 (768x512) with IDResNet and IDGAN (computed
once, then from the cache) in Debian's chromium, and types each A into the dial's box. The
issue's target: the crop updates within 0.5 s on this 2-core CPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app_server import AppServer, opened_view  # noqa: E402

VIEW = "?image=kodim23&sigma=25&seed=0&methods=idresnet,idgan"
CAPTION = "document.querySelector('#crop-3 [data-testid=\"block-label\"]').innerText"


def browser_settings(url: str, settings: list[float], chromium: str) -> list[tuple[float, float, float]]:
    """(A, seconds to the preview on screen, seconds to the network's output) per setting."""
    out = []
    with opened_view(url + VIEW, chromium, {"width": 1440, "height": 900}) as page:
        page.wait_for_timeout(2000)
        box = page.locator("#dial input[type='number']")
        for alpha in settings:
            before = page.evaluate("document.querySelector('#crop-3 img').src")
            start = time.perf_counter()
            box.fill(f"{alpha:g}")
            box.press("Enter")
            page.wait_for_function(f"document.querySelector('#crop-3 img').src !== {before!r} && "
                                   f"{CAPTION}.startsWith('IDGAN@{alpha:g}')", timeout=60_000)
            shown = time.perf_counter() - start
            page.wait_for_function(f"{CAPTION}.startsWith('IDGAN@{alpha:g}\\n')", timeout=600_000)
            out.append((alpha, shown, time.perf_counter() - start))
    return out


def server_side(settings: list[float], cache_dir: Path) -> list[tuple[float, float]]:
    """(preview seconds, render seconds) per setting, through ``Events`` on the same cache."""
    from app import session
    from app.cache import ResultCache
    from app.engine import Engine
    from app.events import Events, Settings
    from app.outputs import ExportDir

    engine = Engine(ResultCache(cache_dir), methods=["idresnet", "idgan"])
    exports = ExportDir()
    try:
        ev = Events(engine, Settings(results_root=Path(os.devnull)), exports)
        *_, last = ev.compare(session.source_from_kodak("kodim23"), 25, 0, False, [True, True], 0)
        comp, times = last["comparison"], []
        for alpha in settings:
            start = time.perf_counter()
            moved = ev.dial_preview(comp, alpha)["comparison"]
            middle = time.perf_counter()
            ev.render(moved, None, 96, 2, False, None, 25, 0, [True, True], alpha)
            times.append((middle - start, time.perf_counter() - middle))
        return times
    finally:
        exports.close()
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--settings", default="0.75,0.5,0.25,0.1,0.9")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    settings = [float(v) for v in args.settings.split(",")]
    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp)
        with AppServer(cache) as server:
            rows = browser_settings(server.url, settings, args.chromium)
        server_rows = server_side(settings, cache)
    print("A      preview on screen   network's output on screen   server: preview   render")
    for (alpha, shown, exact), (prep, render) in zip(rows, server_rows):
        print(f"{alpha:<6g} {shown:>12.2f} s {exact:>24.2f} s {prep:>16.3f} s {render:>7.3f} s")
    print(f"median: preview on screen {statistics.median(r[1] for r in rows):.2f} s (target 0.5 s), "
          f"network's output {statistics.median(r[2] for r in rows):.1f} s; "
          f"server render {statistics.median(r[1] for r in server_rows):.3f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
