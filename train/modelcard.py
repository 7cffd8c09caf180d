"""Model cards of the project's own trained weights, rendered from their facts.

A card (``idgan_s20-55.md`` beside ``idgan_s20-55.pt``) is a pure function of a ``CardFacts``:
the training metadata of the file, what its run recorded, what was measured at import, and
what is known of the generator it started from. The facts are kept beside the card
(``idgan_s20-55.card.json``). When something a card says changes (a new IDResNet changes
whether it is the one the bundled IDGAN was fine-tuned from), the facts are updated and the
card is rendered again: a card is never read back.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from denoisers.files import write_text

FACTS_SUFFIX = ".card.json"


class Measured(NamedTuple):
    """Kodak24 quality of one imported file at one sigma (``detail``: None where not measured)."""

    psnr: float
    images: int
    detail: float | None = None


@dataclass(frozen=True)
class CardFacts:
    """Everything a model card says. ``meta``: the training metadata of the generator file (its
    payload without ``state_dict``: method, arch, config, sigma, steps, phase_steps, device,
    torch, created, commit ...). ``evals``: the first and last in-run evaluation records.
    ``end``: the run's end record. ``psnr``: how ``measured`` was measured (cli, inprocess,
    skip). ``started_from``: the card's sentence on the generator the run started from;
    ``start_sha256`` and ``start_run_folder`` are the data it is judged from again later (the
    sha256 of a file a GAN-only job started from, and whether that was an earlier job's
    run folder on the same machine)."""

    name: str
    sha256: str
    meta: dict[str, Any]
    evals: tuple[dict[str, Any], ...] = ()
    end: dict[str, Any] = field(default_factory=dict)
    measured: dict[float, Measured] = field(default_factory=dict)
    psnr: str = "skip"
    hardware: str | None = None
    started_from: str | None = None
    start_sha256: str | None = None
    start_run_folder: bool = False

    def replace(self, **changes: Any) -> CardFacts:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["evals"] = list(self.evals)
        data["measured"] = [{"sigma": s, **m._asdict()} for s, m in self.measured.items()]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CardFacts:
        data = dict(data)
        data["evals"] = tuple(data.get("evals", ()))
        data["measured"] = {float(m["sigma"]): Measured(m["psnr"], m["images"], m.get("detail"))
                            for m in data.get("measured", ())}
        return cls(**data)


def from_run(name: str, sha256: str, meta: dict[str, Any], metrics: list[dict], summary: dict,
             measured: dict[float, Measured], psnr: str, hardware: str | None,
             started_from: str | None = None) -> CardFacts:
    """The facts of an imported file: ``meta`` its payload, ``metrics`` its phase's records,
    ``summary`` its job's summary.json. Without ``started_from``, a run that began from a
    file given to its job says so by that file's sha256."""
    meta = {k: v for k, v in meta.items() if k != "state_dict"}
    evals = [r for r in metrics if r.get("event") == "eval"]
    end = next((r for r in reversed(metrics) if r.get("event") == "end"), {})
    job_phases = [p["phase"] for p in summary.get("plan", [])]
    from_file = "mse" not in job_phases  # else an IDGAN starts from its own job's phase 1
    job_start = meta["method"] == "idresnet" or from_file
    init_sha = summary.get("init_sha256")
    run_folder = bool(summary.get("init_run_folder"))
    if started_from is None and job_start and init_sha and meta["steps"] > meta["phase_steps"]:
        started_from = f"the generator with sha256 `{init_sha}`"
        if run_folder:
            started_from += " (its float32 weights, from the earlier job's run folder on the same machine)"
    kept = evals if len(evals) <= 2 else [evals[0], evals[-1]]  # a card compares the first and the last
    return CardFacts(name, sha256, _plain(meta), tuple(_plain(r) for r in kept), _plain(end), dict(measured), psnr, hardware, started_from,
                     init_sha if from_file else None, run_folder)


def render(facts: CardFacts) -> str:
    """The card's markdown."""
    meta = facts.meta
    cfg = meta["config"]
    title = "IDResNet (phase 1, MSE)" if meta["method"] == "idresnet" else "IDGAN (phase 2, detail loss)"
    lines = [
        f"# {facts.name}: {title}",
        "",
        "Generator of \"Image Denoising via Generative Adversarial Networks with Detail Loss\" (2019), "
        "trained by this project with `train/` (docs/training.md).",
        "",
        "| | |", "|---|---|",
        f"| file | `{facts.name}`, float16 state dict under `state_dict`, with the training metadata beside it |",
        f"| sha256 | `{facts.sha256}` |",
        f"| architecture | IDResNetGenerator({', '.join(f'{k}={v}' for k, v in meta['arch'].items())}) |",
        f"| data | {meta.get('data', 'CBSD432')}: random {cfg['crop']}x{cfg['crop']} crops, flips and 90-degree "
        f"rotations{augment_text(cfg)}, Gaussian noise drawn per crop (input [0, 1] unclipped, target [-1, 1]) |",
        f"| sigma | {sigma_text(*meta['sigma'])} (0-255 scale) |",
        f"| steps | {steps_text(meta)}, batch {cfg['batch']} x {meta.get('world_size', 1)} process(es) |",
        f"| optimiser | {_optimiser_text(cfg)} |",
    ]
    if facts.started_from:
        lines.append(f"| started from | {facts.started_from} |")
    lines += _training_rows(facts) + _evaluation_rows(facts)
    lines += ["", "Evaluation protocol: docs/evaluation.md (seed 0, unclipped noise, uint8-rounded output).", ""]
    return "\n".join(lines)


def _optimiser_text(cfg: dict[str, Any]) -> str:
    text = f"Adam (beta1 {cfg['betas'][0]}), lr {cfg['lr']:g} "
    if cfg["lr_milestones"]:
        text += (f"divided by {1 / cfg['lr_gamma']:g} at "
                 f"{', '.join(f'{m:g}' for m in cfg['lr_milestones'])} of the run")
    else:
        text += "held for the whole run"
    if cfg.get("lr_warmup"):
        text += f", linear warm-up over the first {cfg['lr_warmup']} steps"
    return text


def _training_rows(facts: CardFacts) -> list[str]:
    meta, cfg, end = facts.meta, facts.meta["config"], facts.end
    if meta["method"] == "idgan":
        loss = (f"{cfg['w_pix']:g} MSE + {cfg['w_content']:g} VGG19 relu5_4 MSE (features x "
                f"{cfg['content_feature_scale']:g}) + {cfg['w_adv']:g} (-log D(G(y))); SRGAN discriminator")
    else:
        loss = "MSE on [-1, 1]"
    return [
        f"| loss | {loss} |",
        f"| hardware | {facts.hardware or meta.get('device', 'unknown')}, torch {meta.get('torch', '?')}, "
        f"{'bf16 autocast' if cfg['amp'] == 'bf16' else 'fp32'} |",
        f"| training time | {end.get('seconds', '?')} s at {end.get('it_s', '?')} it/s |",
        f"| date | {meta.get('created', 'unknown')} |",
        f"| commit | {meta.get('commit', 'unknown')}{' (with uncommitted changes)' if meta.get('dirty') else ''} |",
    ]


def _evaluation_rows(facts: CardFacts) -> list[str]:
    rows = []
    if facts.evals:
        first, last = facts.evals[0], facts.evals[-1]
        keys = sorted(k for k in first if k.startswith("psnr_s"))
        rows.append(f"| Kodak PSNR during training ({len(first['images'])} images) | "
                    + "; ".join(f"sigma {k[6:]}: {first[k]:.2f} -> {last[k]:.2f} dB" for k in keys) + " |")
        details = sorted(k for k in first if k.startswith("detail_s") and k in last)
        if details:
            rows.append("| Kodak detail during training | "
                        + "; ".join(f"sigma {k[8:]}: {first[k]:.2f} -> {last[k]:.2f}" for k in details) + " |")
    if facts.measured:
        how = "`python -m denoisers.evaluate`" if facts.psnr == "cli" else "the evaluation protocol in-process"
        rows.append(f"| Kodak24 PSNR (CPU, {how}) | "
                    + "; ".join(f"sigma {s:g}: {measured_text(m)}" for s, m in facts.measured.items()) + " |")
    else:
        rows.append("| Kodak24 PSNR | not measured at import |")
    return rows


def measured_text(m: Measured) -> str:
    detail = "" if m.detail is None else f", detail {m.detail:.2f}"
    return f"{m.psnr:.2f} dB{detail} ({m.images} images)"


def steps_text(meta: dict[str, Any]) -> str:
    before = meta["steps"] - meta["phase_steps"]
    if meta["method"] == "idgan":
        return f"{before} MSE steps then {meta['phase_steps']} GAN steps"
    if not before:
        return f"{meta['steps']} MSE steps"
    # A run continued from an exported generator restarts Adam and its own lr schedule.
    return (f"{meta['steps']} MSE steps in all: {meta['phase_steps']} in this run, continued from a "
            f"{before}-step generator with a fresh Adam and its own lr schedule")


def augment_text(cfg: dict) -> str:
    """The crops' further variation (``train.data.Augment``) for the data row; "" where none
    (and for weights trained before these settings existed)."""
    parts = []
    if cfg.get("scale_aug"):
        lo, hi = cfg["scale_aug"]
        parts.append(f"cut larger and shrunk by a factor uniform in [{lo:g}, {hi:g}] per batch")
    if cfg.get("channel_aug"):
        parts.append("R, G, B in a random order per crop")
    if cfg.get("brightness_aug"):
        parts.append(f"brightness times [{1 - cfg['brightness_aug']:g}, 1] per crop")
    return "".join(f", {p}" for p in parts)


def sigma_text(lo: float, hi: float) -> str:
    return f"{lo:g}" if lo == hi else f"uniform in [{lo:g}, {hi:g}] per crop"


# ----------------------------------------------------------------------------- files

def facts_path(folder: Path, name: str) -> Path:
    """Where the facts of the card of weights file ``name`` are kept."""
    return Path(folder) / (Path(name).stem + FACTS_SUFFIX)


def write(folder: Path, facts: CardFacts) -> Path:
    """Write the card and its facts beside the weights file; returns the card's path."""
    card = Path(folder) / Path(facts.name).with_suffix(".md").name
    write_text(facts_path(folder, facts.name), json.dumps(facts.to_json(), indent=2) + "\n")
    write_text(card, render(facts))
    return card


def read(folder: Path, name: str) -> CardFacts | None:
    """The facts of the card of ``name`` in ``folder``, or None when it has none."""
    path = facts_path(folder, name)
    if not path.is_file():
        return None
    return CardFacts.from_json(json.loads(path.read_text()))


def _plain(value: Any) -> Any:
    """``value`` as JSON holds it (tuples as lists), so facts read back compare equal."""
    return json.loads(json.dumps(value))
