r"""Denoise your own noisy images with any of the methods, in a batch.

    python -m denoisers.denoise IMAGE_OR_FOLDER... [--methods dncnn,ffdnet] [--sigma auto|N] --out DIR \
        [--cluster ADDRESS]

For images that are already noisy (no ground truth, so no PSNR): each method's output is
written as ``DIR/<method>/<image name>.png``, and ``DIR/denoised.csv`` lists what was done
(image, method, the sigma used and whether it was given or estimated, seconds, weights, and a
note where the method runs outside its training range).
``--sigma auto`` (the default) estimates each image's noise level as the app does
(``denoisers.metrics.estimate_noise_sigma``); give a number when you know it. Folders are read
in name order. The default methods are those ready to run (untrained generators are left out).
Running again replaces the outputs of the same image and method, and keeps the other rows.
An image that cannot be read, or a method that fails on one image, is reported and skipped
(exit status 1); an interrupted run still records the outputs it wrote. With ``--cluster
ADDRESS`` the methods run on a Dask cluster's workers (``denoisers.cluster``, docs/cluster.md).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from . import cluster
from .base import MIN_SIZE, SIGMA_MAX, check_precision_env, check_sigma
from .fetch import FetchError
from .files import FolderBusy, atomic_write, only_writer
from .io import (ImageReadError, image_files, output_folder_problem, read_image, shared_stems, to_float,
                 to_uint8, write_png)
from .metrics import estimate_noise_sigma
from .parallel import terminate_as_interrupt
from .registry import (MethodError, add_plugin_argument, get, load_plugins, names, parse_methods, plugins,
                       status_and_model)
from .report import count
from .weights import WeightsError

# ``note``: a sigma outside the method's training range, or an input it was not made for (grey noise).
COLUMNS = ["image", "method", "sigma", "sigma_from", "seconds", "weights", "note"]
SIGMA_FLOOR = 1.0  # an estimate below this (a clean or synthetic image) is raised to it


def inputs(paths: list[Path]) -> list[Path]:
    """The image files named, and those of the folders named (name order); duplicates once."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            try:
                found += image_files(path)
            except FileNotFoundError as exc:
                raise SystemExit(str(exc)) from None
        elif path.is_file():
            found.append(path)
        else:
            raise SystemExit(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    twins = shared_stems(unique)
    if twins:
        raise SystemExit(f"these would be written under one output name: {', '.join(twins)}; rename one")
    return unique


def parse_sigma(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        return check_sigma(text)
    except ValueError as exc:
        raise SystemExit(f"--sigma: {exc} (or 'auto')") from None


def choose_methods(text: str | None) -> list[str]:
    if text is None:
        ready = [m for m in names() if get(m).readiness().ready]
        if not ready:
            raise SystemExit("no method is ready to run (see --methods)")
        return ready
    try:
        return parse_methods(text)
    except ValueError as exc:
        raise SystemExit(f"--methods: {exc}") from None


def output_path(out: Path, method: str, image: Path) -> Path:
    return out / method / f"{image.stem}.png"


def prepare_out(out: Path, methods: list[str]) -> None:
    """The output folders made, writable, and any ``denoised.csv`` there one of ours, before any
    work: a bad --out is found before the first image, not after the last."""
    for folder in (out, *(out / m for m in methods)):
        problem = output_folder_problem(folder)
        if problem:
            raise SystemExit(f"--out: {problem}")
    csv_path = out / "denoised.csv"
    if not csv_path.exists():
        return
    problem = None
    if not csv_path.is_file():
        problem = "is not a file"
    else:
        try:
            columns = pd.read_csv(csv_path, nrows=0).columns
        except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser and empty-data errors are ValueErrors
            problem = f"cannot be read as a table ({exc})"
        else:
            if not {"image", "method"} <= set(columns):
                problem = "has no image and method columns"
    if problem:
        raise SystemExit(f"--out: {csv_path} {problem}, so it is not a list written by this command; "
                         "move it away or choose another folder")


def merge_rows(csv_path: Path, rows: list[dict]) -> pd.DataFrame:
    """The CSV's rows with those of this run in place of any for the same output file (method
    and name without suffix: ``a.jpg``'s output replaces ``a.png``'s). Columns of the user's
    own in the CSV are kept (empty in the new rows)."""
    new = pd.DataFrame(rows, columns=COLUMNS)
    if csv_path.exists():
        old = pd.read_csv(csv_path, dtype={"weights": str})
        done = {(Path(i).stem, m) for i, m in zip(new["image"], new["method"])}
        old = old[[(Path(str(i)).stem, m) not in done for i, m in zip(old["image"], old["method"])]]
        extra = [c for c in old.columns if c not in COLUMNS]
        new = pd.concat([old, new], ignore_index=True).reindex(columns=COLUMNS + extra)
    return new


@dataclass
class Tally:
    """What a run has done so far: the rows of ``denoised.csv``, how many outputs failed or were
    skipped, the notes said once, the models whose weights could not be had (not tried again)."""
    rows: list[dict] = field(default_factory=list)
    failed: int = 0
    noted: set = field(default_factory=set)
    unfetchable: dict[tuple[str, str], str] = field(default_factory=dict)


def denoise_image(image: Path, denoisers: dict, sigma_given: float | None, out: Path, tally: Tally,
                  runner=None) -> None:
    """Every method on ``image`` (on ``runner``'s cluster when given: the outputs are then
    written as they come back), each skip or failure said and counted in ``tally``."""
    try:
        noisy_u8 = read_image(image)
    except ImageReadError as exc:
        print(f"{image}: skipped, {exc}", file=sys.stderr)
        tally.failed += 1
        return
    if sigma_given is None:
        estimate = estimate_noise_sigma(noisy_u8)
        sigma, source = round(min(SIGMA_MAX, max(SIGMA_FLOOR, estimate)), 2), "estimated"
    else:
        sigma, source = sigma_given, "given"
    if min(noisy_u8.shape[:2]) < MIN_SIZE:
        h, w = noisy_u8.shape[:2]
        print(f"{image}: skipped, {w}x{h} is under the {MIN_SIZE}x{MIN_SIZE} every method needs", file=sys.stderr)
        tally.failed += 1
        return
    noisy = to_float(noisy_u8)
    for method, denoiser in denoisers.items():
        try:  # a method of one's own may fail here; the others go on
            status, weights = status_and_model(denoiser, sigma)
        except MethodError as exc:
            skip = f"skipped, it {exc.reason}"
        except (WeightsError, FetchError) as exc:
            skip = f"skipped, its weights could not be had ({exc})"
        else:
            if not status.ready:
                skip = f"skipped at sigma {sigma:g}, {status.reason}"
            elif (method, weights) in tally.unfetchable:
                skip = f"skipped, {tally.unfetchable[(method, weights)]}"
            else:
                skip = ""
        if skip:
            print(f"{image.name} {method}: {skip}", file=sys.stderr)
            tally.failed += 1
            continue
        if status.reason and (method, sigma) not in tally.noted:  # e.g. outside the training range
            print(f"{method} at sigma {sigma:g}: {status.reason}", file=sys.stderr)
            tally.noted.add((method, sigma))
        input_note = denoiser.input_note(noisy)
        if input_note:
            print(f"{image.name} {method}: {input_note}", file=sys.stderr)
        row = {"image": image.name, "method": method, "sigma": sigma, "sigma_from": source, "weights": weights,
               "note": "; ".join(n for n in (status.outside_training, input_note) if n)}
        finish = functools.partial(write_output, output_path(out, method, image), row, tally)
        if runner is None:
            finish(functools.partial(timed, denoiser, noisy, sigma))
        else:
            runner.submit(method, noisy, sigma, weights, getattr(denoiser, "precision", None), finish)


def timed(denoiser, noisy, sigma: float) -> tuple:
    start = time.perf_counter()
    output = denoiser.denoise(noisy, sigma)
    return output, time.perf_counter() - start


def write_output(path: Path, row: dict, tally: Tally, result) -> None:
    """Write the output that ``result()`` returns (with its seconds) to ``path`` and record
    ``row``; or say why it failed (``result()`` raises the method's error)."""
    name = f"{row['image']} {row['method']}"
    try:
        output, seconds = result()
    except (WeightsError, FetchError) as exc:  # each later image would wait on it again
        tally.unfetchable[(row["method"], row["weights"])] = f"its weights could not be had ({exc})"
        print(f"{name}: failed, {exc}", file=sys.stderr)
        tally.failed += 1
        return
    except Exception as exc:  # e.g. out of memory on one large image: go on with the rest
        print(f"{name}: failed, {type(exc).__name__}: {exc}", file=sys.stderr)
        tally.failed += 1
        return
    write_png(to_uint8(output), path)
    tally.rows.append({**row, "seconds": round(seconds, 3)})


def main(argv: list[str] | None = None) -> int:
    """The command line; SIGTERM ends it as Ctrl-C does, keeping the outputs written so far."""
    with terminate_as_interrupt():
        return denoise_files(argv)


def run_images(images: list[Path], denoisers: dict, sigma_given: float | None, out: Path,
               where: str | None) -> tuple[Tally, bool]:
    """Every method on every image, here or on the cluster ``where``; ``denoised.csv`` updated
    with the outputs written, also when interrupted. Returns the tally and whether interrupted."""
    tally = Tally()
    try:
        with contextlib.ExitStack() as stack:
            runner = None
            if where is not None:
                client = stack.enter_context(cluster.connect(where))
                print(f"on the cluster {where}: {cluster.describe(client)}", file=sys.stderr)
                runner = cluster.Runner(client, plugins())
            try:
                for image in tqdm(images, unit="image", disable=None):
                    denoise_image(image, denoisers, sigma_given, out, tally, runner)
                if runner is not None:
                    runner.drain()
            except BaseException:
                if runner is not None:
                    runner.cancel()
                raise
    except KeyboardInterrupt:
        return tally, True
    finally:  # also when interrupted: the outputs written so far keep their rows
        if tally.rows:
            csv_path = out / "denoised.csv"
            order = {(p.name, m): i for i, (p, m) in enumerate((p, m) for p in images for m in denoisers)}
            tally.rows.sort(key=lambda r: order[(r["image"], r["method"])])  # a cluster's come back in any order
            table = merge_rows(csv_path, tally.rows)
            with atomic_write(csv_path, "w", newline="") as f:
                table.to_csv(f, index=False)
    return tally, False


def denoise_files(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m denoisers.denoise", description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="noisy images, or folders of them")
    parser.add_argument("--methods", help=f"comma-separated, from: {', '.join(names())} and any --plugin's "
                                           "(default: those ready)")
    parser.add_argument("--sigma", default="auto",
                        help=f"noise sigma on the 0-255 scale (up to {SIGMA_MAX:g}), or 'auto' to estimate it per "
                             "image (default: auto)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_plugin_argument(parser)
    cluster.add_cluster_argument(parser)
    args = parser.parse_args(argv)
    try:
        check_precision_env()
        load_plugins(args.plugin)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None

    sigma_given = parse_sigma(args.sigma)
    where = cluster.address(args.cluster)
    methods = choose_methods(args.methods)
    images = inputs(args.inputs)
    clashes = [str(p) for p in images for m in methods if output_path(args.out, m, p).resolve() == p]
    if clashes:
        raise SystemExit(f"--out {args.out}: the output would overwrite the input {clashes[0]}; choose another folder")
    try:
        denoisers = {method: get(method) for method in methods}  # one each: a model loads once for all images
    except ValueError as exc:  # a bad $DENOISERS_PRECISION, say
        raise SystemExit(str(exc)) from None
    for method, denoiser in denoisers.items():
        try:
            status, _ = status_and_model(denoiser, sigma_given, with_model=False)
        except MethodError as exc:  # a method of one's own
            raise SystemExit(str(exc)) from None
        if not status.ready:
            raise SystemExit(f"{method} cannot run: {status.reason}")
    prepare_out(args.out, methods)
    try:
        with only_writer(args.out, "denoise run"):  # two runs would each rewrite denoised.csv without the other's rows
            tally, interrupted = run_images(images, denoisers, sigma_given, args.out, where)
    except FolderBusy as exc:
        raise SystemExit(f"--out {exc}") from None
    rows, failed = tally.rows, tally.failed
    if interrupted:
        print(f"interrupted: {count(len(rows), 'output')} written to {args.out} and listed in denoised.csv; "
              "run the command again to redo the rest", file=sys.stderr)
        return 130
    print(f"{count(len(rows), 'output')} in {args.out}" + (f"; {failed} skipped (see above)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
