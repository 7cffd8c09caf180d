"""The batch command line for already-noisy images: outputs, the sigma used, reruns, refusals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import denoisers
from denoisers import denoise
from denoisers.io import read_image, to_float, to_uint8
from denoisers.metrics import add_noise


@pytest.fixture
def noisy_dir(tmp_path, kodak_crops):
    folder = tmp_path / "noisy"
    folder.mkdir()
    for i, crop in enumerate(kodak_crops[:2]):
        noisy = to_uint8(add_noise(to_float(crop), 30, i))
        Image.fromarray(noisy).save(folder / f"shot{i}.png")
    (folder / "readme.txt").write_text("not an image")
    return folder


def test_outputs_are_the_methods_results_at_the_estimated_sigma(noisy_dir, tmp_path, weights_mirror):
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir), "--methods", "ffdnet", "--out", str(out)]) == 0
    table = pd.read_csv(out / "denoised.csv")
    assert list(table.columns) == denoise.COLUMNS and sorted(table["image"]) == ["shot0.png", "shot1.png"]
    row = table[table.image == "shot0.png"].iloc[0]
    assert row.sigma_from == "estimated" and row.sigma == pytest.approx(30, abs=2)
    noisy = read_image(noisy_dir / "shot0.png")
    want = to_uint8(denoisers.get("ffdnet").denoise(to_float(noisy), row.sigma))
    assert np.array_equal(read_image(out / "ffdnet" / "shot0.png"), want)
    assert row.weights == denoisers.get("ffdnet").weights_id(row.sigma)


def test_a_rerun_replaces_only_its_own_rows(noisy_dir, tmp_path, weights_mirror):
    out = tmp_path / "out"
    shot = str(noisy_dir / "shot1.png")
    assert denoise.main([shot, "--methods", "ffdnet", "--sigma", "20", "--out", str(out)]) == 0
    assert denoise.main([shot, "--methods", "dncnn", "--out", str(out)]) == 0
    assert denoise.main([shot, "--methods", "ffdnet", "--sigma", "35", "--out", str(out)]) == 0
    table = pd.read_csv(out / "denoised.csv").set_index("method")
    assert sorted(table.index) == ["dncnn", "ffdnet"]
    assert table.loc["ffdnet", "sigma"] == 35 and table.loc["ffdnet", "sigma_from"] == "given"
    assert table.loc["dncnn", "sigma_from"] == "estimated"
    assert not list(out.rglob("*.partial"))


def test_a_second_run_into_the_same_folder_is_refused_and_loses_nothing(noisy_dir, tmp_path, weights_mirror):
    from denoisers.files import only_writer

    out = tmp_path / "out"
    shot = str(noisy_dir / "shot1.png")
    assert denoise.main([shot, "--methods", "ffdnet", "--sigma", "20", "--out", str(out)]) == 0
    before = (out / "denoised.csv").read_bytes()
    with only_writer(out, "denoise run"):  # another run is writing there
        with pytest.raises(SystemExit, match="another denoise run is writing there"):
            denoise.main([shot, "--methods", "dncnn", "--sigma", "20", "--out", str(out)])
    assert (out / "denoised.csv").read_bytes() == before and not (out / "dncnn" / "shot1.png").exists()


def test_a_rerun_keeps_the_users_columns_and_one_row_per_output_file(noisy_dir, tmp_path, weights_mirror):
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir / "shot0.png"), "--methods", "ffdnet", "--sigma", "25", "--out", str(out)]) == 0
    table = pd.read_csv(out / "denoised.csv")
    table["my_comment"] = ["looks fine"]
    table.to_csv(out / "denoised.csv", index=False)
    # Another file of the same name without suffix: its output replaces ffdnet/shot0.png, so its row replaces the old one.
    other = tmp_path / "other"
    other.mkdir()
    Image.open(noisy_dir / "shot1.png").save(other / "shot0.bmp")
    assert denoise.main([str(other / "shot0.bmp"), "--methods", "ffdnet", "--sigma", "40", "--out", str(out)]) == 0
    assert denoise.main([str(noisy_dir / "shot1.png"), "--methods", "ffdnet", "--sigma", "25", "--out", str(out)]) == 0
    table = pd.read_csv(out / "denoised.csv").set_index("image")
    assert sorted(table.index) == ["shot0.bmp", "shot1.png"] and table.loc["shot0.bmp", "sigma"] == 40
    assert list(table.reset_index().columns) == denoise.COLUMNS + ["my_comment"]
    assert table["my_comment"].isna().all()  # the commented row was replaced; the column stays


def test_an_image_too_small_for_every_method_is_skipped_once(noisy_dir, tmp_path, weights_mirror, capsys):
    Image.new("RGB", (12, 40)).save(noisy_dir / "tiny.png")
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir), "--methods", "dncnn,ffdnet", "--sigma", "25", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("tiny.png") == 1 and "12x40 is under the 16x16" in err
    assert sorted(p.name for p in (out / "ffdnet").iterdir()) == ["shot0.png", "shot1.png"]


def test_an_unreadable_file_is_skipped_and_reported(noisy_dir, tmp_path, weights_mirror, capsys):
    (noisy_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir), "--methods", "dncnn", "--out", str(out)]) == 1
    assert "broken.png: skipped" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "dncnn").iterdir()) == ["shot0.png", "shot1.png"]


@pytest.mark.parametrize("extra, message", [
    (["--methods", "nope"], "unknown methods: nope .*--plugin"),
    (["--methods", " , "], "name at least one method"),
    (["--methods", "ffdnet", "--sigma", "0"], "--sigma: sigma must be in"),
    (["--methods", "ffdnet", "--sigma", "loud"], "or 'auto'"),
    (["--methods", "dncnn,ffdnet"], "ffdnet cannot run: no weights here"),
])
def test_bad_requests_are_refused_before_any_work(noisy_dir, tmp_path, monkeypatch, extra, message):
    monkeypatch.setattr(type(denoisers.get("ffdnet")), "readiness",
                        lambda self, sigma=None: denoisers.Readiness(False, "no weights here"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=message):
        denoise.main([str(noisy_dir), "--out", str(out), *extra])
    assert not out.exists()


def test_an_output_never_replaces_an_input(noisy_dir, tmp_path):
    inside = tmp_path / "dncnn"  # a folder named like a method, under the output folder
    inside.mkdir()
    (inside / "shot0.png").write_bytes((noisy_dir / "shot0.png").read_bytes())
    before = (inside / "shot0.png").read_bytes()
    with pytest.raises(SystemExit, match="would overwrite the input"):
        denoise.main([str(inside), "--methods", "dncnn", "--out", str(tmp_path)])
    assert (inside / "shot0.png").read_bytes() == before


@pytest.mark.parametrize("problem", ["out is a file", "a method's folder is a file", "foreign denoised.csv",
                                     "empty denoised.csv", "binary denoised.csv"])
def test_a_bad_output_folder_is_refused_before_any_work(problem, noisy_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(denoise, "read_image", lambda *a, **k: pytest.fail("no image may be read"))
    out = tmp_path / "out"
    out.mkdir()
    thing = {"out is a file": out, "a method's folder is a file": out / "dncnn"}.get(problem, out / "denoised.csv")
    if thing == out:
        out.rmdir()
    content = {"foreign denoised.csv": b"a,b\n1,2\n", "empty denoised.csv": b"",
               "binary denoised.csv": bytes(range(256))}.get(problem, b"mine")
    thing.write_bytes(content)
    with pytest.raises(SystemExit, match="--out: .*" + thing.name):
        denoise.main([str(noisy_dir), "--methods", "dncnn", "--out", str(out)])
    assert thing.read_bytes() == content


def test_a_sigma_outside_the_training_range_is_said_and_recorded(noisy_dir, tmp_path, weights_mirror, capsys):
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir / "shot0.png"), "--methods", "idresnet", "--sigma", "80",
                         "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "idresnet at sigma 80: not trained for sigma 80" in err
    assert "not trained for sigma 80" in pd.read_csv(out / "denoised.csv").loc[0, "note"]


def test_a_grey_noisy_image_is_said_to_be_out_of_the_networks_reach(tmp_path, kodak_crops, weights_mirror,
                                                                    capsys):
    grey = np.repeat(to_uint8(add_noise(to_float(kodak_crops[0][..., 1:2]), 30, 0)), 3, axis=2)
    Image.fromarray(grey[..., 0]).save(tmp_path / "grey.png")  # a one-channel file, as a grey photo is
    out = tmp_path / "out"
    assert denoise.main([str(tmp_path / "grey.png"), "--methods", "ffdnet", "--sigma", "30",
                         "--out", str(out)]) == 0
    assert "grey.png ffdnet: a grey image: its noise is the same in all three channels" in capsys.readouterr().err
    assert "same in all three channels" in pd.read_csv(out / "denoised.csv").loc[0, "note"]
    assert denoisers.get("ffdnet").input_note(to_float(read_image(tmp_path / "grey.png"))) != ""
    assert denoisers.get("ffdnet").input_note(to_float(kodak_crops[0])) == ""  # colour: nothing to say
    assert denoisers.get("cbm3d").input_note(to_float(grey)) == ""  # it denoises grey as grey


def test_two_inputs_with_one_output_name_are_refused(noisy_dir, tmp_path):
    (noisy_dir / "shot0.tif").write_bytes(b"")
    with pytest.raises(SystemExit, match="under one output name"):
        denoise.main([str(noisy_dir), "--methods", "dncnn", "--out", str(tmp_path / "out")])


def test_each_model_loads_once_for_the_whole_batch(noisy_dir, tmp_path, weights_mirror, monkeypatch):
    ffdnet = type(denoisers.get("ffdnet"))
    builds = []
    original = ffdnet._build
    monkeypatch.setattr(ffdnet, "_build", lambda self, key: builds.append(key) or original(self, key))
    assert denoise.main([str(noisy_dir), "--methods", "ffdnet", "--sigma", "30", "--out", str(tmp_path / "o")]) == 0
    assert len(builds) == 1  # two images, one load (and one checksum) of the weights


def test_weights_that_cannot_be_had_are_tried_once_for_the_batch(noisy_dir, tmp_path, weights_mirror, monkeypatch,
                                                                capsys):
    """Each later image would wait on the same download again (up to a minute per source)."""
    from denoisers.weights import WeightsError

    ffdnet = type(denoisers.get("ffdnet"))
    tries = []

    def unreachable(self, key):
        tries.append(key)
        raise WeightsError("ffdnet_color.pth: not in the cache, no mirror, no network")

    monkeypatch.setattr(ffdnet, "_build", unreachable)
    out = tmp_path / "o"
    assert denoise.main([str(noisy_dir), "--methods", "ffdnet", "--sigma", "30", "--out", str(out)]) == 1
    assert len(tries) == 1
    err = capsys.readouterr().err
    assert "shot0.png ffdnet: failed" in err and "shot1.png ffdnet: skipped, its weights could not be had" in err


class _Flaky:
    """Wraps a denoiser; raises ``error`` on the call numbered ``fail_at`` (0-based)."""

    def __init__(self, inner, fail_at: int, error: BaseException):
        self.inner, self.fail_at, self.error, self.calls = inner, fail_at, error, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def denoise(self, noisy, sigma):
        self.calls += 1
        if self.calls - 1 == self.fail_at:
            raise self.error
        return self.inner.denoise(noisy, sigma)


def test_a_method_failing_on_one_image_is_reported_and_the_rest_kept(noisy_dir, tmp_path, weights_mirror,
                                                                     monkeypatch, capsys):
    monkeypatch.setattr(denoise, "get", lambda name: _Flaky(denoisers.get(name), 0, MemoryError("too large")))
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir), "--methods", "dncnn", "--sigma", "30", "--out", str(out)]) == 1
    assert "shot0.png dncnn: failed, MemoryError: too large" in capsys.readouterr().err
    assert [p.name for p in (out / "dncnn").iterdir()] == ["shot1.png"]
    assert list(pd.read_csv(out / "denoised.csv")["image"]) == ["shot1.png"]


def test_an_interrupted_batch_keeps_the_rows_of_the_outputs_written(noisy_dir, tmp_path, weights_mirror,
                                                                    monkeypatch, capsys):
    monkeypatch.setattr(denoise, "get", lambda name: _Flaky(denoisers.get(name), 1, KeyboardInterrupt()))
    out = tmp_path / "out"
    assert denoise.main([str(noisy_dir), "--methods", "dncnn", "--sigma", "30", "--out", str(out)]) == 130
    assert "interrupted: 1 output written" in capsys.readouterr().err
    assert [p.name for p in (out / "dncnn").iterdir()] == ["shot0.png"]
    assert list(pd.read_csv(out / "denoised.csv")["image"]) == ["shot0.png"]
    assert not list(out.rglob("*.partial"))


def test_a_bad_precision_setting_is_refused_before_any_work(noisy_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DENOISERS_PRECISION", "fp16")
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"\$DENOISERS_PRECISION must be auto, fp32 or bf16, got 'fp16'"):
        denoise.main([str(noisy_dir), "--out", str(out)])  # the default methods are built first
    assert not out.exists()
    from app.__main__ import main as app_main

    with pytest.raises(SystemExit) as err:
        app_main(["--port", "0"])
    assert err.value.code == 2
