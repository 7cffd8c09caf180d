"""Fill the app's result cache for Kodak24, so that the app serves those views at once (the
same code path and cache keys as the app). Exits 1 if any method failed.

    python -m app.warm                         # sigma 25, 35, 50; seed 0; every ready method
    python -m app.warm --sigmas 25 --methods dncnn,ffdnet --images 4
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from denoisers.base import check_precision_env
from denoisers.registry import add_plugin_argument, load_plugins, parse_methods

from . import kodak, session
from .convert import InputError, check_sigma
from .cache import ResultCache
from .engine import Engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.warm", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[25, 35, 50], help="default: 25 35 50")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="names, comma- or space-separated (default: every ready method)")
    parser.add_argument("--images", type=int, default=None, help="only the first N Kodak24 images")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0, the app's default)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="the app's --cache-dir, if it is given one "
                             "(default: <DENOISERS_CACHE or ~/.cache/denoiser-compare>/results)")
    add_plugin_argument(parser)
    args = parser.parse_args(argv)
    try:
        check_precision_env()
        load_plugins(args.plugin)
        asked = parse_methods(" ".join(args.methods)) if args.methods is not None else None
        for sigma in args.sigmas:
            check_sigma(sigma)  # the app's range
    except (ValueError, InputError) as exc:
        parser.error(str(exc))
    if args.images is not None and args.images < 1:
        parser.error(f"--images must be at least 1, got {args.images}")

    engine = Engine(ResultCache(args.cache_dir))
    try:
        readiness = engine.readiness()
        methods = [m for m in (asked or engine.names()) if readiness[m].ready]
        for m in asked or []:
            if not readiness[m].ready:
                print(f"skipping {m}: {readiness[m].reason}", file=sys.stderr)
        if not methods:
            print("error: no method to warm is ready", file=sys.stderr)
            return 1
        names = kodak.names()[: args.images]
        print(f"warming {len(names)} images x sigma {', '.join(f'{s:g}' for s in args.sigmas)} x "
              f"{', '.join(methods)} into {engine.cache.root}")
        start = time.perf_counter()
        computed = cached = failed = 0
        for name in names:
            src = session.source_from_kodak(name)
            for sigma in args.sigmas:
                t = time.perf_counter()
                comp, noisy = session.new_comparison(engine, src, sigma, args.seed, False, methods)
                for _ in session.run(engine, comp, noisy):
                    pass
                results = list(comp.results.values())
                cached += sum(r.cached for r in results)
                failed += sum(r.error is not None for r in results)
                computed += sum(r.error is None and not r.cached for r in results)
                scores = ", ".join(f"{r.name} {r.psnr:.2f} dB" if r.error is None and r.psnr is not None
                                   else f"{r.name} failed: {r.error}" if r.error is not None else f"{r.name} exact"
                                   for r in results)
                print(f"{name} sigma {sigma:g}: {scores} ({time.perf_counter() - t:.1f} s)", flush=True)
        print(f"done in {time.perf_counter() - start:.1f} s: {computed} computed, {cached} already cached, "
              f"{failed} failed; cache size {engine.cache.size_bytes() / 2**20:.1f} MiB")
        return 1 if failed else 0
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
