"""A markdown entry for the "Leases" log of docs/training.md, from a lease's metrics files.

    python -m train.leaselog OUTDIR/metrics_mse.jsonl OUTDIR/metrics_gan.jsonl [--write docs/training.md]

One table row per phase: date, GPU, minutes, steps, it/s (training steps only, evaluations
left out), sigma, Kodak PSNR and detail before -> after (the in-run evaluation on a few
images). ``--write`` inserts the entry at the end of the Leases section (between its markers);
without it the entry is printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

START, END = "<!-- leases:start -->", "<!-- leases:end -->"
HEADER = ("| date | GPU | phase | minutes | steps (phase / all) | it/s | sigma | Kodak PSNR before -> after "
          "| Kodak detail before -> after |\n"
          "|---|---|---|---|---|---|---|---|---|")


def summarize(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    start = next((r for r in rows if r.get("event") == "start"), None)
    if start is None:
        raise ValueError(f"{path} has no start record")
    end = next((r for r in reversed(rows) if r.get("event") == "end"), {})
    train = [r for r in rows if r.get("event") == "train"]
    evals = [r for r in rows if r.get("event") == "eval"]
    last_step = end.get("step") or (train[-1]["step"] if train else start["step"])
    seconds = end.get("seconds") or (train[-1]["elapsed_s"] if train else 0.0)
    psnr = detail = ""
    if evals:
        psnr = _before_after(evals, "psnr_s") + f" ({len(evals[0]['images'])} img)"
        detail = _before_after(evals, "detail_s")
    # Training speed without the evaluations: each log window's steps over its duration.
    prev, steps, seconds_train = start["step"], 0, 0.0
    for r in train:
        if r.get("it_s"):
            steps += r["step"] - prev
            seconds_train += (r["step"] - prev) / r["it_s"]
        prev = r["step"]
    it_s = steps / seconds_train if seconds_train else end.get("it_s")
    lo, hi = start["sigma"]
    return {
        "date": start["time"][:10], "gpu": start["device"] + (f" x{start['world_size']}" if start["world_size"] > 1 else ""),
        "phase": start["phase"], "minutes": f"{seconds / 60:.1f}",
        "steps": f"{last_step - start['step']} / {start.get('steps_before', 0) + last_step}",
        "it_s": f"{it_s:.1f}" if it_s else "?",
        "sigma": f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}", "psnr": psnr or "not evaluated",
        "detail": detail or "not measured",
        "finished": bool(end), "time": start["time"], "steps_before": start.get("steps_before", 0),
    }


def _before_after(evals: list[dict], prefix: str) -> str:
    """``s25: 28.10 -> 31.20; s50: ...`` for the evaluation keys starting with ``prefix`` (first
    and last evaluation of the phase); empty when the runs did not record them."""
    keys = sorted((k for k in evals[0] if k.startswith(prefix)), key=lambda k: float(k[len(prefix):]))
    return "; ".join(f"s{k[len(prefix):]}: {evals[0][k]:.2f} -> {evals[-1][k]:.2f}" for k in keys if k in evals[-1])


def entry(paths: list[Path]) -> str:
    lines = []
    # Start times have one-second resolution, so phases of one job can tie; a later phase of
    # the chain always starts from more steps.
    for s in sorted(map(summarize, paths), key=lambda s: (s["time"], s["steps_before"])):
        note = "" if s["finished"] else " (did not finish)"
        lines.append(f"| {s['date']} | {s['gpu']} | {s['phase']}{note} | {s['minutes']} | {s['steps']} | "
                     f"{s['it_s']} | {s['sigma']} | {s['psnr']} | {s['detail']} |")
    return "\n".join(lines)


def write(doc: Path, rows: str) -> None:
    text = doc.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{doc} lacks the {START} / {END} markers")
    head, rest = text.split(START, 1)
    body, tail = rest.split(END, 1)
    body = body.strip()
    if not body:
        body = HEADER
    elif HEADER.splitlines()[0] not in body:  # rows under another header: never dropped or misaligned
        raise ValueError(f"{doc}: the Leases table has other columns than this version writes; "
                         f"move its rows under the new header by hand:\n{HEADER}")
    doc.write_text(f"{head}{START}\n{body}\n{rows}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.leaselog", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", type=Path, help="metrics jsonl files, one per phase")
    parser.add_argument("--write", type=Path, help="insert into this markdown file's Leases section")
    args = parser.parse_args(argv)
    rows = entry(args.metrics)
    if args.write:
        write(args.write, rows)
    else:
        print(HEADER + "\n" + rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
