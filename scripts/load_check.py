"""Load check: 8 clients at once send ``/compare`` on Kodak24 crops, first uncached, then
cached. Every answer is checked against the denoisers run directly here (PSNR and the
pixels of every returned PNG), each client has its own image, sigma and seed so any
cross-talk shows, and the server's peak memory (with its worker processes) must stay
under 6 GiB. Prints the figures; exits non-zero on any failure.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_server import AppServer  # noqa: E402

import denoisers  # noqa: E402
from denoisers import datasets  # noqa: E402
from denoisers.base import same_output  # noqa: E402
from denoisers.io import read_image, to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, score  # noqa: E402

LIMIT_BYTES = 6 * 2**30


def outputs_by_key(record: dict, paths: list[str]) -> dict[str, str]:
    """The downloaded files of one ``/compare`` answer by key ("noisy" or a method).

    The answer lists the files in display order and leaves out failed methods, so the
    record's ``files`` names (``dncnn.png``, ...), which come in the same order as the
    returned files, say which is which; the request's method order says nothing.
    """
    names = record.get("files") or []
    if len(names) != len(paths):
        raise ValueError(f"{len(paths)} files for the {len(names)} names in the record")
    return {Path(name).stem: path for name, path in zip(names, paths)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument("--methods", nargs="+", default=["dncnn", "ffdnet", "cbm3d"])
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    files = datasets.files("kodak24")
    work = Path(tempfile.mkdtemp(prefix="load-check-"))
    jobs = []
    for i in range(args.clients):
        image = read_image(files[i])
        y0, x0 = (image.shape[0] - args.crop) // 2, (image.shape[1] - args.crop) // 2
        crop = image[y0:y0 + args.crop, x0:x0 + args.crop].copy()
        path = work / f"client{i}.png"
        Image.fromarray(crop).save(path)
        jobs.append({"path": str(path), "clean": crop, "sigma": 15 + 5 * i, "seed": 100 + i})

    failures: list[str] = []
    rounds = {}
    with tempfile.TemporaryDirectory() as cache, AppServer(Path(cache), heavy_limit=2) as server:
        idle_rss = server.rss()
        for name in ("uncached", "cached"):
            answers, times = {}, {}

            def client(i: int) -> None:
                job = jobs[i]
                c = Client(server.url, verbose=False)
                start = time.perf_counter()
                try:
                    answers[i] = c.predict(handle_file(job["path"]), job["sigma"], job["seed"], args.methods,
                                           api_name="/compare")
                except Exception as exc:  # recorded as a failure below
                    answers[i] = exc
                times[i] = time.perf_counter() - start

            start = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rounds[name] = (time.perf_counter() - start, times, answers)
        peak = server.peak_rss

    # Check every answer against the denoisers run directly in this process.
    nets = {m: denoisers.get(m) for m in args.methods}
    for i, job in enumerate(jobs):
        noisy = add_noise(to_float(job["clean"]), job["sigma"], job["seed"])
        expected = {m: to_uint8(nets[m].denoise(noisy, job["sigma"])) for m in args.methods}
        for name, (_, _, answers) in rounds.items():
            answer = answers[i]
            if isinstance(answer, Exception):
                failures.append(f"client {i} {name}: {answer}")
                continue
            record, paths = answer
            if (record["sigma"], record["seed"]) != (job["sigma"], job["seed"]):
                failures.append(f"client {i} {name}: got sigma/seed {record['sigma']}/{record['seed']}")
            try:
                outputs = outputs_by_key(record, paths)
            except ValueError as exc:
                failures.append(f"client {i} {name}: {exc}")
                continue
            if "noisy" not in outputs:
                failures.append(f"client {i} {name}: no noisy image")
            elif not np.array_equal(np.asarray(Image.open(outputs["noisy"]).convert("RGB")), to_uint8(noisy)):
                failures.append(f"client {i} {name}: noisy image is not this client's")
            for m in args.methods:
                if m not in outputs:
                    error = record["methods"].get(m, {}).get("error", "not in the answer")
                    failures.append(f"client {i} {name}: no {m} output ({error})")
                    continue
                got = np.asarray(Image.open(outputs[m]).convert("RGB"))
                if not same_output(got, expected[m], nets[m].bit_exact):
                    failures.append(f"client {i} {name}: {m} output differs from a direct run")
                p, _ = score(job["clean"], expected[m].astype(np.float32) / 255)
                if abs(record["methods"][m]["psnr"] - p) > (1e-6 if nets[m].bit_exact else 0.01):
                    failures.append(f"client {i} {name}: {m} PSNR {record['methods'][m]['psnr']} != {p}")
                if name == "cached" and not record["methods"][m]["cached"]:
                    failures.append(f"client {i} cached: {m} was not served from the cache")

    print(f"{args.clients} clients at once, {args.crop}x{args.crop} Kodak24 crops, methods {', '.join(args.methods)}, "
          "sigma 15..50, distinct seeds; server concurrency limit 2")
    for name, (wall, times, _) in rounds.items():
        t = sorted(times.values())
        print(f"{name:9s}: all answered in {wall:.2f} s; per request min {t[0]:.2f} / median "
              f"{statistics.median(t):.2f} / max {t[-1]:.2f} s")
    print(f"server memory: idle {idle_rss / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB "
          f"(limit {LIMIT_BYTES / 2**30:.0f} GiB, server + worker processes)")
    if peak >= LIMIT_BYTES:
        failures.append(f"peak memory {peak / 2**30:.2f} GiB is over the limit")
    checked = 2 * args.clients * (len(args.methods) + 1)
    print(f"checked {checked} images against direct runs: {len(failures)} problems")
    for f in failures:
        print("  FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
