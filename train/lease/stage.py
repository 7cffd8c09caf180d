"""Step 1 of a lease, on this machine: stage the data and weights a GPU job trains with."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from denoisers.fetch import sha256_of

from .common import (REPO, STAGE, TREE_LIMIT, LeaseError, check_tree, generator_meta, git_commit, now,
                     write_json)

STAGED_INIT = Path("init") / "generator.pt"  # inside the stage folder: --init auto starts from it


def stage(dest: Path = STAGE, kodak: int = 3, vgg: bool = True, repo: Path = REPO,
          limit: int = TREE_LIMIT, init: Path | None = None) -> Path:
    """Copy the checked training set, VGG19 file and ``kodak`` Kodak images into ``dest``; with
    ``init``, also a generator file (a job's returned ``idresnet.pt``) for the next job to
    continue from (a second job on a machine still warm, before it is given back)."""
    from denoisers import datasets, weights

    init_meta = generator_meta(init) if init is not None else None
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
    info = {"commit": commit, "dirty": dirty, "staged": now(), "files": {k: len(v) for k, v in copied.items()}}
    if init is not None:
        (dest / STAGED_INIT).parent.mkdir(parents=True)
        shutil.copyfile(init, dest / STAGED_INIT)
        info["init"] = {"from": str(init), "sha256": sha256_of(dest / STAGED_INIT), "method": init_meta["method"],
                        "steps": init_meta["steps"], "sigma": init_meta["sigma"]}
    write_json(dest / "stage.json", info)
    if dest.resolve().is_relative_to(repo.resolve()):
        ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", str(dest)]).returncode == 0
        if not ignored:
            raise LeaseError(f"{dest} is not ignored by git: it would travel twice and could be committed")
        print(f"staged {sum(map(len, copied.values()))} files into {dest} (commit {commit[:12]}"
              f"{', uncommitted changes' if dirty else ''}); the travelling tree:")
        check_tree(repo, [dest], limit)
    return dest


