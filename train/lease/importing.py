"""Step 3 of a lease, on this machine: import the files a GPU job returned into
``assets/weights/``: the generators, their manifest entries (through ``WeightsEntry``) and model
cards (rendered from data by ``train.modelcard``), with Kodak24 measured on the CPU."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from denoisers.fetch import sha256_of
from denoisers.files import write_bytes

from .. import modelcard
from ..modelcard import Measured, sigma_text, steps_text
from .common import METHODS, REPO, RESULTS, LeaseError, read_jsonl, sigma_tag

LICENSE = "this project's own weights (same licence as the repository's code)"


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

    from ..checkpoint import generator_state
    from ..evaluation import evaluate, load_eval_images

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
    from denoisers import weights

    if psnr == "cli" and assets.resolve() != weights.ASSETS.resolve():
        raise LeaseError("--psnr cli measures through the project's manifest: import into assets/weights, "
                         "or use --psnr inprocess for another folder")
    summary = json.loads((src / "summary.json").read_text()) if (src / "summary.json").exists() else {}
    manifest_path = assets / "manifest.json"
    manifest = weights.read_manifest(manifest_path) if manifest_path.exists() else {}
    imported: dict[str, str] = {}  # file name -> sha256, in the order imported
    for phase, method in METHODS.items():
        if (src / f"{method}.pt").exists():
            job_idresnet = next((d for n, d in imported.items() if n.startswith("idresnet_")), None)
            name, digest = import_generator(src, phase, summary, assets, manifest, sigmas, job_idresnet,
                                            (psnr, limit, hardware))
            imported[name] = digest
    if not imported:
        raise LeaseError(f"no idresnet.pt or idgan.pt in {src}")
    remove_unreferenced(assets, manifest)
    return list(imported)


def import_generator(src: Path, phase: str, summary: dict, assets: Path, manifest: dict, sigmas: list[float],
                     job_idresnet: str | None, options: tuple[str, int | None, str | None]) -> tuple[str, str]:
    """One generator: its file, an entry per served sigma (written at once, so that the CLI
    measures through them), its card. ``options``: psnr, limit, hardware. Returns the file's
    name and sha256."""
    import torch

    from denoisers import weights

    psnr, limit, hardware = options
    method = METHODS[phase]
    meta = torch.load(src / f"{method}.pt", map_location="cpu", weights_only=True)
    name = f"{method}_{sigma_tag(*meta['sigma'])}.pt"
    assets.mkdir(parents=True, exist_ok=True)
    write_bytes(assets / name, (src / f"{method}.pt").read_bytes())
    digest = sha256_of(assets / name)
    chosen = covered_sigmas(meta, sigmas)
    init_sha = fine_tuned_from(meta, summary, job_idresnet)
    for s in chosen:  # one entry per sigma; a mixed-sigma file serves several
        entry = manifest_entry(name, digest, meta, s, (assets / name).stat().st_size, init_sha)
        manifest[entry.key] = entry
    weights.write_manifest(assets / "manifest.json", manifest)
    measured = measure(method, assets / name, digest, chosen, psnr, limit)
    facts = modelcard.from_run(name, digest, meta, read_jsonl(src / f"metrics_{phase}.jsonl"), summary,
                               measured, psnr, hardware, bundled_start(assets, meta, summary))
    modelcard.write(assets, facts)
    if method == "idresnet":
        refresh_gan_card(assets, sigma_tag(*meta["sigma"]))
    print(f"imported {name} ({digest[:12]}), entries " + ", ".join(f"{method}_s{s:g}" for s in chosen)
          + "".join(f"; Kodak24 sigma {s:g}: {modelcard.measured_text(v)}" for s, v in measured.items()))
    return name, digest


def measure(method: str, path: Path, digest: str, chosen: list[float], psnr: str,
            limit: int | None) -> dict[float, Measured]:
    """Kodak24 at each sigma of ``chosen``: by the evaluate CLI, in this process, or not."""
    if psnr == "cli":
        from denoisers import weights

        weights.manifest.cache_clear()
        return {s: kodak_psnr_cli(method, s, digest, limit) for s in chosen}
    if psnr == "inprocess":
        return {s: kodak_psnr_inprocess(path, s, limit) for s in chosen}
    return {}


def manifest_entry(name: str, digest: str, meta: dict[str, Any], sigma: float, size: int,
                   init_sha256: str | None):
    """The manifest entry serving ``name`` at ``sigma``."""
    from denoisers.weights import WeightsEntry

    lo, hi = meta["sigma"]
    method = meta["method"]
    return WeightsEntry(
        key=f"{method}_s{sigma:g}", method=method, file=name, sha256=digest, size=size, bundled=True,
        license=LICENSE,
        source=f"trained by this project (train/, commit {meta.get('commit', 'unknown')[:12]}); "
               f"model card {Path(name).with_suffix('.md').name}",
        trained_on=f"CBSD432, AWGN sigma {sigma_text(lo, hi)}, {steps_text(meta)}",
        sigma=int(sigma) if float(sigma).is_integer() else sigma, arch=dict(meta["arch"]),
        sigma_range=(float(lo), float(hi)) if lo != hi else None, init_sha256=init_sha256)


def fine_tuned_from(meta: dict[str, Any], summary: dict, job_idresnet: str | None) -> str | None:
    """For an IDGAN: the sha256 of the IDResNet it was fine-tuned from. In a job that trained
    both phases, that job's phase 1 (``job_idresnet``, named by its returned export); in a
    GAN-only job, the file or run folder the job started from, when that was an IDResNet."""
    if meta.get("method") != "idgan":
        return None
    if "mse" in [p["phase"] for p in summary.get("plan", [])]:
        return job_idresnet
    if summary.get("init_method", "idresnet") != "idresnet":
        return None
    return summary.get("init_sha256")


def bundled_start(assets: Path, meta: dict[str, Any], summary: dict | None = None) -> str | None:
    """For an IDGAN: whether the bundled IDResNet of its sigma setting is the one it was
    fine-tuned from: by sha256 when its job started from a file (``init_sha256`` of a
    GAN-only job), else judged by MSE step counts (a later job may have trained IDResNet on)."""
    summary = summary or {}
    from_file = "mse" not in [p["phase"] for p in summary.get("plan", [])]
    return start_note(assets, meta, summary.get("init_sha256") if from_file else None,
                      bool(summary.get("init_run_folder")))


def start_note(assets: Path, meta: dict[str, Any], init_sha: str | None, run_folder: bool) -> str | None:
    """``bundled_start``'s judgement, given the sha256 of the IDResNet the IDGAN started from
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
        if init_sha == sha256_of(path):
            how = " (its float32 weights, from the same machine)" if run_folder else ""
            return f"the bundled `{path.name}`{how}, sha256 `{init_sha}` ({start} MSE steps)"
        return (f"the IDResNet with sha256 `{init_sha}` ({start} MSE steps), not the bundled "
                f"`{path.name}` ({bundled} steps)")
    if bundled == start:
        return f"the bundled `{path.name}` ({start} MSE steps)"
    return (f"an IDResNet after {start} MSE steps; the bundled `{path.name}` trained on to {bundled} "
            f"steps afterwards, so this IDGAN's PSNR cost against it includes that difference")


def refresh_gan_card(assets: Path, tag: str) -> None:
    """After a new IDResNet of sigma setting ``tag``: the bundled IDGAN's card says again
    whether that IDResNet is the one it was fine-tuned from, judged from the card's facts
    (the start's sha256 when its job started from a file, else the MSE step counts) and
    rendered again from them."""
    name = f"idgan_{tag}.pt"
    facts = modelcard.read(assets, name)
    if facts is None or not (assets / name).exists():
        return
    note = start_note(assets, facts.meta, facts.start_sha256, facts.start_run_folder)
    if note is not None:  # None: not an IDGAN after all
        modelcard.write(assets, facts.replace(started_from=note))


def remove_unreferenced(assets: Path, manifest: dict) -> None:
    """Delete our own generator files (cards and their facts too) no manifest entry uses any
    more: every bundled file travels to each later lease, so stale ones cost lease space."""
    used = {e.file for e in manifest.values()}
    for method in METHODS.values():
        for path in assets.glob(f"{method}_s*.pt"):
            if path.name not in used:
                path.unlink()
                path.with_suffix(".md").unlink(missing_ok=True)
                modelcard.facts_path(assets, path.name).unlink(missing_ok=True)
                print(f"removed {path.name}: no manifest entry uses it now")
