"""Relative mirror and cache folders mean the folder they were given in, in every process: the
README's own set-up (``DENOISERS_WEIGHTS_MIRROR=../shared/weights``) works from any command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import os, sys, subprocess; from denoisers import weights, datasets; "
         "from denoisers.fetch import cache_root; os.chdir(sys.argv[1]); "
         "print(weights.mirrors()[0]); print(datasets.mirrors()[0]); print(cache_root()); "
         "subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"DENOISERS_CACHE\"])'], check=True)")


def _relative_env(**values: str) -> dict[str, str]:
    env = dict(os.environ, **values)
    env.pop("PYTHONWARNINGS", None)
    return env


def test_the_library_resolves_relative_folders_where_the_process_started(tmp_path):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir(), elsewhere.mkdir()
    env = _relative_env(DENOISERS_WEIGHTS_MIRROR="../shared/weights", DENOISERS_DATA_MIRROR="data:/abs/data",
                        DENOISERS_CACHE=".cache", PYTHONPATH=str(ROOT))
    # The process imports the library, then changes folder (as a test or a server may do) and
    # starts a child: both still see the folders as given from ``start``.
    out = subprocess.run([sys.executable, "-c", PROBE, str(elsewhere)], cwd=start, env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(start / "../shared/weights"), str(start / "data"), str(start / ".cache"),
                   str(start / ".cache")]


def test_the_dev_script_resolves_them_where_it_was_typed(tmp_path):
    env = _relative_env(DENOISERS_WEIGHTS_MIRROR="w1:/abs/w2", DENOISERS_DATA_MIRROR="../d", DENOISERS_CACHE="c")
    out = subprocess.run([str(ROOT / "dev"), "py", "-c", "import os; print(os.environ['DENOISERS_WEIGHTS_MIRROR']); "
                          "print(os.environ['DENOISERS_DATA_MIRROR']); print(os.environ['DENOISERS_CACHE'])"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"{tmp_path}/w1:/abs/w2", f"{tmp_path}/../d", f"{tmp_path}/c"]
