"""Step 2 of a lease, on the GPU machine: train a plan of phases and fill ``$OUT``."""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from denoisers.fetch import sha256_of

from .common import METHODS, MIB, RESULTS, STAGE, LeaseError, check_out, now, sigma_tag, write_json
from .stage import STAGED_INIT

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
    (work / WORK_MARKER).write_text(json.dumps({"created": now(), "by": "python -m train.lease device"}) + "\n")
    return work


def device(out: Path, plan: list[PhasePlan], cfg, work: Path, stage_dir: Path = STAGE,
           init: str | None = None, plan_choice: str | None = None) -> int:
    """Train the plan, then put the results into ``out`` within the GPU job's output limits.
    ``plan_choice``: why an ``auto`` plan became this phase (kept in summary.json)."""
    from ..data import resolve_images
    from ..loop import train_phase

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
    init_sha, init_run, init_method = _init_digest(init)
    write_json(summary, {"plan": [vars(p) for p in plan], "config": cfg.to_dict(), "stage": stage_info,
                         "plan_choice": plan_choice, "init": init, "init_sha256": init_sha,
                         "init_run_folder": init_run, "init_method": init_method, "failed": failed, "finished": now(),
                         "files": sorted(results)})
    results["summary.json"] = summary
    already = {p.name: p for p in out.iterdir() if p.is_file() and p.name not in results}  # e.g. bench.txt
    check_out({**already, **results})
    for name, path in results.items():
        shutil.copyfile(path, out / name)
    print(f"wrote {len(results)} files ({sum(p.stat().st_size for p in results.values()) / MIB:.2f} MiB) to {out}")
    return 1 if failed else 0


def _init_digest(init: str | None) -> tuple[str | None, bool, str | None]:
    """The sha256 that names a job's start, whether the start was a run folder, and its method
    (idresnet or idgan; None when the file does not say). A run
    folder (an earlier job's phase on the same machine) starts from its float32 ``last.pt``;
    it is named by the float16 ``generator.pt`` exported beside it, the very file that job
    returned (and that is imported and shipped)."""
    if not init:
        return None, False, None
    path = Path(init)
    run_folder = path.is_dir()
    if run_folder:
        path = path / "generator.pt"
    if not path.is_file():
        return None, run_folder, None
    import torch

    meta = torch.load(path, map_location="cpu", weights_only=True)
    return sha256_of(path), run_folder, meta.get("method") if isinstance(meta, dict) else None


def _add_extra(path: Path, extra: dict[str, Any]) -> None:
    import torch

    from ..checkpoint import save_atomic

    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload.update(extra)
    save_atomic(payload, path)


