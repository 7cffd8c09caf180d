"""Your own methods beside ours: a plugin module registers denoisers, and the CLIs and the app
take it with ``--plugin``. Runs that load one go in a subprocess, so that this process's
registry keeps exactly the built-in methods."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from app_support import needs_kodak
from denoisers import registry
from denoisers.base import Denoiser
from denoisers.io import read_image, to_float, to_uint8
from denoisers.metrics import add_noise, psnr

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
import numpy as np
from scipy import ndimage

from denoisers.base import Denoiser
from denoisers.registry import register


@register
class Blur(Denoiser):
    name, label = "blur", "Gaussian blur"

    def weights_id(self, sigma):
        return ""  # nothing to identify: no weights

    def _denoise(self, noisy, sigma):
        return ndimage.gaussian_filter(noisy, sigma=(sigma / 25, sigma / 25, 0))


@register
class SlowMedian(Denoiser):
    name, label = "median", "Median 3x3"
    separate_process = True  # run in worker processes, as CBM3D is

    def weights_id(self, sigma):
        return "median-v1"

    def _denoise(self, noisy, sigma):
        return ndimage.median_filter(np.clip(noisy, 0, 1), size=(3, 3, 1))
'''


def run_python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def plugin_file(tmp_path) -> Path:
    path = tmp_path / "my_methods.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture
def clean_dir(tmp_path, kodak_crops) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    for i, crop in enumerate(kodak_crops[:2]):
        Image.fromarray(crop[:48, :64]).save(folder / f"c{i}.png")
    return folder


def test_evaluate_scores_a_plugin_method_and_resumes_it(plugin_file, clean_dir, tmp_path):
    out = tmp_path / "out"
    args = ["-m", "denoisers.evaluate", "--plugin", plugin_file.name, "--data", str(clean_dir), "--sigma", "25",
            "--methods", "blur,median", "--out", str(out)]
    first = run_python(*args, cwd=plugin_file.parent)  # a file named relative to where the command runs
    assert first.returncode == 0, first.stderr
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert sorted(set(results["method"])) == ["blur", "median"] and len(results) == 4
    clean = read_image(clean_dir / "c0.png")
    noisy = add_noise(to_float(clean), 25, 0)
    blurred = to_uint8(np.clip(ndimage.gaussian_filter(noisy, sigma=(1, 1, 0)), 0, 1))
    row = results[(results.method == "blur") & (results.image == "c0.png")].iloc[0]
    assert row.psnr == pytest.approx(psnr(clean, blurred), abs=1e-3)
    assert "| 25 | blur | 2 |" in (out / "table.md").read_text()
    again = run_python(*args, cwd=plugin_file.parent)
    assert again.returncode == 0, again.stderr
    assert "0 runs to do" in again.stderr and "dropping" not in again.stderr  # "" weights resume too


def test_denoise_and_the_app_engine_run_a_plugin_method(plugin_file, clean_dir, tmp_path):
    out = tmp_path / "den"
    done = run_python("-m", "denoisers.denoise", str(clean_dir / "c0.png"), "--plugin", str(plugin_file),
                      "--methods", "median", "--sigma", "25", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "median" / "c0.png").is_file()
    script = f'''
import json, sys
from denoisers.registry import load_plugin
load_plugin({str(plugin_file)!r})
from app.cache import ResultCache
from app.engine import Engine
from app import session
engine = Engine(ResultCache({str(tmp_path / "cache")!r}))
engine.start()
try:
    src = session.source_from_upload({str(clean_dir / "c1.png")!r}, 10**6)
    comp, noisy = session.new_comparison(engine, src, 25, 0, False, ["blur", "median", "dncnn"])
    for _ in session.run(engine, comp, noisy):
        pass
    print(json.dumps({{"names": engine.names(), "psnr": {{m: r.psnr for m, r in comp.results.items()}}}}))
finally:
    engine.close()
'''
    ran = run_python("-c", script, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    record = json.loads(ran.stdout.strip().splitlines()[-1])
    assert record["names"][-2:] == ["blur", "median"]  # after the built-in methods
    assert all(record["psnr"][m] > 25 for m in ("blur", "median"))  # denoised: the input is about 20 dB


@needs_kodak
def test_warm_fills_the_cache_for_a_plugin_method_and_refuses_an_unknown_one(plugin_file, tmp_path):
    cache = tmp_path / "cache"
    args = ["-m", "app.warm", "--plugin", str(plugin_file), "--methods", "blur", "--sigmas", "25",
            "--images", "1", "--cache-dir", str(cache)]
    first = run_python(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "kodim01 sigma 25: blur " in first.stdout and "1 computed, 0 already cached" in first.stdout
    assert list(cache.rglob("*.npy"))
    again = run_python(*args, cwd=tmp_path)
    assert again.returncode == 0 and "0 computed, 1 already cached" in again.stdout
    unknown = run_python("-m", "app.warm", "--methods", "blur,nope", "--cache-dir", str(cache), cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown methods: blur, nope" in unknown.stderr
    assert "--plugin" in unknown.stderr
    loud = run_python("-m", "app.warm", "--sigmas", "200", "--cache-dir", str(cache), cwd=tmp_path)
    assert loud.returncode == 2 and "sigma must be between 5 and 75" in loud.stderr  # the app's range


@pytest.mark.parametrize("body, message", [
    (None, "no such file"),
    ("raise RuntimeError('broken on purpose')", "could not be imported: RuntimeError: broken on purpose"),
    ("x = 1", "registered no denoiser"),
    ("from denoisers.base import Denoiser\nfrom denoisers.registry import register\n"
     "@register\nclass A(Denoiser):\n    name, label = 'mine_a', 'A'\n    def _denoise(self, x, s):\n        return x\n"
     "@register\nclass B(Denoiser):\n    name, label = 'dncnn', 'B'\n    def _denoise(self, x, s):\n        return x\n",
     "could not be imported: ValueError: denoiser 'dncnn' registered twice"),
    ("from denoisers.base import Denoiser\nfrom denoisers.registry import register\n"
     "@register\nclass A(Denoiser):\n    name, label = '../escaped', 'A'\n    def _denoise(self, x, s):\n        return x\n",
     "method name '../escaped' must be lower-case letters"),
    ("from denoisers.base import Denoiser\nfrom denoisers.registry import register\n"
     "@register\nclass A(Denoiser):\n    name, label = 'mine', 'DnCNN'\n    def _denoise(self, x, s):\n        return x\n",
     "method 'mine' has the label 'DnCNN' of 'dncnn'"),
    ("from denoisers.base import Denoiser\nfrom denoisers.registry import register\n"
     "@register\nclass A(Denoiser):\n    name, label = 'mine', 'Mine'\n    def __init__(self, path):\n        pass\n"
     "    def _denoise(self, x, s):\n        return x\n",
     "method 'mine' failed to build or to say whether it is ready: TypeError"),
    ("from denoisers.base import Denoiser\nfrom denoisers.registry import register\n"
     "@register\nclass A(Denoiser):\n    name, label = 'mine', 'Mine'\n    def readiness(self, sigma=None):\n"
     "        raise KeyError('oops')\n    def _denoise(self, x, s):\n        return x\n",
     "method 'mine' failed to build or to say whether it is ready: KeyError: 'oops'"),
    ("import sys\nsys.exit(4)\n", "could not be imported: SystemExit: 4"),
])
def test_a_bad_plugin_is_refused_with_its_reason(tmp_path, body, message):
    path = tmp_path / "plugin.py"
    if body is not None:
        path.write_text(body)
    before = registry.names()
    with pytest.raises(ValueError, match=message):
        registry.load_plugin(str(path))
    assert registry.names() == before and str(path.resolve()) not in registry.plugins()
    from denoisers import evaluate

    with pytest.raises(SystemExit, match=message):
        evaluate.main(["--plugin", str(path), "--data", str(tmp_path), "--sigma", "25", "--out", str(tmp_path / "o")])


class _Plugin(Denoiser):  # not registered: the contract's checks apply to any subclass
    name, label = "mine", "Mine"

    def __init__(self, run=None):
        self.run = run

    def _denoise(self, noisy, sigma):
        return self.run(noisy)


def test_a_method_that_writes_into_its_input_changes_nothing_for_the_next(tmp_path):
    noisy = add_noise(to_float(np.full((24, 24, 3), 100, np.uint8)), 25, 0)
    before = noisy.copy()

    def scribble(x):
        x[...] = 0.5
        return x

    assert (_Plugin(scribble).denoise(noisy, 25) == 0.5).all()
    assert np.array_equal(noisy, before)  # what the next method is given


@pytest.mark.parametrize("run, message", [
    (lambda x: sys.exit(3), r"Mine called sys.exit\(3\) instead of returning"),
    (lambda x: np.round(x * 255).clip(0, 255).astype(np.uint8), "Mine returned uint8 values, not an HxWx3 float"),
    (lambda x: x * 255, r"Mine returned values from .* to .*, not an HxWx3 float array .* \(on the 0-255 scale\?\)"),
    (lambda x: None, "Mine returned NoneType, not an HxWx3 float array"),
    (lambda x: x[..., :2], r"Mine returned shape \(24, 24, 2\)"),
])
def test_a_method_that_breaks_the_contract_is_refused_with_a_reason(run, message):
    noisy = add_noise(to_float(np.full((24, 24, 3), 100, np.uint8)), 25, 0)
    with pytest.raises(RuntimeError, match=message):
        _Plugin(run).denoise(noisy, 25)
    assert _Plugin(lambda x: x).denoise(add_noise(to_float(np.zeros((24, 24, 3), np.uint8)), 100, 0), 100).max() == 1


def test_a_method_without_weights_is_identified_by_its_code():
    import hashlib

    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    assert _Plugin().weights_id(25) == f"code sha256:{code}"  # editing the file makes it another model


@pytest.mark.parametrize("answer, error", [(KeyError("no id"), "KeyError: 'no id'"),
                                           (None, "TypeError: Unnamed: weights_id returned NoneType, not a string")])
def test_the_app_runs_the_other_methods_when_one_fails_to_say_what_it_is(tmp_path, answer, error):
    from app.cache import ResultCache
    from app.engine import Engine

    class Unnamed(Denoiser):
        name, label = "unnamed", "Unnamed"

        def weights_id(self, sigma):
            if isinstance(answer, Exception):
                raise answer
            return answer

        def _denoise(self, noisy, sigma):
            return noisy

    class Identity(Unnamed):
        name, label = "identity", "Identity"

        def weights_id(self, sigma):
            return "v1"

    for cls in (Unnamed, Identity):
        registry.register(cls)
    try:
        engine = Engine(ResultCache(tmp_path / "cache"), methods=["unnamed", "identity"])  # keys are built
        engine.start()
        try:
            clean = np.full((32, 32, 3), 90, np.uint8)
            noisy = add_noise(to_float(clean), 25, 0)
            results = {r.name: r for r in engine.run(clean, noisy, "img", 25.0, 0, ["unnamed", "identity"]) if r}
        finally:
            engine.close()
    finally:
        for cls in (Unnamed, Identity):
            del registry._REGISTRY[cls.name]
    said = results["unnamed"].error
    assert said == f"could not say whether it is ready or which model it is: {error}" and results["unnamed"].output is None
    assert results["identity"].error is None and results["identity"].psnr == pytest.approx(psnr(clean, to_uint8(noisy)))


UNSURE = '''
from denoisers.base import Denoiser
from denoisers.registry import register


@register
class Unsure(Denoiser):
    name, label = "unsure", "Unsure"

    def weights_id(self, sigma):
        if sigma > 30:
            raise KeyError(f"no model for {sigma:g}")
        return "unsure-v1"

    def _denoise(self, noisy, sigma):
        return noisy
'''


def test_the_clis_say_which_method_could_not_name_its_model(clean_dir, plugin_file, tmp_path):
    (tmp_path / "unsure.py").write_text(UNSURE)
    out = tmp_path / "out"
    refused = run_python("-m", "denoisers.evaluate", "--plugin", "unsure.py", "--data", str(clean_dir),
                         "--sigma", "25", "--sigma", "35", "--methods", "unsure", "--out", str(out), cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert ("unsure at sigma 35 could not say whether it is ready or which model it is: KeyError: 'no model for 35'"
            in refused.stderr)
    assert not (out / "results.csv").exists()  # stopped before any row
    den = tmp_path / "den"
    ran = run_python("-m", "denoisers.denoise", str(clean_dir), "--plugin", "unsure.py", "--plugin", plugin_file.name,
                     "--methods", "unsure,blur", "--sigma", "40", "--out", str(den), cwd=tmp_path)
    assert "Traceback" not in ran.stderr
    assert "c0.png unsure: skipped, it could not say whether it is ready or which model it is" in ran.stderr
    assert (den / "blur" / "c0.png").is_file() and not list((den / "unsure").glob("*.png"))
