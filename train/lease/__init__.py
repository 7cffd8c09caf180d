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

One module per step (``stage``, ``device``, ``importing``), what they share in ``common``, the
command line in ``cli``; model cards are rendered by ``train.modelcard``.

See docs/training.md for the exact commands.
"""
from __future__ import annotations

from .cli import main
from .common import (MIB, OUT_FILE_LIMIT, OUT_FILES, OUT_TOTAL_LIMIT, REPO, RESULTS, STAGE, TREE_LIMIT, WORK,
                     LeaseError, check_out, check_tree, folder_bytes, sigma_tag, travelling_bytes)
from .device import WORK_MARKER, PhasePlan, choose_phase, device, fresh_work, parse_plan, resolve_init
from .importing import (covered_sigmas, import_results, kodak_psnr_cli, kodak_psnr_inprocess,
                        refresh_gan_card)
from .stage import STAGED_INIT, stage

__all__ = ["MIB", "OUT_FILE_LIMIT", "OUT_FILES", "OUT_TOTAL_LIMIT", "REPO", "RESULTS", "STAGE", "STAGED_INIT",
           "TREE_LIMIT", "WORK", "WORK_MARKER", "LeaseError", "PhasePlan", "check_out", "check_tree",
           "choose_phase", "covered_sigmas", "device", "folder_bytes", "fresh_work", "import_results",
           "kodak_psnr_cli", "kodak_psnr_inprocess", "main", "parse_plan", "refresh_gan_card", "resolve_init",
           "sigma_tag", "stage", "travelling_bytes"]
