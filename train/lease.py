"""The GPU lease runbook in three steps: ``stage`` (here), ``device`` (there), ``import`` (here).

A lease is one remote GPU job. It receives a copy of the working tree (tracked files,
untracked files git does not ignore, and ignored paths sent along explicitly: the staged
``.stage/`` folder), at most ``TREE_LIMIT`` (64 MiB) in all, runs one command, and returns at
most ``OUT_FILES`` (8) files of at most ``OUT_FILE_LIMIT`` (16 MiB) each from its output
folder ``$OUT``.

1. ``stage`` copies the training set (CBSD432), the VGG19 file and a few Kodak images into the
   ignored folder ``.stage/`` (which must be sent with the job's copy of the tree), records the
   commit, and checks that the travelling tree (tracked + untracked-not-ignored files +
   ``.stage``) stays under the job's 64 MiB.
2. ``device`` trains a plan of phases for set numbers of minutes (``mse:5.5,gan:2.5``), with the
   ``.stage`` folder as the data and weights mirror, evaluates a few Kodak images before and
   after each phase, and writes at most 8 files of at most 16 MiB into ``$OUT``: the float16
   generators (``idresnet.pt``, ``idgan.pt``: also the small state the next lease starts from),
   one ``metrics_<phase>.jsonl`` per phase, ``log.txt`` and ``summary.json``.
3. ``import`` turns those files into ``assets/weights/`` files, manifest entries and model
   cards, measuring Kodak24 PSNR on the CPU with ``python -m denoisers.evaluate``.

See docs/training.md for the exact commands.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from denoisers.files import write_text

MIB = 1 << 20
# A GPU job's limits.
TREE_LIMIT = 64 * MIB  # the copy of the working tree (with .stage/) the job receives
OUT_FILES = 8  # files the job returns from its output folder $OUT
OUT_FILE_LIMIT = 16 * MIB  # per returned file
OUT_TOTAL_LIMIT = 64 * MIB  # all returned files together
OUT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # names of returned files
REPO = Path(__file__).resolve().parent.parent
STAGE = REPO / ".stage"
# The device job's run folders. Inside the repository (ignored), because ignored files there
# stay on a warm machine between calls: a second job starts from the first's run folder.
WORK = REPO / ".lease-runs" / "job1"
RESULTS = REPO / "docs" / "results"  # evaluation folders of denoisers.evaluate
METHODS = {"mse": "idresnet", "gan": "idgan"}


class LeaseError(RuntimeError):
    """A size limit would be broken, or a step's inputs are missing."""


# ----------------------------------------------------------------------------- sizes

def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def travelling_bytes(repo: Path, extra: list[Path]) -> dict[str, int]:
    """Bytes a GPU job would receive: tracked files, untracked files git does not ignore, and
    each ignored path sent along (``extra``, e.g. ``.stage``): what ``TREE_LIMIT`` counts."""
    def listed(*args: str) -> list[Path]:
        out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", *args], check=True,
                             capture_output=True).stdout.decode()
        return [repo / p for p in out.split("\0") if p]

    sizes = {
        "tracked": sum(p.stat().st_size for p in listed() if p.is_file() and not p.is_symlink()),
        "untracked, not ignored": sum(p.stat().st_size for p in listed("--others", "--exclude-standard")
                                      if p.is_file() and not p.is_symlink()),
    }
    for path in extra:
        name = path.relative_to(repo) if path.resolve().is_relative_to(repo.resolve()) else path
        sizes[f"sent along {name}"] = folder_bytes(path) if path.exists() else 0
    return sizes


def check_tree(repo: Path, extra: list[Path], limit: int = TREE_LIMIT) -> int:
    sizes = travelling_bytes(repo, extra)
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"  {name:<28} {size / MIB:8.2f} MiB")
    print(f"  {'total':<28} {total / MIB:8.2f} MiB of {limit / MIB:.0f} MiB")
    if total >= limit:
        raise LeaseError(f"the travelling tree would be {total / MIB:.2f} MiB, over the {limit / MIB:.0f} MiB "
                         f"limit: stage less (--kodak 1, --no-vgg for an MSE-only plan) or bundle fewer weights")
    return total


def check_out(files: dict[str, Path]) -> None:
    """Refuse, before anything is copied, a set of $OUT files a GPU job would not return."""
    problems = []
    if len(files) > OUT_FILES:
        problems.append(f"{len(files)} files, a job returns at most {OUT_FILES}")
    total = 0
    for name, path in files.items():
        size = path.stat().st_size
        total += size
        if not OUT_NAME.match(name):
            problems.append(f"{name}: only letters, digits, '.', '_' and '-' are returned")
        if size > OUT_FILE_LIMIT:
            problems.append(f"{name} is {size / MIB:.2f} MiB, over {OUT_FILE_LIMIT / MIB:.0f} MiB")
    if total > OUT_TOTAL_LIMIT:
        problems.append(f"{total / MIB:.2f} MiB in all, over {OUT_TOTAL_LIMIT / MIB:.0f} MiB")
    if problems:
        raise LeaseError("$OUT would break the GPU job's output limits: " + "; ".join(problems))


# ----------------------------------------------------------------------------- 1. stage (CPU)

def git_commit(repo: Path) -> tuple[str, bool]:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                    check=True, capture_output=True, text=True).stdout.strip())
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


STAGED_INIT = Path("init") / "generator.pt"  # inside the stage folder: --init auto starts from it


def stage(dest: Path = STAGE, kodak: int = 3, vgg: bool = True, repo: Path = REPO,
          limit: int = TREE_LIMIT, init: Path | None = None) -> Path:
    """Copy the checked training set, VGG19 file and ``kodak`` Kodak images into ``dest``; with
    ``init``, also a generator file (a job's returned ``idresnet.pt``) for the next job to
    continue from (a second job on a machine still warm, before it is given back)."""
    from denoisers import datasets, weights

    init_meta = _generator_meta(init) if init is not None else None
    if init is not None and Path(init).resolve().is_relative_to(dest.resolve()):
        raise LeaseError(f"--init {init} is inside {dest}, which staging replaces: copy it elsewhere first")

    if dest.exists():
        if any(dest.iterdir()) and not (dest / "stage.json").exists():
            raise LeaseError(f"{dest} exists and is not a stage folder (no stage.json): not removing it")
        shutil.rmtree(dest)
    (dest / "datasets").mkdir(parents=True)
    copied: dict[str, list[str]] = {}
    for name, limit_n in (("cbsd432", None), ("kodak24", kodak)):
        folder = dest / "datasets" / datasets.DATASETS[name].folder
        folder.mkdir(parents=True, exist_ok=True)
        paths = datasets.files(name, limit=limit_n)  # sha256-checked, from mirror/cache/download
        for p in paths:
            shutil.copyfile(p, folder / p.name)
        copied[name] = [p.name for p in paths]
    if vgg:
        entry = weights.manifest()["vgg19_conv_q8"]
        target = dest / "weights" / entry.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights.weights_path(entry), target)
        copied["vgg19"] = [entry.file]
    commit, dirty = git_commit(repo)
    info = {"commit": commit, "dirty": dirty, "staged": _now(), "files": {k: len(v) for k, v in copied.items()}}
    if init is not None:
        (dest / STAGED_INIT).parent.mkdir(parents=True)
        shutil.copyfile(init, dest / STAGED_INIT)
        info["init"] = {"from": str(init), "sha256": _sha256(dest / STAGED_INIT), "method": init_meta["method"],
                        "steps": init_meta["steps"], "sigma": init_meta["sigma"]}
    (dest / "stage.json").write_text(json.dumps(info, indent=2) + "\n")
    if dest.resolve().is_relative_to(repo.resolve()):
        ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", str(dest)]).returncode == 0
        if not ignored:
            raise LeaseError(f"{dest} is not ignored by git: it would travel twice and could be committed")
        print(f"staged {sum(map(len, copied.values()))} files into {dest} (commit {commit[:12]}"
              f"{', uncommitted changes' if dirty else ''}); the travelling tree:")
        check_tree(repo, [dest], limit)
    return dest


# ----------------------------------------------------------------------------- 2. device (GPU)

@dataclass(frozen=True)
class PhasePlan:
    phase: str
    minutes: float


def parse_plan(text: str) -> list[PhasePlan]:
    """``mse:5.5,gan:2.5`` -> phases in order, each with its minutes. ``auto:M`` (alone) is
    one phase that ``choose_phase`` picks on the machine."""
    plan = []
    for part in text.split(","):
        phase, _, minutes = part.partition(":")
        try:
            value = float(minutes)
        except ValueError:
            value = math.nan
        if phase not in (*METHODS, "auto") or not (math.isfinite(value) and value > 0):
            raise LeaseError(f"plan step {part!r} is not mse:MINUTES, gan:MINUTES or auto:MINUTES (minutes > 0)")
        plan.append(PhasePlan(phase, value))
    if [p.phase for p in plan] not in (["mse"], ["gan"], ["mse", "gan"], ["auto"]):
        raise LeaseError("a plan is mse, gan, mse then gan, or auto alone")
    return plan


def choose_phase(init: str | None, results_csv: Path = RESULTS / "kodak24" / "results.csv",
                 reference: str = "dncnn") -> tuple[str, str]:
    """The phase of an ``auto`` plan, and why: ``mse`` while the IDResNet of the run folder
    ``init`` (an earlier job's phase 1 on this machine) is below ``reference`` at any sigma of
    its last in-run evaluation, on the same images and noise (the reference's rows of
    ``results_csv``, the committed Kodak24 results); else ``gan``, IDGAN from it. Decided on
    the machine, so that a second job can be sent the moment the first returns."""
    metrics = Path(init) / "metrics.jsonl" if init else None
    if metrics is None or not metrics.is_file():
        raise LeaseError(f"--plan auto decides from an earlier job's run folder (its metrics.jsonl): "
                         f"give --init .lease-runs/job1/mse, not {init}")
    evals = [r for r in map(json.loads, metrics.read_text().splitlines()) if r.get("event") == "eval"]
    if not evals:
        raise LeaseError(f"{metrics} has no in-run evaluation to decide from")
    last = evals[-1]
    from denoisers import report

    rows = report.one_seed(report.read_results(results_csv), 0)
    rows = rows[(rows["method"] == reference) & rows["image"].isin(last["images"])]
    below = []
    for key in sorted(k for k in last if k.startswith("psnr_s")):
        sigma = float(key.removeprefix("psnr_s"))
        ref = rows[rows["sigma"].astype(float) == sigma]
        if set(ref["image"]) != set(last["images"]):
            raise LeaseError(f"{results_csv} lacks {reference} at sigma {sigma:g} on {', '.join(last['images'])}")
        ours, theirs = float(last[key]), float(ref["psnr"].mean())
        if ours < theirs:
            below.append(f"sigma {sigma:g}: {ours:.2f} < {theirs:.2f}")
    step = f"step {last['step']} of {init}"
    if below:
        return "mse", f"IDResNet ({step}) is below {reference} at {'; '.join(below)} dB: more MSE"
    return "gan", f"IDResNet ({step}) is at or above {reference} at every sigma: IDGAN from it"


def sigma_tag(lo: float, hi: float) -> str:
    return f"s{lo:g}" if lo == hi else f"s{lo:g}-{hi:g}"


def _generator_meta(path: Path) -> dict[str, Any]:
    """The metadata of a generator file that ``device`` or ``import`` wrote; refuses anything else."""
    import torch

    if not Path(path).is_file():
        raise LeaseError(f"--init {path} is not a file")
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which
        raise LeaseError(f"--init {path} is not a readable generator file: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("method") not in METHODS.values() or "state_dict" not in meta:
        raise LeaseError(f"--init {path} is not a generator file written by train/ (no method and state_dict)")
    return meta


def resolve_init(init: str, cfg, assets: Path | None = None, stage_dir: Path = STAGE) -> str | None:
    """'none' -> None; 'auto' -> the generator staged with ``stage --init`` if any, else the
    committed IDResNet of this sigma setting, if any (the last lease's result: the next lease
    continues from it); else the path itself."""
    if init == "none":
        return None
    if init != "auto":
        if not Path(init).exists():
            raise LeaseError(f"--init {init} does not exist")
        return init
    staged = stage_dir / STAGED_INIT
    if staged.exists():
        print(f"continuing from the staged {staged}")
        return str(staged)
    from denoisers import weights

    candidate = (assets or weights.ASSETS) / f"idresnet_{sigma_tag(*cfg.sigma_range)}.pt"
    if candidate.exists():
        print(f"continuing from {candidate}")
        return str(candidate)
    return None


WORK_MARKER = "lease-work.json"  # written into every work folder this tool creates


def fresh_work(work: Path) -> Path:
    """An empty work folder at ``work``, carrying the marker file. An existing folder is
    removed only when it carries the marker (this tool made it), or used when it is empty;
    anything else (``.``, a home folder, a run folder) is refused and left as it is."""
    if work.exists() or work.is_symlink():
        if work.is_symlink() or not work.is_dir():
            raise LeaseError(f"--work {work} is not a folder: not touching it")
        if (work / WORK_MARKER).is_file():
            shutil.rmtree(work)  # a lease starts fresh; only --init carries state over
        elif any(work.iterdir()):
            raise LeaseError(f"--work {work} exists and was not made by this tool (no {WORK_MARKER}): "
                             f"not removing it; give a new or empty folder")
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_MARKER).write_text(json.dumps({"created": _now(), "by": "python -m train.lease device"}) + "\n")
    return work


def device(out: Path, plan: list[PhasePlan], cfg, work: Path, stage_dir: Path = STAGE,
           init: str | None = None, plan_choice: str | None = None) -> int:
    """Train the plan, then put the results into ``out`` within the GPU job's output limits.
    ``plan_choice``: why an ``auto`` plan became this phase (kept in summary.json)."""
    from .data import resolve_images
    from .loop import train_phase

    if init is not None and Path(init).resolve().is_relative_to(work.resolve()):
        raise LeaseError(f"--init {init} is inside --work {work}, which this job clears first: "
                         f"give this job another --work (the earlier job's folder stays as it is)")
    fresh_work(work)
    # The staged folder is the one mirror: the lease trains on exactly what was staged.
    os.environ["DENOISERS_DATA_MIRROR"] = str(stage_dir.resolve() / "datasets")
    os.environ["DENOISERS_WEIGHTS_MIRROR"] = str(stage_dir.resolve() / "weights")
    stage_info = json.loads((stage_dir / "stage.json").read_text()) if (stage_dir / "stage.json").exists() else {}
    extra = {"commit": stage_info.get("commit", "unknown"), "dirty": stage_info.get("dirty", False),
             "data": "CBSD432 (432 images)"}
    out.mkdir(parents=True, exist_ok=True)
    data = resolve_images("cbsd432", download=False)
    try:
        kodak = resolve_images("kodak24", limit=cfg.eval_images, download=False)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"no Kodak evaluation: {exc}", file=sys.stderr)
        kodak = []
    results: dict[str, Path] = {}
    failed = False
    previous = init
    for step in plan:
        folder = work / step.phase
        try:
            train_phase(cfg.replace(minutes=step.minutes), step.phase, data, folder, init=previous, eval_paths=kodak)
            gen = folder / "generator.pt"
            _add_extra(gen, extra)
            results[f"{METHODS[step.phase]}.pt"] = gen
            previous = str(folder)  # phase 2 starts from phase 1's float32 weights, not the fp16 export
        except Exception:  # keep what the earlier phase made: the lease is spent either way
            failed = True
            (folder / "log.txt").parent.mkdir(parents=True, exist_ok=True)
            with open(folder / "log.txt", "a") as f:
                f.write(traceback.format_exc())
            traceback.print_exc()
            break
        finally:
            if (folder / "metrics.jsonl").exists():
                results[f"metrics_{step.phase}.jsonl"] = folder / "metrics.jsonl"
    log = work / "log.txt"
    log.write_text("".join((work / s.phase / "log.txt").read_text()
                           for s in plan if (work / s.phase / "log.txt").exists()))
    results["log.txt"] = log
    summary = work / "summary.json"
    init_sha, init_run = _init_digest(init)
    summary.write_text(json.dumps({"plan": [vars(p) for p in plan], "config": cfg.to_dict(), "stage": stage_info,
                                   "plan_choice": plan_choice,
                                   "init": init, "init_sha256": init_sha, "init_run_folder": init_run,
                                   "failed": failed, "finished": _now(), "files": sorted(results)}, indent=2) + "\n")
    results["summary.json"] = summary
    already = {p.name: p for p in out.iterdir() if p.is_file() and p.name not in results}  # e.g. bench.txt
    check_out({**already, **results})
    for name, path in results.items():
        shutil.copyfile(path, out / name)
    print(f"wrote {len(results)} files ({sum(p.stat().st_size for p in results.values()) / MIB:.2f} MiB) to {out}")
    return 1 if failed else 0


def _init_digest(init: str | None) -> tuple[str | None, bool]:
    """The sha256 that names a job's start, and whether the start was a run folder. A run
    folder (an earlier job's phase on the same machine) starts from its float32 ``last.pt``;
    it is named by the float16 ``generator.pt`` exported beside it, the very file that job
    returned (and that is imported and shipped)."""
    if not init:
        return None, False
    path = Path(init)
    run_folder = path.is_dir()
    if run_folder:
        path = path / "generator.pt"
    return (_sha256(path) if path.is_file() else None), run_folder


def _add_extra(path: Path, extra: dict[str, Any]) -> None:
    import torch

    from .checkpoint import save_atomic

    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload.update(extra)
    save_atomic(payload, path)


# ----------------------------------------------------------------------------- 3. import (CPU)

class Measured(NamedTuple):
    """Kodak24 quality of one imported file at one sigma (``detail``: None where not measured)."""

    psnr: float
    images: int
    detail: float | None = None


def kodak_psnr_cli(method: str, sigma: float, sha256: str, limit: int | None,
                   results: Path = RESULTS / "kodak24") -> Measured:
    """Mean PSNR and detail (high-frequency energy over the clean images') of ``method`` at
    ``sigma`` on Kodak24, by ``python -m denoisers.evaluate`` into ``results`` (the folder that
    docs/results.md is built from: the rows are kept, and a later full run only adds the rest).
    Checks that the evaluated weights are the imported file (by sha256)."""
    results.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "denoisers.evaluate", "--data", "kodak24", "--sigma", f"{sigma:g}",
           "--methods", method, "--out", str(results), "--name", results.name] + (["--limit", str(limit)] if limit else [])
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise LeaseError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    from denoisers import report

    rows = report.one_seed(report.read_results(results / "results.csv"), 0)
    rows = rows[(rows["method"] == method) & (rows["sigma"].astype(float) == sigma)]
    if rows.empty:
        raise LeaseError(f"denoisers.evaluate wrote no {method} rows for sigma {sigma:g}")
    wrong = set(rows["weights"]) - {sha256}
    if wrong:
        raise LeaseError(f"denoisers.evaluate used weights {', '.join(sorted(wrong))}, not the imported {sha256}")
    mean = report.summary(rows).iloc[0]
    detail = float(mean["detail"])
    return Measured(float(mean["psnr"]), int(mean["images"]), None if math.isnan(detail) else detail)


def kodak_psnr_inprocess(path: Path, sigma: float, limit: int | None) -> Measured:
    """The same protocol in this process (for imports into a folder other than assets/weights)."""
    import torch

    from denoisers import datasets
    from denoisers.nets.idresnet import IDResNetGenerator

    from .checkpoint import generator_state
    from .evaluation import evaluate, load_eval_images

    state, meta = generator_state(path)
    g = IDResNetGenerator(**meta["arch"])
    g.load_state_dict(state)
    images = load_eval_images(datasets.files("kodak24", limit=limit))
    with torch.inference_mode():
        scores = evaluate(g.eval(), images, (sigma,), torch.device("cpu"))
    return Measured(scores[f"psnr_s{sigma:g}"], len(images), scores[f"detail_s{sigma:g}"])


def covered_sigmas(meta: dict[str, Any], sigmas: list[float]) -> list[float]:
    lo, hi = meta["sigma"]
    chosen = [s for s in sigmas if lo <= s <= hi]
    if not chosen:
        raise LeaseError(f"the file was trained for sigma {lo:g}..{hi:g}, none of {sigmas}")
    return chosen


def import_results(src: Path, assets: Path, sigmas: list[float], psnr: str = "cli", limit: int | None = None,
                   hardware: str | None = None) -> list[str]:
    """Copy ``src``'s generators into ``assets`` with manifest entries and model cards."""
    import torch

    from denoisers import weights

    if psnr == "cli" and assets.resolve() != weights.ASSETS.resolve():
        raise LeaseError("--psnr cli measures through the project's manifest: import into assets/weights, "
                         "or use --psnr inprocess for another folder")
    summary = json.loads((src / "summary.json").read_text()) if (src / "summary.json").exists() else {}
    manifest_path = assets / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    imported = []
    for phase, method in METHODS.items():
        path = src / f"{method}.pt"
        if not path.exists():
            continue
        meta = torch.load(path, map_location="cpu", weights_only=True)
        lo, hi = meta["sigma"]
        name = f"{method}_{sigma_tag(lo, hi)}.pt"
        assets.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, assets / name)
        digest = _sha256(assets / name)
        chosen = covered_sigmas(meta, sigmas)
        metrics = _read_jsonl(src / f"metrics_{phase}.jsonl")
        for s in chosen:  # one entry per sigma; a mixed-sigma file serves several
            manifest[f"{method}_s{s:g}"] = {
                "method": method, "file": name, "sha256": digest, "size": (assets / name).stat().st_size,
                "bundled": True,
                "license": "this project's own weights (same licence as the repository's code)",
                "source": f"trained by this project (train/, commit {meta.get('commit', 'unknown')[:12]}); "
                          f"model card {Path(name).with_suffix('.md').name}",
                "trained_on": f"CBSD432, AWGN sigma {_sigma_text(lo, hi)}, {_steps_text(meta)}",
                "sigma": int(s) if float(s).is_integer() else s, "arch": dict(meta["arch"]),
            }
            if lo != hi:
                manifest[f"{method}_s{s:g}"]["sigma_range"] = [lo, hi]
        _write_json(manifest_path, manifest)
        if psnr == "cli":
            weights.manifest.cache_clear()
            measured = {s: kodak_psnr_cli(method, s, digest, limit) for s in chosen}
        elif psnr == "inprocess":
            measured = {s: kodak_psnr_inprocess(assets / name, s, limit) for s in chosen}
        else:
            measured = {}
        card = model_card(name, digest, meta, metrics, summary, measured, psnr, hardware,
                          _bundled_start(assets, meta, summary))
        (assets / name).with_suffix(".md").write_text(card)
        if method == "idresnet":
            _refresh_gan_card(assets, sigma_tag(lo, hi))
        imported.append(name)
        print(f"imported {name} ({digest[:12]}), entries " + ", ".join(f"{method}_s{s:g}" for s in chosen)
              + "".join(f"; Kodak24 sigma {s:g}: {_measured_text(v)}" for s, v in measured.items()))
    if not imported:
        raise LeaseError(f"no idresnet.pt or idgan.pt in {src}")
    _remove_unreferenced(assets, manifest)
    return imported


def _bundled_start(assets: Path, meta: dict[str, Any], summary: dict | None = None) -> str | None:
    """For an IDGAN: whether the bundled IDResNet of its sigma setting is the one it was
    fine-tuned from: by sha256 when its job started from a file (``init_sha256`` of a
    GAN-only job), else judged by MSE step counts (a later job may have trained IDResNet on)."""
    summary = summary or {}
    from_file = "mse" not in [p["phase"] for p in summary.get("plan", [])]
    return _start_note(assets, meta, summary.get("init_sha256") if from_file else None,
                       bool(summary.get("init_run_folder")))


def _start_note(assets: Path, meta: dict[str, Any], init_sha: str | None, run_folder: bool) -> str | None:
    """``_bundled_start``'s judgement, given the sha256 of the IDResNet the IDGAN started from
    (None: unknown, judge by step counts) and whether that was a run folder's float32 weights."""
    if meta.get("method") != "idgan":
        return None
    path = assets / f"idresnet_{sigma_tag(*meta['sigma'])}.pt"
    if not path.exists():
        return None
    import torch

    bundled = torch.load(path, map_location="cpu", weights_only=True).get("steps")
    start = meta["steps"] - meta["phase_steps"]
    if init_sha:
        if init_sha == _sha256(path):
            how = " (its float32 weights, from the same machine)" if run_folder else ""
            return f"the bundled `{path.name}`{how}, sha256 `{init_sha}` ({start} MSE steps)"
        return (f"the IDResNet with sha256 `{init_sha}` ({start} MSE steps), not the bundled "
                f"`{path.name}` ({bundled} steps)")
    if bundled == start:
        return f"the bundled `{path.name}` ({start} MSE steps)"
    return (f"an IDResNet after {start} MSE steps; the bundled `{path.name}` trained on to {bundled} "
            f"steps afterwards, so this IDGAN's PSNR cost against it includes that difference")


STARTED_FROM = re.compile(r"^\| started from \| (.*) \|$", re.M)
SHA256_IN_TEXT = re.compile(r"sha256 `([0-9a-f]{64})`")


def _refresh_gan_card(assets: Path, tag: str) -> None:
    """After a new IDResNet of sigma setting ``tag``: the bundled IDGAN's card says again
    whether that IDResNet is the one it was fine-tuned from (a card names its start's sha256
    when its job started from a file, else the start is judged by MSE step counts)."""
    gan, card = assets / f"idgan_{tag}.pt", assets / f"idgan_{tag}.md"
    if not (gan.exists() and card.exists()):
        return
    import torch

    text = card.read_text()
    row = STARTED_FROM.search(text)
    if row is None:
        return
    sha = SHA256_IN_TEXT.search(row.group(1))
    started_from = _start_note(assets, torch.load(gan, map_location="cpu", weights_only=True),
                               sha.group(1) if sha else None, "float32 weights" in row.group(1))
    if started_from is not None:  # None: not an IDGAN file after all
        card.write_text(text[:row.start(1)] + started_from + text[row.end(1):])


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _remove_unreferenced(assets: Path, manifest: dict[str, Any]) -> None:
    """Delete our own generator files (and cards) no manifest entry uses any more: every
    bundled file travels to each later lease, so stale ones cost lease space."""
    used = {e["file"] for e in manifest.values()}
    for method in METHODS.values():
        for path in assets.glob(f"{method}_s*.pt"):
            if path.name not in used:
                path.unlink()
                path.with_suffix(".md").unlink(missing_ok=True)
                print(f"removed {path.name}: no manifest entry uses it now")


def model_card(name: str, digest: str, meta: dict[str, Any], metrics: list[dict], summary: dict,
               measured: dict[float, Measured], psnr: str, hardware: str | None,
               started_from: str | None = None) -> str:
    cfg = meta["config"]
    lo, hi = meta["sigma"]
    method = meta["method"]
    evals = [r for r in metrics if r.get("event") == "eval"]
    end = next((r for r in reversed(metrics) if r.get("event") == "end"), {})
    title = "IDResNet (phase 1, MSE)" if method == "idresnet" else "IDGAN (phase 2, detail loss)"
    lines = [
        f"# {name}: {title}",
        "",
        "Generator of \"Image Denoising via Generative Adversarial Networks with Detail Loss\" (2019), "
        "trained by this project with `train/` (docs/training.md).",
        "",
        "| | |", "|---|---|",
        f"| file | `{name}`, float16 state dict under `state_dict`, with the training metadata beside it |",
        f"| sha256 | `{digest}` |",
        f"| architecture | IDResNetGenerator({', '.join(f'{k}={v}' for k, v in meta['arch'].items())}) |",
        f"| data | {meta.get('data', 'CBSD432')}: random {cfg['crop']}x{cfg['crop']} crops, flips and 90-degree "
        f"rotations, Gaussian noise drawn per crop (input [0, 1] unclipped, target [-1, 1]) |",
        f"| sigma | {_sigma_text(lo, hi)} (0-255 scale) |",
        f"| steps | {_steps_text(meta)}, batch {cfg['batch']} "
        f"x {meta.get('world_size', 1)} process(es) |",
        f"| optimiser | Adam (beta1 {cfg['betas'][0]}), lr {cfg['lr']:g} "
        + (f"divided by {1 / cfg['lr_gamma']:g} at {', '.join(f'{m:g}' for m in cfg['lr_milestones'])} of the run"
           if cfg["lr_milestones"] else "held for the whole run")
        + (f", linear warm-up over the first {cfg['lr_warmup']} steps" if cfg.get("lr_warmup") else "") + " |",
    ]
    job_phases = [p["phase"] for p in summary.get("plan", [])]
    job_start = method == "idresnet" or "mse" not in job_phases  # else IDGAN starts from this job's phase 1
    if started_from is None and job_start and summary.get("init_sha256") and meta["steps"] > meta["phase_steps"]:
        started_from = f"the generator with sha256 `{summary['init_sha256']}`"
        if summary.get("init_run_folder"):
            started_from += " (its float32 weights, from the earlier job's run folder on the same machine)"
    if started_from:
        lines.append(f"| started from | {started_from} |")
    if method == "idgan":
        lines.append(f"| loss | {cfg['w_pix']:g} MSE + {cfg['w_content']:g} VGG19 relu5_4 MSE (features x "
                     f"{cfg['content_feature_scale']:g}) + {cfg['w_adv']:g} (-log D(G(y))); SRGAN discriminator |")
    else:
        lines.append("| loss | MSE on [-1, 1] |")
    lines += [
        f"| hardware | {hardware or meta.get('device', 'unknown')}, torch {meta.get('torch', '?')}, "
        f"{'bf16 autocast' if cfg['amp'] == 'bf16' else 'fp32'} |",
        f"| training time | {end.get('seconds', '?')} s at {end.get('it_s', '?')} it/s |",
        f"| date | {meta.get('created', 'unknown')} |",
        f"| commit | {meta.get('commit', 'unknown')}{' (with uncommitted changes)' if meta.get('dirty') else ''} |",
    ]
    if evals:
        keys = sorted(k for k in evals[0] if k.startswith("psnr_s"))
        lines.append(f"| Kodak PSNR during training ({len(evals[0]['images'])} images) | "
                     + "; ".join(f"sigma {k[6:]}: {evals[0][k]:.2f} -> {evals[-1][k]:.2f} dB" for k in keys) + " |")
        details = sorted(k for k in evals[0] if k.startswith("detail_s") and k in evals[-1])
        if details:
            lines.append(f"| Kodak detail during training | "
                         + "; ".join(f"sigma {k[8:]}: {evals[0][k]:.2f} -> {evals[-1][k]:.2f}" for k in details) + " |")
    if measured:
        how = "`python -m denoisers.evaluate`" if psnr == "cli" else "the evaluation protocol in-process"
        lines.append(f"| Kodak24 PSNR (CPU, {how}) | "
                     + "; ".join(f"sigma {s:g}: {_measured_text(m)}" for s, m in measured.items()) + " |")
    else:
        lines.append("| Kodak24 PSNR | not measured at import |")
    lines += ["", "Evaluation protocol: docs/evaluation.md (seed 0, unclipped noise, uint8-rounded output).", ""]
    return "\n".join(lines)


def _measured_text(m: Measured) -> str:
    detail = "" if m.detail is None else f", detail {m.detail:.2f}"
    return f"{m.psnr:.2f} dB{detail} ({m.images} images)"


def _steps_text(meta: dict[str, Any]) -> str:
    before = meta["steps"] - meta["phase_steps"]
    if meta["method"] == "idgan":
        return f"{before} MSE steps then {meta['phase_steps']} GAN steps"
    if not before:
        return f"{meta['steps']} MSE steps"
    # A run continued from an exported generator restarts Adam and its own lr schedule.
    return (f"{meta['steps']} MSE steps in all: {meta['phase_steps']} in this run, continued from a "
            f"{before}-step generator with a fresh Adam and its own lr schedule")


def _sigma_text(lo: float, hi: float) -> str:
    return f"{lo:g}" if lo == hi else f"uniform in [{lo:g}, {hi:g}] per crop"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError, parse_override, preset

    parser = argparse.ArgumentParser(prog="python -m train.lease", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stage", help="copy data and weights into .stage/ and check the tree size")
    p.add_argument("--dest", type=Path, default=STAGE)
    p.add_argument("--kodak", type=int, default=3, help="Kodak images for the in-run PSNR (default 3)")
    p.add_argument("--no-vgg", action="store_true", help="leave the VGG19 file out (MSE-only plans)")
    p.add_argument("--init", type=Path, help="a returned idresnet.pt for the next job to continue from "
                                             "(its --init auto picks it)")
    p = sub.add_parser("device", help="on the GPU machine: train the plan, write $OUT")
    p.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="default: $OUT")
    p.add_argument("--plan", default="mse:5.5,gan:2.5",
                   help="phases and minutes (default mse:5.5,gan:2.5); auto:M continues from an earlier job's "
                        "--init run folder with mse while its IDResNet is below DnCNN, else gan")
    p.add_argument("--preset", default="gpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--init", default="auto",
                   help="generator to start from: a .pt, 'none', or 'auto' (default): the bundled "
                        "assets/weights/idresnet_<sigma>.pt of this sigma setting when there is one")
    p.add_argument("--stage", type=Path, default=STAGE)
    p.add_argument("--work", type=Path, default=WORK,
                   help=f"folder for the phases' run folders (default .lease-runs/job1, ignored by git: it "
                        f"stays on a warm machine for a second job's --init .lease-runs/job1/mse); an existing "
                        f"one is replaced only when it carries {WORK_MARKER} (made by this command), else it "
                        f"must be empty")
    p = sub.add_parser("import", help="turn $OUT files into assets/weights/ files and model cards")
    p.add_argument("src", type=Path, help="the folder holding the files the GPU job returned from $OUT")
    p.add_argument("--assets", type=Path, default=None, help="default: assets/weights")
    p.add_argument("--sigmas", default="25,35,50", help="manifest sigmas to serve (default 25,35,50)")
    p.add_argument("--psnr", choices=("cli", "inprocess", "skip"), default="cli")
    p.add_argument("--kodak-limit", type=int, default=None, help="measure on the first N Kodak images only")
    p.add_argument("--hardware", help="override the hardware line of the model card")
    args = parser.parse_args(argv)
    try:
        if args.command == "stage":
            stage(args.dest, args.kodak, not args.no_vgg, init=args.init)
        elif args.command == "device":
            if args.out is None:
                raise LeaseError("give --out or set $OUT")
            cfg = preset(args.preset)
            changes = dict(parse_override(t) for t in args.set)
            cfg = cfg.replace(**changes) if changes else cfg
            plan = parse_plan(args.plan)
            init = resolve_init(args.init, cfg, stage_dir=args.stage)
            why = None
            if plan[0].phase == "auto":
                phase, why = choose_phase(init)
                print(f"plan auto: {phase} ({why})")
                plan = [PhasePlan(phase, plan[0].minutes)]
            return device(args.out, plan, cfg, args.work, args.stage, init, plan_choice=why)
        else:
            from denoisers import weights

            try:
                sigmas = [float(s) for s in args.sigmas.split(",")]
            except ValueError:
                raise LeaseError(f"--sigmas takes numbers like 25,35,50, got {args.sigmas!r}") from None
            import_results(args.src, args.assets or weights.ASSETS, sigmas, args.psnr, args.kodak_limit,
                           args.hardware)
    except (LeaseError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
