"""Cold vs cached latency of one ``/compare`` on a full Kodak24 image, and the cold time
against the slowest single method run alone (a ratio; one run, not an average).

    DENOISERS_DATA_MIRROR=... DENOISERS_WEIGHTS_MIRROR=... python scripts/benchmark_app.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_server import AppServer  # noqa: E402

from denoisers import datasets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", default="kodim05")
    parser.add_argument("--sigma", type=float, default=25)
    parser.add_argument("--methods", nargs="+", default=["dncnn", "ffdnet", "cbm3d"])
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    path = next(p for p in datasets.files("kodak24") if p.stem == args.image)
    with tempfile.TemporaryDirectory() as cache, AppServer(Path(cache)) as server:
        client = Client(server.url, verbose=False)

        def compare(methods, seed):
            start = time.perf_counter()
            record, _ = client.predict(handle_file(str(path)), args.sigma, seed, methods, api_name="/compare")
            return time.perf_counter() - start, record

        cold, record = compare(args.methods, 0)
        cached_times = []
        for _ in range(3):
            t, again = compare(args.methods, 0)
            cached_times.append(t)
            assert all(m["cached"] for m in again["methods"].values())
            assert again["methods"] == {k: {**v, "cached": True} for k, v in record["methods"].items()}
        alone = {}
        for m in args.methods:  # each method alone, uncached (another seed)
            alone[m], _ = compare([m], 1)
        peak = server.peak_rss

    slowest = max(alone, key=alone.get)
    print(f"image {args.image} (768x512), sigma {args.sigma:g}, methods {', '.join(args.methods)}")
    print("per-method seconds inside the cold comparison: "
          + ", ".join(f"{k} {v['seconds']:.2f}" for k, v in record["methods"].items()))
    print("each method alone through /compare (s): " + ", ".join(f"{k} {v:.2f}" for k, v in alone.items()))
    print(f"cold comparison:   {cold:.2f} s")
    print(f"cached comparison: {statistics.median(cached_times):.3f} s (median of 3: "
          + ", ".join(f"{t:.3f}" for t in cached_times) + ")")
    print(f"cold / slowest single method ({slowest}, {alone[slowest]:.2f} s): {cold / alone[slowest]:.2f}")
    print(f"sum of single methods: {sum(alone.values()):.2f} s; cold / sum: {cold / sum(alone.values()):.2f}")
    print(f"server peak memory (with workers): {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
