"""What the lease steps share: the GPU job's limits, the repository's folders, the size checks
and a few small helpers."""
from __future__ import annotations

import datetime as _dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from denoisers.files import write_text

MIB = 1 << 20
# A GPU job's limits.
TREE_LIMIT = 64 * MIB  # the copy of the working tree (with .stage/) the job receives
OUT_FILES = 8  # files the job returns from its output folder $OUT
OUT_FILE_LIMIT = 16 * MIB  # per returned file
OUT_TOTAL_LIMIT = 64 * MIB  # all returned files together
OUT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # names of returned files
REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / ".stage"
# The device job's run folders. Inside the repository (ignored), because ignored files there
# stay on a warm machine between calls: a second job starts from the first's run folder.
WORK = REPO / ".lease-runs" / "job1"
RESULTS = REPO / "docs" / "results"  # evaluation folders of denoisers.evaluate
METHODS = {"mse": "idresnet", "gan": "idgan"}


class LeaseError(RuntimeError):
    """A size limit would be broken, or a step's inputs are missing."""



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




def git_commit(repo: Path) -> tuple[str, bool]:
    """The commit checked out in ``repo`` and whether tracked files differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                    check=True, capture_output=True, text=True).stdout.strip())
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def sigma_tag(lo: float, hi: float) -> str:
    """The sigma part of a generator's file name: ``s25`` or ``s20-55``."""
    return f"s{lo:g}" if lo == hi else f"s{lo:g}-{hi:g}"


def generator_meta(path: Path) -> dict[str, Any]:
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


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
