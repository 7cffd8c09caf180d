"""``python -m app.warm``: fill the result cache for Kodak24 (seed 0) so that the app serves
those views at once. Uses the same code path and cache keys as the app.

    python -m app.warm                         # sigma 25, 35, 50; every ready method
    python -m app.warm --sigmas 25 --methods dncnn ffdnet --images 4
"""
from __future__ import annotations

import argparse
import time

from . import kodak, session
from .cache import ResultCache
from .engine import Engine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.warm", description=__doc__.split("\n")[0])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[25, 35, 50])
    parser.add_argument("--methods", nargs="+", default=None, help="default: every ready method")
    parser.add_argument("--images", type=int, default=None, help="only the first N Kodak24 images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    engine = Engine(ResultCache())
    try:
        ready = [m for m, r in engine.readiness().items() if r.ready]
        methods = [m for m in (args.methods or ready) if m in ready]
        skipped = sorted(set(args.methods or engine.names()) - set(methods))
        if skipped:
            print(f"skipping methods that are not ready: {', '.join(skipped)}")
        names = kodak.names()[: args.images]
        print(f"warming {len(names)} images x sigma {args.sigmas} x {methods} into {engine.cache.root}")
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
                scores = ", ".join(f"{r.name} {r.psnr:.2f}" if r.psnr is not None else f"{r.name} failed"
                                   for r in results)
                print(f"{name} sigma {sigma:g}: {scores} dB ({time.perf_counter() - t:.1f} s)", flush=True)
        print(f"done in {time.perf_counter() - start:.1f} s: {computed} computed, {cached} already cached, "
              f"{failed} failed; cache size {engine.cache.size_bytes() / 2**20:.1f} MiB")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
