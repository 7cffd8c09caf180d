r"""Evaluate denoisers on a folder of clean images, following the evaluation protocol (docs/evaluation.md).

    python -m denoisers.evaluate --data DIR --sigma 25 --sigma 35 \
        --methods dncnn,ffdnet,cbm3d [--limit N] [--seed 0] [--save-images DIR] [--cluster ADDRESS] --out DIR

Images are taken in name order. Methods that must run in their own process (CBM3D) run in
``--workers`` worker processes beside the networks; with ``--cluster ADDRESS`` every job runs on
a Dask cluster's workers instead (``denoisers.cluster``, docs/cluster.md). Rows already in
``OUT/results.csv`` with the same weights are not recomputed, so an interrupted run resumes. Writes
``results.csv``, ``table.md`` (laid out like the paper's Table 1) and ``chart.html``.
With ``--save-images DIR`` every output scored is kept as the 8-bit PNG the scores were taken
on (``DIR/sigma25_seed0/ffdnet/kodim01.png``), with the noisy inputs clipped and rounded to 8
bits (``DIR/sigma25_seed0/noisy/``; the methods got them unclipped), for other metrics or a closer look;
rows whose PNG is missing there are recomputed rather than kept. ``--metrics`` adds LPIPS (the
default) and DISTS (``denoisers.scoring``).

This file runs a little over 450 lines on purpose: the checks of a run's options, its plan,
its local and cluster runs and its outputs read in one place, in the order a run does them;
what stands on its own lives beside it (``resume``, ``scoring``, ``cluster``, ``report``).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import os
import sys
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from . import cluster, datasets, report
from .base import MIN_SIZE, SEED_MAX, Denoiser, TorchDenoiser, check_sigma
from .fetch import FetchError
from .files import FolderBusy, atomic_write, only_writer, write_text
from .io import (ImageReadError, image_files, output_folder_problem, pixels_sha256, read_image, shared_stems,
                 to_float, to_uint8, write_png)
from .weights import WeightsError
from .metrics import add_noise, high_frequency_energy, psnr, ssim
from .parallel import process_pool, stop_workers, terminate_as_interrupt
from .registry import (MethodError, add_plugin_argument, get, load_plugins, names, parse_methods, plugins,
                       status_and_model)
from .resume import resume
from .scoring import (DEFAULT_METRICS, METRICS, fill_from_saved, fit_to_sizes, load_perceptual, parse_metrics,
                      perceptual_scores)


@dataclass(frozen=True)
class Job:
    image: Path
    method: str
    sigma: float
    seed: int
    weights: str
    save: Path | None = None  # the --save-images folder (not part of the key)
    perceptual: tuple[str, ...] = ()  # the perceptual metrics to record too (``lpips``, ``dists``)

    @property
    def key(self) -> tuple[str, str, float, int, str]:
        return (self.image.name, self.method, float(self.sigma), int(self.seed), self.weights)


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """The clean images: a folder's, in name order, or those of a known test set named instead
    of a folder (found in a mirror or downloaded, each checked by sha256)."""
    if not folder.is_dir() and str(folder) in datasets.DATASETS:
        try:
            return datasets.files(str(folder), limit=limit)
        except (OSError, RuntimeError) as exc:  # fetch's FetchError / ChecksumError
            raise SystemExit(f"--data {folder}: {exc}") from None
    if not folder.is_dir():
        known = ", ".join(n for n in datasets.DATASETS if n != "cbsd432")
        raise SystemExit(f"--data {folder}: not a folder, nor a test set's name ({known})")
    try:
        return image_files(folder)[:limit]
    except FileNotFoundError as exc:
        raise SystemExit(f"--data: {exc}") from None


@lru_cache(maxsize=None)
def reference_instance(name: str) -> Denoiser:
    """The evaluation's ``name``, one per process: networks always in fp32, whatever precision
    they default to elsewhere (bf16 on the CPU where that is within 0.02 dB), so that every row
    of a results table is computed the same way."""
    denoiser = get(name)
    return get(name, precision="fp32") if isinstance(denoiser, TorchDenoiser) else denoiser


def check_images(images: list[Path]) -> dict[str, str]:
    """Every image readable and big enough before any work: a table whose means silently lack
    an image would not be comparable, so a bad one stops the run (naming each) instead.
    Returns each image's ``clean_sha256``."""
    problems, digests = [], {}
    for path in images:
        try:
            clean_u8 = read_image(path)
        except ImageReadError as exc:
            problems.append(str(exc))
            continue
        h, w = clean_u8.shape[:2]
        if min(h, w) < MIN_SIZE:
            problems.append(f"{path.name} is {w}x{h}, under the {MIN_SIZE}x{MIN_SIZE} that every method needs")
            continue
        digests[path.name] = pixels_sha256(clean_u8)
    if problems:
        raise SystemExit("cannot evaluate these images (remove them or choose another --data):\n  "
                         + "\n  ".join(problems))
    return digests


def load_weights(jobs: list[Job]) -> None:
    """Fetch and load each network's weights once, before any row is computed, so that a
    missing or corrupt file stops the run at once with its reason."""
    for method, sigma in dict.fromkeys((j.method, j.sigma) for j in jobs):
        denoiser = reference_instance(method)
        if isinstance(denoiser, TorchDenoiser):
            try:
                denoiser.model(sigma)
            except (WeightsError, FetchError, OSError) as exc:
                raise SystemExit(f"{method} at sigma {sigma:g}: cannot load its weights: {exc}") from None


def prepare_out(out: Path, save_images: Path | None, held: contextlib.ExitStack | None = None) -> pd.DataFrame:
    """Create the output folders, hold ``out`` for this run alone (in ``held``: another
    evaluation into the same folder is refused), and read ``results.csv`` there (refusing one
    that is not a results file of this tool), before any work, so that nothing is computed for
    nothing."""
    for flag, folder in (("--out", out), ("--save-images", save_images)):
        problem = output_folder_problem(folder) if folder is not None else None
        if problem:
            raise SystemExit(f"{flag}: {problem}")
    if held is not None:
        try:
            held.enter_context(only_writer(out, "evaluation"))
        except FolderBusy as exc:
            raise SystemExit(f"--out {exc}") from None
    results_csv = out / "results.csv"
    if results_csv.exists() and not results_csv.is_file():
        raise SystemExit(f"{results_csv} is not a file")
    try:
        existing = (report.read_results(results_csv) if not results_csv.exists() or results_csv.stat().st_size
                    else pd.DataFrame(columns=report.FILE_COLUMNS))  # an empty file: a run killed at once
    except (ValueError, UnicodeDecodeError) as exc:
        raise SystemExit(f"{results_csv} is not a results table of this tool ({exc}); "
                         "move it away or choose another --out") from None
    missing = [c for c in ("image", "method", "sigma", "seed", "psnr", "ssim", "weights") if c not in existing.columns]
    if missing:
        raise SystemExit(f"{results_csv} lacks the column(s) {', '.join(missing)}: it is not a results table "
                         "of this tool; move it away or choose another --out")
    extra = [c for c in existing.columns if c not in report.FILE_COLUMNS]
    if extra:
        raise SystemExit(f"{results_csv} has column(s) this tool does not write ({', '.join(map(str, extra))}); "
                         "it appends rows to this file and rewrites it, which would lose them: keep your own "
                         "columns in a file of your own (this one is left as it is)")
    for column in ("sigma", "seed", "psnr", "ssim", "seconds", *report.MEASURES):
        if column in existing.columns and not pd.api.types.is_numeric_dtype(existing[column]):
            bad = pd.to_numeric(existing[column], errors="coerce").isna() & existing[column].notna()
            if bad.any():
                index = int(bad.to_numpy().argmax())
                raise SystemExit(f"{results_csv} line {index + 2}: {column} is {existing[column].iloc[index]!r}, "
                                 "not a number; mend or remove that row (the file is left as it is)")
    return existing


def noisy_input(job: Job) -> tuple:
    """The clean image (8 bits) and the protocol's noisy input for ``job``."""
    clean_u8 = read_image(job.image)
    return clean_u8, add_noise(to_float(clean_u8), job.sigma, job.seed)


def evaluate_one(job: Job) -> dict:
    """One result row: read, add the protocol's noise, denoise, score. Runs in any process."""
    clean_u8, noisy = noisy_input(job)
    denoiser = reference_instance(job.method)
    start = time.perf_counter()
    output = denoiser.denoise(noisy, job.sigma)
    return score(job, clean_u8, noisy, output, time.perf_counter() - start)


def score(job: Job, clean_u8, noisy, output, seconds: float) -> dict:
    """``job``'s result row from its denoised ``output`` (kept as PNG with ``--save-images``)."""
    out_u8 = to_uint8(output)
    if job.save is not None:
        write_png(out_u8, image_path(job.save, job.sigma, job.seed, job.method, job.image.name))
        noisy_path = image_path(job.save, job.sigma, job.seed, "noisy", job.image.name)
        if not noisy_path.exists():
            write_png(to_uint8(noisy), noisy_path)
    return {"image": job.image.name, "method": job.method, "sigma": job.sigma, "seed": job.seed,
            "psnr": round(psnr(clean_u8, out_u8), 4), "ssim": round(ssim(clean_u8, out_u8), 5),
            "seconds": round(seconds, 3), "weights": job.weights,
            "hf": round(high_frequency_energy(out_u8), 3), "hf_clean": round(high_frequency_energy(clean_u8), 3),
            "clean_sha256": pixels_sha256(clean_u8), **perceptual_scores(clean_u8, out_u8, job.perceptual)}


def image_path(folder: Path, sigma: float, seed: int, method: str, image: str) -> Path:
    """Where ``--save-images`` keeps one output: ``folder/sigma25_seed0/ffdnet/kodim01.png``."""
    return folder / f"sigma{float(sigma):g}_seed{int(seed)}" / method / f"{Path(image).stem}.png"


def outside_training(pairs) -> list[str]:
    """"method at sigma S: why" for each (method, sigma) where the method runs outside its
    training range (methods this process does not know, a plugin's say, are left out)."""
    notes = []
    for method, sigma in dict.fromkeys((m, float(s)) for m, s in pairs):
        try:
            status = get(method).readiness(sigma)
        except ValueError:
            continue
        if status.ready and status.outside_training:
            notes.append(f"{method} at sigma {sigma:g}: {status.outside_training}")
    return notes


def plan(images: list[Path], methods: list[str], sigmas: list[float], seed: int,
         save: Path | None = None, perceptual: tuple[str, ...] = ()) -> list[Job]:
    """Every job of the run, in method, sigma, image order; stops (naming the method) when a
    method cannot run or cannot say which model it is, before any row is written."""
    jobs = []
    for method in methods:
        try:
            denoiser = get(method)
        except ValueError as exc:  # a bad $DENOISERS_PRECISION, say
            raise SystemExit(f"{method}: {exc}") from None
        for sigma in sigmas:
            try:
                status, weights = status_and_model(denoiser, sigma)
            except MethodError as exc:
                raise SystemExit(str(exc)) from None
            if not status.ready:
                raise SystemExit(f"{method} cannot run at sigma {sigma:g}: {status.reason}")
            jobs += [Job(image, method, sigma, seed, weights, save, perceptual) for image in images]
    return jobs


def run(jobs: list[Job], results_csv: Path, workers: int, client=None) -> list[str]:
    """Run ``jobs`` (on ``client``'s cluster when given), appending each row to ``results_csv``
    as soon as it is known. A job that fails (a method's error, NaN output, memory, a worker
    with other weights) writes no row and the others go on; returns one line per failed job."""
    failures: list[str] = []
    separate = [j for j in jobs if get(j.method).separate_process]
    inline = [j for j in jobs if not get(j.method).separate_process]
    new_file = not results_csv.exists() or results_csv.stat().st_size == 0
    with open(results_csv, "a", newline="") as f, tqdm(total=len(jobs), unit="run", mininterval=2,
                                                        disable=False) as bar:
        writer = csv.DictWriter(f, fieldnames=report.FILE_COLUMNS)
        if new_file:
            writer.writeheader()
            f.flush()  # a run killed before its first row leaves a readable, empty table

        def record(job: Job, compute) -> None:
            try:
                row = compute()
            except Exception as exc:  # KeyboardInterrupt is not an Exception: it still stops the run
                failures.append(f"{job.method} on {job.image.name} at sigma {job.sigma:g}: {type(exc).__name__}: {exc}")
                tqdm.write(f"failed: {failures[-1]}", file=sys.stderr)
            else:
                writer.writerow(row)
                f.flush()
                bar.set_postfix_str(f"{row['method']} {row['image']} s{row['sigma']:g}: {row['psnr']:.2f} dB")
            bar.update()

        if client is not None:  # every job on the cluster, CBM3D's too
            on_cluster(client, jobs, record)
            return failures
        pool = process_pool(workers) if separate else None
        threads = torch.get_num_threads()
        try:
            futures = {pool.submit(evaluate_one, j): j for j in separate} if pool else {}
            if pool:  # leave the cores the workers use to them
                torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers))
            for job in inline:
                record(job, lambda: evaluate_one(job))
                for fut in [f for f in futures if f.done()]:
                    record(futures.pop(fut), fut.result)
                if not futures:  # the workers have nothing left: their cores are the networks' again
                    torch.set_num_threads(threads)
            for fut in as_completed(list(futures)):
                record(futures.pop(fut), fut.result)
        except BaseException:
            if pool:  # a job already running in a worker would otherwise hold the exit for up to a minute
                stop_workers(pool)
            raise
        finally:
            torch.set_num_threads(threads)
            if pool:
                pool.shutdown(cancel_futures=True)
    return failures


def on_cluster(client, jobs: list[Job], record) -> None:
    """Every job on the cluster's workers, networks in fp32 as ``reference_instance`` runs them;
    the noisy inputs are made and the outputs scored here. ``record(job, compute)`` as in ``run``."""
    runner = cluster.Runner(client, plugins(), strict_fp32=True)
    try:
        for job in jobs:
            try:
                clean_u8, noisy = noisy_input(job)
            except Exception as exc:  # the image changed since it was checked
                record(job, functools.partial(_raise, exc))
                continue
            runner.submit(job.method, noisy, job.sigma, job.weights, "fp32",
                          functools.partial(_finish, record, job, clean_u8, noisy))
        runner.drain()
    except BaseException:
        runner.cancel()
        raise


def _finish(record, job: Job, clean_u8, noisy, result) -> None:
    record(job, lambda: score(job, clean_u8, noisy, *result()))


def _raise(exc: BaseException):
    raise exc


def write_results(path: Path, results: pd.DataFrame) -> None:
    """Replace ``results.csv`` whole (temporary file, fsync, rename): an interrupted rewrite
    leaves the previous file, never a half one."""
    with atomic_write(path, "w", newline="") as f:
        results.reindex(columns=report.FILE_COLUMNS).to_csv(f, index=False)


def write_outputs(out: Path, dataset: str, seed: int) -> pd.DataFrame:
    """Sort ``results.csv``; write ``table.md`` and ``chart.html`` for noise seed ``seed``, with
    a note under the table for each method scored outside its training range."""
    results = report.read_results(out / "results.csv")
    results = results.sort_values(["sigma", "method", "seed", "image"], kind="stable")
    write_results(out / "results.csv", results)
    results = report.one_seed(results, seed)
    pairs = report.paired_markdown(results, names())
    notes = outside_training(zip(results["method"], results["sigma"]))
    outside = "".join(f"\n_Outside its training range: {n}._\n" for n in notes)
    write_text(out / "table.md", f"# {dataset} (noise seed {seed})\n\n"
               + report.table_markdown(results, names(), dataset) + outside + (f"\n{pairs}" if pairs else ""))
    write_text(out / "chart.html", report.chart_html(results, dataset, f"{dataset}: mean PSNR"))
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m denoisers.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder of clean images, or a test set's name (kodak24, cbsd68, mcmaster)")
    parser.add_argument("--sigma", type=float, action="append", required=True,
                        help="noise sigma on the 0-255 scale (repeat for several)")
    parser.add_argument("--methods",
                        help=f"comma-separated, from: {', '.join(names())} and any --plugin's (default: all, "
                             "CBM3D included: about 20 s per Kodak image)")
    add_plugin_argument(parser)
    parser.add_argument("--limit", type=int, help="only the first N images (name order)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0): the same seed, the same noise")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="processes for CBM3D (without --cluster)")
    cluster.add_cluster_argument(parser)
    parser.add_argument("--name", help="dataset name in the table (default: the --data folder name)")
    parser.add_argument("--save-images", type=Path, metavar="DIR",
                        help="also keep every scored output (and the noisy inputs) as PNG under DIR")
    parser.add_argument("--metrics", default=DEFAULT_METRICS,
                        help=f"what to record, from {', '.join(METRICS)} (default {DEFAULT_METRICS}; psnr, ssim "
                             "and detail always); a metric added to a finished run is computed for its rows only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The command line; Ctrl-C or SIGTERM at any point ends it with every row written so far
    kept (files are only ever replaced whole) and its worker processes stopped."""
    args = parse_args(argv)
    with terminate_as_interrupt(), contextlib.ExitStack() as held:
        try:
            return evaluate(args, held)
        except KeyboardInterrupt:
            print(f"\ninterrupted: the rows finished so far are in {args.out / 'results.csv'}; the same "
                  "command resumes from them", file=sys.stderr)
            return 130


def check_args(args: argparse.Namespace) -> tuple[list[str], tuple[str, ...]]:
    """The methods and perceptual metrics asked for, every option checked before any work."""
    try:
        methods = parse_methods(args.methods)
    except ValueError as exc:
        raise SystemExit(f"--methods: {exc}") from None
    for sigma in args.sigma:
        try:
            check_sigma(sigma)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    args.sigma = list(dict.fromkeys(args.sigma))  # a repeated --sigma would write its rows twice
    if not 0 <= args.seed <= SEED_MAX:  # the app's limit too, so that every result can be viewed there
        raise SystemExit(f"--seed must be from 0 to {SEED_MAX}, got {args.seed}")
    if args.limit is not None and args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    try:
        perceptual = parse_metrics(args.metrics)
    except ValueError as exc:
        raise SystemExit(f"--metrics: {exc}") from None
    return methods, perceptual


def check_save_images(args: argparse.Namespace, images: list[Path], methods: list[str]) -> None:
    """``--save-images`` must give each output its own file and never land on a clean image."""
    if args.save_images is None:
        return
    twins = shared_stems([p.name for p in images])
    if twins:
        raise SystemExit(f"--save-images: {', '.join(twins)} would be saved under one name; "
                         "rename them or leave out --save-images")
    inputs = {p.resolve() for p in images}
    landing = sorted({str(image_path(args.save_images, sigma, args.seed, kind, p.name))
                      for p in images for sigma in args.sigma for kind in [*methods, "noisy"]
                      if image_path(args.save_images, sigma, args.seed, kind, p.name).resolve() in inputs})
    if landing:
        raise SystemExit(f"--save-images: {', '.join(landing[:3])}{' ...' if len(landing) > 3 else ''} "
                         "would overwrite the clean images being scored; choose another folder")


def evaluate(args: argparse.Namespace, held: contextlib.ExitStack | None = None) -> int:
    try:
        load_plugins(args.plugin)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if args.methods is None:
        args.methods = ",".join(names())
    # The table's networks run in fp32 (``reference_instance``); on a GPU that also means no
    # TF32 convolutions or matrix products, which PyTorch would otherwise allow.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    methods, perceptual = check_args(args)
    where = cluster.address(args.cluster)
    images = list_images(args.data, args.limit)
    check_save_images(args, images, methods)
    digests = check_images(images)
    perceptual = fit_to_sizes(perceptual, images, explicit=args.metrics != DEFAULT_METRICS)
    every = plan(images, methods, args.sigma, args.seed, args.save_images, perceptual)
    for note in outside_training((m, s) for m in methods for s in args.sigma):  # scored, but not a fair test
        print(f"outside its training range: {note}", file=sys.stderr)
    existing = prepare_out(args.out, args.save_images, held)
    results_csv = args.out / "results.csv"
    saved = (None if args.save_images is None
             else lambda r: image_path(args.save_images, r.sigma, r.seed, r.method, r.image))
    load_perceptual(perceptual)
    checkpoint = (lambda rows: write_results(results_csv, rows)) if results_csv.exists() else None
    existing, filled = fill_from_saved(existing, every, perceptual, saved, checkpoint)
    if filled:
        print(f"{'/'.join(perceptual)} computed from the saved outputs of {report.count(filled, 'row')}",
              file=sys.stderr)
    kept = resume(existing, every, digests, [*report.MEASURES, *perceptual], saved)
    for note in kept.notes:
        print(note, file=sys.stderr)
    if results_csv.exists() and (kept.changed or filled):  # appends below must follow the file's columns
        write_results(results_csv, kept.rows)
    jobs = kept.pending(every)
    print(f"{report.count(len(images), 'image')} x {report.count(len(methods), 'method')} x "
          f"{report.count(len(args.sigma), 'sigma')}: {report.count(len(jobs), 'run')} to do", file=sys.stderr)
    others = sorted(set(kept.rows["image"]) - set(digests))
    if others:  # the table sums up the folder's results.csv, not only this run
        print(f"{results_csv} also holds {len(others)} images outside this run "
              f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); the table covers them too",
              file=sys.stderr)
    if where is None or not jobs:
        load_weights(jobs)
        failures = run(jobs, results_csv, max(1, args.workers))
    else:  # the workers load the weights (each job checks that they are this run's)
        with cluster.connect(where) as client:
            print(f"on the cluster {where}: {cluster.describe(client)}", file=sys.stderr)
            failures = run(jobs, results_csv, max(1, args.workers), client)
    dataset = args.name or args.data.resolve().name  # "--data ." names the folder it means
    results = write_outputs(args.out, dataset, args.seed)
    print(report.table_markdown(results, names(), dataset))
    if failures:
        print(f"{report.count(len(failures), 'run')} failed and wrote no row (the table lacks them; the same "
              "command retries them):\n" + "\n".join(f"  {line}" for line in failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
