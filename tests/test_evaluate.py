"""The evaluation CLI: protocol, outputs, resume, CBM3D in a worker process, bad arguments."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import denoisers
from denoisers.resume import resume
from denoisers import datasets, evaluate, report
from denoisers.io import pixels_sha256, read_image, to_float, to_uint8
from denoisers.metrics import add_noise, high_frequency_energy, psnr


@pytest.fixture
def crops_dir(tmp_path, kodak_crops):
    folder = tmp_path / "data"
    folder.mkdir()
    for i, crop in enumerate(kodak_crops[:2]):
        Image.fromarray(crop[:48, :64]).save(folder / f"img{2 - i}.png")  # name order != write order
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_cli_writes_results_table_and_chart_and_resumes(crops_dir, tmp_path, weights_mirror):
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--sigma", "50", "--methods", "ffdnet,cbm3d",
            "--out", str(out), "--name", "kodak24"]
    assert evaluate.main(args) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == evaluate.report.FILE_COLUMNS
    assert len(results) == 2 * 2 * 2
    assert sorted(results["image"].unique()) == ["img1.png", "img2.png"]
    # Every row follows the protocol: recompute one directly.
    row = results[(results.method == "ffdnet") & (results.sigma == 50) & (results.image == "img1.png")].iloc[0]
    clean = read_image(crops_dir / "img1.png")
    direct = psnr(clean, to_uint8(denoisers.get("ffdnet").denoise(add_noise(to_float(clean), 50, 0), 50)))
    assert row.psnr == pytest.approx(direct, abs=1e-3)
    assert row.weights == denoisers.get("ffdnet").weights_id(50)
    assert row.hf_clean == pytest.approx(high_frequency_energy(clean), abs=1e-3)
    assert 0 < row.hf < row.hf_clean  # the denoised output is smoother than the clean image
    assert results[results.method == "cbm3d"]["weights"].str.startswith("bm3d==").all()
    table = (out / "table.md").read_text()
    assert "| 25 | ffdnet | 2 |" in table and "paper Table 1" in table and "31.81" in table  # CBM3D's paper value
    assert "| detail |" in table
    assert "| 25 | cbm3d | ffdnet | 2 |" in table or "| 25 | ffdnet | cbm3d | 2 |" in table  # paired section
    assert "plotly" in (out / "chart.html").read_text()
    # Resume: a second run computes nothing and keeps the rows.
    before = (out / "results.csv").read_text()
    every = evaluate.plan(evaluate.list_images(crops_dir), ["ffdnet", "cbm3d"], [25.0, 50.0], 0)
    assert len(every) == 8
    existing = evaluate.report.read_results(out / "results.csv")
    digests = evaluate.check_images(evaluate.list_images(crops_dir))
    kept = resume(existing, every, digests)
    assert kept.pending(every) == [] and not kept.changed and len(kept.rows) == 8
    assert evaluate.main(args) == 0
    assert (out / "results.csv").read_text() == before
    # A new seed is new work, and its table holds that seed alone (means never mix seeds).
    assert evaluate.main(args[:-2] + ["--seed", "1", "--limit", "1", "--methods", "ffdnet"]) == 0
    assert len(pd.read_csv(out / "results.csv")) == 8 + 2
    table = (out / "table.md").read_text()
    assert "noise seed 1" in table and "| 25 | ffdnet | 1 |" in table and "cbm3d" not in table
    assert "## kodak24\n\nNoise seed 0." in evaluate.report.document([out.rename(tmp_path / "kodak24")],
                                                                   denoisers.names())


def test_rows_of_replaced_weights_are_recomputed(crops_dir, tmp_path, weights_mirror):
    """After new weights, old rows are dropped, never averaged with the new ones."""
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet,dncnn", "--out", str(out)]
    assert evaluate.main(args) == 0
    fresh = pd.read_csv(out / "results.csv", dtype={"weights": str})
    stale = fresh.copy()
    stale.loc[stale.method == "ffdnet", ["weights", "psnr"]] = ["0" * 64, 1.0]
    stale.to_csv(out / "results.csv", index=False)
    assert evaluate.main(args) == 0
    again = pd.read_csv(out / "results.csv", dtype={"weights": str})
    assert len(again) == len(fresh) and (again["weights"] != "0" * 64).all()
    assert again.sort_values(["method", "image"])["psnr"].tolist() == \
        fresh.sort_values(["method", "image"])["psnr"].tolist()


def test_rows_written_before_the_detail_measure_are_recomputed(crops_dir, tmp_path, weights_mirror):
    """A results file from before the hf/hf_clean columns: the rows this run plans are redone
    (not duplicated), the others are kept as they were, and appends stay column-aligned."""
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet,dncnn", "--out", str(out)]
    assert evaluate.main(args) == 0
    fresh = pd.read_csv(out / "results.csv", dtype={"weights": str})
    old = fresh.drop(columns=list(evaluate.report.MEASURES))
    old.loc[old.method == "dncnn", "psnr"] = 1.0  # marks the rows that must stay untouched
    old.to_csv(out / "results.csv", index=False)
    assert evaluate.main(args[:-3] + ["ffdnet", "--out", str(out)]) == 0
    again = pd.read_csv(out / "results.csv", dtype={"weights": str})
    assert list(again.columns) == evaluate.report.FILE_COLUMNS and len(again) == len(fresh)
    ffdnet, dncnn = again[again.method == "ffdnet"], again[again.method == "dncnn"]
    assert ffdnet[["hf", "hf_clean"]].notna().all().all()
    assert sorted(ffdnet["psnr"]) == sorted(fresh[fresh.method == "ffdnet"]["psnr"])
    assert (dncnn["psnr"] == 1.0).all() and dncnn["hf"].isna().all()
    means_table = (out / "table.md").read_text().split("Paired")[0]
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in means_table.splitlines()
             if line.startswith("| ")]
    detail = {cells[1]: cells[lines[0].index("detail")] for cells in lines[1:]}
    assert 0 < float(detail["ffdnet"]) < 1 and detail["dncnn"] == ""  # no mean over part of the set


def test_detail_is_the_ratio_of_mean_energies():
    rows = [["a.png", "m", 25.0, 0, 30.0, 0.9, 1.0, "w", 50.0, 100.0],
            ["b.png", "m", 25.0, 0, 30.0, 0.9, 1.0, "w", 30.0, 300.0],
            ["a.png", "n", 25.0, 0, 30.0, 0.9, 1.0, "w", 90.0, 100.0],
            ["b.png", "n", 25.0, 0, 30.0, 0.9, 1.0, "w", None, 300.0]]
    summary = evaluate.report.summary(pd.DataFrame(rows, columns=evaluate.report.COLUMNS)).set_index("method")
    assert summary.loc["m", "detail"] == pytest.approx(40.0 / 200.0)
    assert pd.isna(summary.loc["n", "detail"])  # a row without the measure: no mean over part of the set
    old = pd.DataFrame([r[:8] for r in rows], columns=evaluate.report.COLUMNS[:8])
    assert evaluate.report.summary(old)["detail"].isna().all()
    assert "detail" not in evaluate.report.table_markdown(old, ["m", "n"], "other")


def test_a_rerun_on_other_images_of_the_same_names_recomputes_them(crops_dir, tmp_path, weights_mirror, capsys):
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    assert evaluate.main(args) == 0
    first = pd.read_csv(out / "results.csv").set_index("image")["psnr"]
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.flipud(read_image(crops_dir / "img1.png"))).save(other / "img1.png")  # same name, other pixels
    capsys.readouterr()
    assert evaluate.main(["--data", str(other)] + args[2:]) == 0
    err = capsys.readouterr().err
    assert "dropping 1 rows computed on other images of the same names (img1.png)" in err
    assert "also holds 1 images outside this run (img2.png)" in err
    again = pd.read_csv(out / "results.csv").set_index("image")
    clean = read_image(other / "img1.png")
    direct = psnr(clean, to_uint8(denoisers.get("ffdnet").denoise(add_noise(to_float(clean), 25, 0), 25)))
    assert again.loc["img1.png", "psnr"] == pytest.approx(direct, abs=1e-3) != pytest.approx(first["img1.png"], abs=1e-3)
    assert again.loc["img2.png", "psnr"] == first["img2.png"]  # kept: not in this run
    assert again.loc["img1.png", "clean_sha256"] == pixels_sha256(clean)


def test_rows_from_before_the_image_digest_get_it_and_are_kept(crops_dir, tmp_path, weights_mirror):
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    assert evaluate.main(args) == 0
    fresh = pd.read_csv(out / "results.csv", dtype={"weights": str})
    old = fresh.drop(columns=["clean_sha256"])
    old.to_csv(out / "results.csv", index=False)
    assert evaluate.main(args + ["--limit", "1"]) == 0  # img1 only: img2's row stays without one
    again = pd.read_csv(out / "results.csv", dtype={"weights": str, "clean_sha256": str}).set_index("image")
    assert list(again.reset_index().columns) == evaluate.report.FILE_COLUMNS
    assert again.loc["img1.png", "clean_sha256"] == pixels_sha256(read_image(crops_dir / "img1.png"))
    assert pd.isna(again.loc["img2.png", "clean_sha256"])
    assert again["psnr"].tolist() == fresh.set_index("image").loc[again.index, "psnr"].tolist()  # nothing redone


def test_an_interrupted_run_keeps_its_rows_and_the_next_one_resumes(crops_dir, tmp_path, weights_mirror,
                                                                      monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    real, calls = evaluate.evaluate_one, []

    def second_is_interrupted(job):
        calls.append(job)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(evaluate, "evaluate_one", second_is_interrupted)
    assert evaluate.main(args) == 130
    assert "interrupted: the rows finished so far are in" in capsys.readouterr().err
    assert len(pd.read_csv(out / "results.csv")) == 1
    monkeypatch.setattr(evaluate, "evaluate_one", real)
    assert evaluate.main(args) == 0
    assert len(pd.read_csv(out / "results.csv")) == 2


def test_a_failing_run_is_reported_and_the_others_are_kept(crops_dir, tmp_path, weights_mirror, monkeypatch,
                                                         capsys):
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    real = evaluate.evaluate_one

    def fails_on_img1(job):
        if job.image.name == "img1.png":
            raise ValueError("ffdnet returned NaN")
        return real(job)

    monkeypatch.setattr(evaluate, "evaluate_one", fails_on_img1)
    assert evaluate.main(args) == 1
    err = capsys.readouterr().err
    assert "1 run failed and wrote no row" in err and "ffdnet on img1.png at sigma 25: ValueError: ffdnet returned NaN" in err
    assert list(pd.read_csv(out / "results.csv")["image"]) == ["img2.png"]
    assert "| 25 | ffdnet | 1 |" in (out / "table.md").read_text()  # the table says how many images it holds
    monkeypatch.setattr(evaluate, "evaluate_one", real)
    assert evaluate.main(args) == 0 and len(pd.read_csv(out / "results.csv")) == 2  # the retry fills the gap


def test_an_empty_results_file_left_by_a_killed_run_is_started_afresh(crops_dir, tmp_path, weights_mirror):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_bytes(b"")  # killed before the header reached the disk
    assert evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]) == 0
    assert len(pd.read_csv(out / "results.csv")) == 2


def test_a_method_outside_its_training_range_is_said_and_noted_under_the_table(crops_dir, tmp_path,
                                                                               weights_mirror, capsys):
    out = tmp_path / "out"
    assert evaluate.main(["--data", str(crops_dir), "--sigma", "50", "--sigma", "60", "--methods", "dncnn,ffdnet",
                          "--out", str(out), "--limit", "1"]) == 0
    err = capsys.readouterr().err
    assert "outside its training range: dncnn at sigma 60: not trained for sigma 60: trained for sigma 0-55" in err
    assert "ffdnet at sigma 60" not in err and "dncnn at sigma 50" not in err  # FFDNet: 0-75
    table = (out / "table.md").read_text()
    assert "_Outside its training range: dncnn at sigma 60: not trained for sigma 60: trained for sigma 0-55._" in table
    # A later run at another sigma rewrites the table: the note stays with the rows it is about.
    assert evaluate.main(["--data", str(crops_dir), "--sigma", "50", "--methods", "dncnn",
                          "--out", str(out), "--limit", "1"]) == 0
    assert "_Outside its training range: dncnn at sigma 60" in (out / "table.md").read_text()
    assert denoisers.get("dncnn").readiness().reason.startswith("trained for sigma 0-55")
    assert denoisers.get("ffdnet").readiness(80).outside_training == "not trained for sigma 80: trained for sigma 0-75"
    assert denoisers.get("ffdnet").readiness(75).outside_training == ""


def test_a_second_evaluation_into_the_same_folder_is_refused_and_changes_nothing(crops_dir, tmp_path, weights_mirror):
    from denoisers.files import only_writer

    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    assert evaluate.main(args) == 0
    before = (out / "results.csv").read_bytes()
    with only_writer(out, "evaluation"):  # another run holds the folder
        with pytest.raises(SystemExit, match="another evaluation is writing there"):
            evaluate.main([*args[:-3], "dncnn", "--out", str(out)])
    assert (out / "results.csv").read_bytes() == before
    assert evaluate.main(args) == 0  # released when that run ended
    assert not [p for p in out.iterdir() if p.name not in {"results.csv", "table.md", "chart.html"}]


@pytest.fixture
def fake_perceptual(monkeypatch):
    """Stand-ins for LPIPS and DISTS (their own tests check the real ones): the mean absolute
    difference, counted per call."""
    calls = {"lpips": 0, "dists": 0}

    def fake(name, scale):
        def measure(reference, image, **_):
            calls[name] += 1
            return scale * float(np.mean(np.abs(reference.astype(float) - image.astype(float)))) / 255
        return measure

    monkeypatch.setattr(denoisers.metrics, "lpips", fake("lpips", 1.0), raising=False)
    monkeypatch.setattr(denoisers.metrics, "dists", fake("dists", 2.0), raising=False)
    # scoring many outputs of one image: the fakes one by one (metrics.scorer has its own tests)
    monkeypatch.setattr(denoisers.metrics, "scorer", lambda name, ref: lambda image: getattr(denoisers.metrics, name)(ref, image))
    return calls


def test_lpips_is_recorded_by_default_and_dists_when_asked_from_saved_outputs(crops_dir, tmp_path, weights_mirror,
                                                                              fake_perceptual, capsys):
    out, saved = tmp_path / "out", tmp_path / "saved"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out), "--save-images", str(saved)]
    assert evaluate.main(args) == 0
    first = pd.read_csv(out / "results.csv")
    assert first["lpips"].notna().all() and first["dists"].isna().all()
    assert (first["lpips"] > 0).all() and "LPIPS ↓" in (out / "table.md").read_text()
    capsys.readouterr()
    assert evaluate.main([*args, "--metrics", "psnr,ssim,detail,lpips,dists"]) == 0
    err = capsys.readouterr().err
    assert "lpips/dists computed from the saved outputs of 2 rows" in err and "0 runs to do" in err
    second = pd.read_csv(out / "results.csv")
    assert second["dists"].notna().all()
    assert second[["psnr", "seconds", "lpips"]].equals(first[["psnr", "seconds", "lpips"]])  # not run again
    assert np.allclose(second["dists"], 2 * second["lpips"], atol=1e-4)


def test_an_interrupted_fill_from_saved_outputs_keeps_the_images_it_scored(crops_dir, tmp_path, weights_mirror,
                                                                           fake_perceptual, monkeypatch):
    """DISTS added to a finished run is scored image by image and written after each: stopped
    on the second image, results.csv holds the first image's DISTS and every row as it was; the
    same command then scores only the second image."""
    out, saved = tmp_path / "out", tmp_path / "saved"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out), "--save-images", str(saved)]
    assert evaluate.main(args) == 0
    first = pd.read_csv(out / "results.csv")
    fake = denoisers.metrics.scorer
    references = []

    def stopping(name, reference):
        references.append(reference)
        if len(references) == 2:
            raise KeyboardInterrupt
        return fake(name, reference)

    monkeypatch.setattr(denoisers.metrics, "scorer", stopping)
    assert evaluate.main([*args, "--metrics", "lpips,dists"]) == 130  # as after Ctrl-C
    kept = pd.read_csv(out / "results.csv")
    assert kept["dists"].notna().sum() == 1 and kept.drop(columns="dists").equals(first.drop(columns="dists"))
    scored = []
    monkeypatch.setattr(denoisers.metrics, "scorer", lambda name, ref: scored.append(name) or fake(name, ref))
    assert evaluate.main([*args, "--metrics", "lpips,dists"]) == 0
    assert scored == ["dists"]  # the second image's DISTS alone: its LPIPS and the first image were kept
    assert pd.read_csv(out / "results.csv")["dists"].notna().all()


def test_a_metric_added_without_saved_outputs_reruns_those_rows(crops_dir, tmp_path, weights_mirror,
                                                                fake_perceptual, capsys):
    out = tmp_path / "out"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    assert evaluate.main([*args, "--metrics", "psnr,ssim,detail"]) == 0
    assert pd.read_csv(out / "results.csv")["lpips"].isna().all() and fake_perceptual["lpips"] == 0
    capsys.readouterr()
    assert evaluate.main(args) == 0
    assert "recomputing 2 rows that lack" in capsys.readouterr().err
    assert pd.read_csv(out / "results.csv")["lpips"].notna().all()


@pytest.mark.parametrize("metrics", ["psnr,fid", "", "lpips;dists"])
def test_unknown_metrics_are_refused_naming_the_choices(crops_dir, tmp_path, metrics):
    with pytest.raises(SystemExit, match="choose from psnr, ssim, detail, lpips, dists"):
        evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(tmp_path / "o"),
                       "--metrics", metrics])


def test_data_given_as_dot_names_its_folder(crops_dir, tmp_path, weights_mirror, monkeypatch):
    monkeypatch.chdir(crops_dir)
    out = tmp_path / "out"
    assert evaluate.main(["--data", ".", "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]) == 0
    assert (out / "table.md").read_text().startswith("# data (noise seed 0)")


def test_bold_goes_to_the_best_of_the_methods_run_on_the_most_images():
    rows = [[f"{i}.png", "m", 25.0, 0, 30.0, 0.9, 1.0, "w", 1.0, 1.0] for i in range(6)]
    rows += [["9.png", "n", 25.0, 0, 33.6, 0.9, 1.0, "w", 1.0, 1.0]]  # one easy image only
    table = evaluate.report.table_markdown(pd.DataFrame(rows, columns=evaluate.report.COLUMNS), ["m", "n"], "mine")
    assert "| 25 | m | 6 | **30.00** |" in table and "| 25 | n | 1 | 33.60 |" in table
    assert "different numbers of images" in table
    even = evaluate.report.table_markdown(pd.DataFrame(rows[:6], columns=evaluate.report.COLUMNS), ["m"], "mine")
    assert "different numbers of images" not in even


def test_perceptual_columns_are_means_over_every_image_or_none():
    columns = evaluate.report.FILE_COLUMNS
    base = {"sigma": 25.0, "seed": 0, "psnr": 30.0, "ssim": 0.9, "seconds": 1.0, "weights": "w", "hf": 1.0,
            "hf_clean": 1.0, "clean_sha256": "x", "dists": None}
    rows = [{**base, "image": f"{i}.png", "method": "m", "lpips": 0.1 * (i + 1)} for i in range(3)]
    rows += [{**base, "image": f"{i}.png", "method": "n", "psnr": 29.0, "lpips": 0.2 if i else None} for i in range(3)]
    results = pd.DataFrame(rows, columns=columns)
    means = evaluate.report.summary(results).set_index("method")
    assert means.loc["m", "lpips"] == pytest.approx(0.2) and pd.isna(means.loc["n", "lpips"])
    assert pd.isna(means.loc["m", "dists"])
    table = evaluate.report.table_markdown(results, ["m", "n"], "mine")
    assert "LPIPS ↓" in table and "DISTS" not in table.splitlines()[0] and "lower is better" in table
    assert "| 25 | m | 3 | **30.00** | 0.9000 | 1.00 | 0.2000 |" in table
    assert "| 25 | n | 3 | 29.00 | 0.9000 | 1.00 |  |" in table
    plain = evaluate.report.table_markdown(results.drop(columns=["lpips", "dists"]), ["m", "n"], "mine")
    assert "LPIPS" not in plain  # older files: no column rather than an empty one


@pytest.mark.parametrize("bad, message", [
    (["--sigma", "0"], "sigma"),
    (["--sigma", "25", "--methods", "nlm"], "unknown methods"),
    (["--sigma", "25", "--limit", "0"], "limit"),
    (["--sigma", "25", "--methods", "idresnet"], "not trained"),
    (["--sigma", "25", "--methods", ""], "at least one"),
    (["--sigma", "25", "--seed", "-1"], "--seed"),
    (["--sigma", "25", "--seed", str(2**53)], "--seed must be from 0 to 9007199254740991"),
])
def test_cli_refuses_bad_arguments(bad, message, crops_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(denoisers.weights, "entries_for", lambda method: [])
    with pytest.raises(SystemExit, match=message):
        evaluate.main(["--data", str(crops_dir), "--out", str(tmp_path / "o")] + bad)


def test_a_test_set_can_be_named_instead_of_a_folder(tmp_path, data_mirror, monkeypatch):
    images = evaluate.list_images(Path("mcmaster"), limit=2)
    assert [p.name for p in images] == ["1.tif", "10.tif"] and all(p.exists() for p in images)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="nor a test set's name.*kodak24"):
        evaluate.list_images(Path("kodak25"))
    monkeypatch.setenv("DENOISERS_DATA_MIRROR", str(tmp_path / "empty"))
    monkeypatch.setenv("DENOISERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("denoisers.fetch.urllib.request.urlopen", _offline)
    with pytest.raises(SystemExit, match="--data mcmaster: .*1.tif"):
        evaluate.list_images(Path("mcmaster"), limit=1)


def _offline(*args, **kwargs):
    raise OSError("no network in tests")


@pytest.mark.parametrize("problem", ["corrupt image", "tiny image", "huge image"])
def test_a_bad_image_stops_the_run_before_any_row(problem, crops_dir, tmp_path):
    """A mean that silently lacks an image would not compare with the others: every image is
    checked first, and nothing is written."""
    if problem == "corrupt image":
        (crops_dir / "img0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        expected = "img0.png is not a readable image"
    elif problem == "huge image":  # a 300 KB file that would decode to 216 MB: refused from its header
        Image.new("L", (9000, 8000)).save(crops_dir / "img0.png")
        expected = "img0.png is 9000x8000 = 72.0 MP, over the limit of 64.0 MP"
    else:
        Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(crops_dir / "img0.png")
        expected = "img0.png is 12x10"
    out = tmp_path / "o"
    with pytest.raises(SystemExit, match=expected):
        evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "dncnn", "--out", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("problem", ["out is a file", "save-images is a file", "foreign results.csv",
                                     "binary results.csv", "results.csv is a folder", "a column of the user's",
                                     "a word for a number"])
def test_a_bad_output_is_refused_before_any_work_and_left_alone(problem, crops_dir, tmp_path, monkeypatch):
    def never(job):
        raise AssertionError("no row may be computed")

    monkeypatch.setattr(evaluate, "evaluate_one", never)
    out, thing = tmp_path / "o", tmp_path / "o" / "results.csv"
    out.mkdir()
    extra = []
    if problem == "out is a file":
        out.rmdir()
        thing = out
        out.write_text("mine")
    elif problem == "save-images is a file":
        thing = tmp_path / "saved"
        thing.write_text("mine")
        extra = ["--save-images", str(thing)]
    elif problem == "foreign results.csv":
        thing.write_text("a,b\n1,2\n")
    elif problem == "binary results.csv":
        thing.write_bytes(bytes(range(256)))
    elif problem in ("a column of the user's", "a word for a number"):
        header = ",".join(evaluate.report.FILE_COLUMNS)
        row = "img0.png,dncnn,25,0,30.1,0.9,1.0,w,50,100,abc"
        if problem == "a word for a number":
            thing.write_text(f"{header}\n{row}\n{row.replace(',25,', ',twenty,')}\n")
        else:
            thing.write_text(f"{header},my_note\n{row},checked\n")
    else:
        thing.mkdir()
    before = thing.read_bytes() if thing.is_file() else None
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "dncnn", "--out", str(out), *extra])
    assert str(thing) in str(err.value.code) or str(thing.name) in str(err.value.code)
    assert (thing.read_bytes() if thing.is_file() else None) == before
    said = {"a column of the user's": "does not write (my_note)", "a word for a number": "line 3: sigma is 'twenty'"}
    assert said.get(problem, "") in str(err.value.code)


def test_weights_that_cannot_be_fetched_stop_the_run_before_any_row(crops_dir, tmp_path, monkeypatch):
    from denoisers.weights import WeightsError

    def missing(self, key):
        raise WeightsError("dncnn_color_blind.pth: not in the cache, no mirror, no network")

    denoiser = type(evaluate.reference_instance("dncnn"))
    monkeypatch.setattr(denoiser, "_build", missing)
    monkeypatch.setattr(denoiser, "_models", {}, raising=False)
    evaluate.reference_instance.cache_clear()
    out = tmp_path / "o"
    try:
        with pytest.raises(SystemExit, match="dncnn at sigma 25: cannot load its weights: .*no network"):
            evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "dncnn", "--out", str(out)])
    finally:
        evaluate.reference_instance.cache_clear()
    assert not (out / "results.csv").exists()


def test_a_repeated_sigma_is_evaluated_once(crops_dir, tmp_path, weights_mirror):
    out = tmp_path / "o"
    evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--sigma", "25.0", "--methods", "ffdnet",
                   "--out", str(out), "--limit", "1"])
    assert len(pd.read_csv(out / "results.csv")) == 1


def test_cli_refuses_a_folder_without_images(tmp_path):
    with pytest.raises(SystemExit, match="no images"):
        evaluate.main(["--data", str(tmp_path), "--sigma", "25", "--out", str(tmp_path / "o")])


def test_report_document(crops_dir, tmp_path, weights_mirror):
    out = tmp_path / "kodak24"
    evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "dncnn", "--out", str(out)])
    text = evaluate.report.document([out], denoisers.names())
    assert "## kodak24" in text and "| 25 | dncnn | 2 | **" in text and "32.35" in text
    assert np.isfinite(pd.read_csv(out / "results.csv")["psnr"]).all()
    assert "plane" not in text
    (out / "plane.png").write_bytes(b"a chart")  # a perception-distortion plane, linked from where the page is
    (out / "plane.md").write_text("- sigma 25: what the plane shows\n")  # and what the script found, as it wrote it
    docs = tmp_path / "docs"
    docs.mkdir()
    assert evaluate.report.main([str(out), "--out", str(docs / "results.md")]) == 0
    page = (docs / "results.md").read_text()
    assert "(../kodak24/plane.png)" in page and "from `plane.csv`):\n\n- sigma 25: what the plane shows\n" in page


@pytest.mark.parametrize("dataset, paper_lines, published_column", [
    ("kodak24", True, True), ("kodak24-crop500", False, True), ("cbsd68", False, False)])
def test_published_numbers_only_beside_the_set_they_were_measured_on(dataset, paper_lines, published_column):
    results = pd.DataFrame([["a.png", "dncnn", 25.0, 0, 31.0, 0.9, 1.0, "sha", 80.0, 100.0]],
                           columns=evaluate.report.COLUMNS)
    table = evaluate.report.table_markdown(results, denoisers.names(), dataset)
    assert ("32.35" in table) == paper_lines  # the paper's Table 1 (full Kodak24 images)
    assert ("32.03" in table) == published_column  # DnCNN's own Kodak24 value
    # Where the published values stand beside our full-image means, the table says what they
    # were measured on; and that a mean over fewer images than theirs is not the full set's.
    assert ("centre crops" in table) == (dataset == "kodak24")
    assert ("fewer than the 24 images" in table) == published_column
    traces = [t.name for t in evaluate.report.psnr_figure(results, dataset, dataset).data]
    assert ("dncnn (paper)" in traces) == paper_lines and "dncnn (ours)" in traces


def test_paired_differences_against_the_best_mean():
    diffs = [-0.5, -0.2, 0.1, -0.4]  # "b" minus "a", image by image: a leads on 3 of 4 images
    rows = []
    for i, d in enumerate(diffs):
        rows += [[f"{i}.png", "a", 25.0, 0, 30.0 + i], [f"{i}.png", "b", 25.0, 0, 30.0 + i + d]]
    rows += [["9.png", "a", 25.0, 0, 40.0]]  # only one method has it: not a pair
    results = pd.DataFrame(rows, columns=["image", "method", "sigma", "seed", "psnr"])
    table = evaluate.report.paired(results, ["b", "a"])
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.method, row.reference, row.images, row.better) == ("b", "a", 4, 1)
    half = 3.182446 * np.std(diffs, ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert row["diff"] == pytest.approx(np.mean(diffs))
    assert (row.low, row.high) == pytest.approx((np.mean(diffs) - half, np.mean(diffs) + half), abs=1e-5)
    text = evaluate.report.paired_markdown(results, ["b", "a"])
    assert f"| 25 | b | a | 4 | {np.mean(diffs):+.2f} | {np.mean(diffs) - half:+.2f} to {np.mean(diffs) + half:+.2f} " \
           "| 1 of 4 |" in text
    assert evaluate.report.paired_markdown(results[results.method == "a"], ["a"]) == ""  # nothing to pair
    # A partial run on the easiest image has the higher mean of its own, yet trails on that image:
    # the reference is judged on the images both have.
    partial = pd.concat([results, pd.DataFrame([["9.png", "c", 25.0, 0, 39.5]], columns=results.columns)])
    table = evaluate.report.paired(partial, ["a", "b", "c"]).set_index("method")
    assert table.loc["c", "reference"] == "a" and table.loc["c", "images"] == 1
    assert table.loc["c", "diff"] == pytest.approx(-0.5) and pd.isna(table.loc["c", "low"])


def test_save_images_keeps_the_scored_outputs_and_fills_gaps(crops_dir, tmp_path, weights_mirror):
    out, saved = tmp_path / "out", tmp_path / "images"
    args = ["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]
    assert evaluate.main(args) == 0  # a first run without images
    assert evaluate.main(args + ["--save-images", str(saved)]) == 0  # the rows are redone, not doubled
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2
    folder = saved / "sigma25_seed0"
    assert sorted(p.name for p in (folder / "ffdnet").iterdir()) == ["img1.png", "img2.png"]
    clean = read_image(crops_dir / "img1.png")
    noisy = add_noise(to_float(clean), 25, 0)
    output = np.asarray(Image.open(folder / "ffdnet" / "img1.png"))
    # The PNG is the very image the row was scored on, and the noisy PNG is the input, clipped.
    assert psnr(clean, output) == pytest.approx(results[results.image == "img1.png"].psnr.iloc[0], abs=1e-3)
    assert np.array_equal(np.asarray(Image.open(folder / "noisy" / "img1.png")), to_uint8(noisy))
    (folder / "ffdnet" / "img2.png").unlink()
    before = (folder / "ffdnet" / "img1.png").stat().st_mtime_ns
    assert evaluate.main(args + ["--save-images", str(saved)]) == 0
    assert (folder / "ffdnet" / "img2.png").exists() and len(pd.read_csv(out / "results.csv")) == 2
    assert (folder / "ffdnet" / "img1.png").stat().st_mtime_ns == before  # only the gap was redone
    assert not list(saved.rglob("*.partial"))


def test_save_images_refuses_two_images_that_would_share_a_name(crops_dir, tmp_path):
    (crops_dir / "img1.jpg").write_bytes((crops_dir / "img1.png").read_bytes())
    with pytest.raises(SystemExit, match="img1.jpg, img1.png would be saved under one name"):
        evaluate.main(["--data", str(crops_dir), "--sigma", "25", "--methods", "ffdnet",
                       "--out", str(tmp_path / "out"), "--save-images", str(tmp_path / "images")])


def test_save_images_refuses_to_write_over_the_images_being_scored(crops_dir, tmp_path):
    # The clean images sit where one method's outputs would be saved: they would be replaced.
    data = tmp_path / "saved" / "sigma25_seed0" / "ffdnet"
    data.mkdir(parents=True)
    for p in crops_dir.glob("*.png"):
        (data / p.name).write_bytes(p.read_bytes())
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    with pytest.raises(SystemExit, match="would overwrite the clean images being scored"):
        evaluate.main(["--data", str(data), "--sigma", "25", "--methods", "ffdnet", "--out", str(tmp_path / "out"),
                       "--save-images", str(tmp_path / "saved")])
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before and not (tmp_path / "out").exists()


def test_the_evaluation_runs_networks_in_fp32_whatever_their_default(monkeypatch):
    monkeypatch.setenv("DENOISERS_PRECISION", "bf16")
    evaluate.reference_instance.cache_clear()
    try:
        for name in ("idresnet", "dncnn"):
            assert evaluate.reference_instance(name).precision == "fp32"
            assert denoisers.get(name).uses_bf16  # what the app and the denoise command would use here
        assert evaluate.reference_instance("cbm3d").name == "cbm3d"  # not a network: built as it is
    finally:
        evaluate.reference_instance.cache_clear()


def test_only_idresnet_defaults_to_bf16_on_the_cpu(monkeypatch):
    # As benchmarked (docs/benchmark_denoisers.txt): bf16 moves IDResNet's Kodak24 PSNR by at
    # most 0.02 dB; IDGAN (0.028), DnCNN and FFDNet lose more, so they stay in fp32.
    monkeypatch.delenv("DENOISERS_PRECISION", raising=False)
    assert denoisers.get("idresnet", device="cpu").uses_bf16
    for name in ("idgan", "dncnn", "ffdnet"):
        assert not denoisers.get(name, device="cpu").uses_bf16, name


def test_the_centre_crop_script_takes_options_as_options(tmp_path, monkeypatch):
    """``--help`` once became a folder of 24 crops; now it is help, and a file is refused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kodak_centre_crops", Path(__file__).resolve().parent.parent / "scripts" / "kodak_centre_crops.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        script.main(["--help"])
    assert info.value.code == 0 and not list(tmp_path.iterdir())
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(SystemExit) as info:
        script.main(["afile"])
    assert info.value.code == 2 and (tmp_path / "afile").read_text() == "mine"
    with pytest.raises(SystemExit) as info:
        script.main(["--size", "600", "crops"])
    assert info.value.code == 2 and not (tmp_path / "crops").exists()
    if datasets.available_locally("kodak24"):
        script.main(["--size", "64", "crops"])
        crops = sorted((tmp_path / "crops").glob("*.png"))
        first = read_image(datasets.files("kodak24")[0])
        assert len(crops) == 24 and read_image(crops[0]).shape == (64, 64, 3)
        top, left = (first.shape[0] - 64) // 2, (first.shape[1] - 64) // 2
        assert np.array_equal(read_image(crops[0]), first[top:top + 64, left:left + 64])


def test_the_chart_page_is_the_same_file_for_the_same_numbers_and_says_so_offline(tmp_path):
    results = pd.DataFrame({"image": ["a.png", "a.png"], "method": ["dncnn", "ffdnet"], "sigma": [25.0, 25.0],
                            "seed": [0, 0], "psnr": [30.0, 30.5], "ssim": [0.9, 0.91]})
    page = report.chart_html(results, "kodak24", "kodak24: mean PSNR")
    assert page == report.chart_html(results, "kodak24", "kodak24: mean PSNR")  # no random element ids
    assert page.index("cdn.plot.ly") < page.index("if (!window.Plotly)")  # the check runs after the load attempt
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    import plotly
    if not shutil.which(chromium):
        pytest.skip(f"no chromium at {chromium}")
    (tmp_path / "chart.html").write_text(page)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            offline = browser.new_page()
            offline.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                          else route.abort())  # the CDN cannot be reached
            offline.goto((tmp_path / "chart.html").as_uri())
            assert "could not be loaded" in offline.inner_text("body")
            assert offline.title() == "kodak24: mean PSNR"
            # Online (the CDN answered with the plotly.js that the plotly package ships): a chart, no message.
            bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
            online = browser.new_page()
            online.route("https://cdn.plot.ly/**", lambda route: route.fulfill(
                path=str(bundle), content_type="application/javascript", headers={"access-control-allow-origin": "*"}))
            online.goto((tmp_path / "chart.html").as_uri())
            online.wait_for_selector("#psnr-chart .main-svg")
            assert "could not be loaded" not in online.inner_text("body")
        finally:
            browser.close()


def test_counts_read_as_english():
    assert [report.count(n, "sigma") for n in (0, 1, 3)] == ["0 sigmas", "1 sigma", "3 sigmas"]


def test_ctrl_c_ends_the_jobs_running_in_worker_processes():
    import time
    from concurrent.futures.process import BrokenProcessPool

    from denoisers.parallel import process_pool, stop_workers

    pool = process_pool(1)
    try:
        running = pool.submit(time.sleep, 600)  # a CBM3D job of a large image, say
        while not running.running():
            time.sleep(0.05)
        time.sleep(0.5)  # in the worker now
        stop_workers(pool)
        assert isinstance(running.exception(timeout=60), BrokenProcessPool)  # ended, not waited for
    finally:
        pool.shutdown(cancel_futures=True)


def test_published_values_stand_only_beside_the_sets_they_were_measured_on():
    assert evaluate.report.references("kodak24")[1] and evaluate.report.references("kodak24-crop500")[1]
    assert evaluate.report.references("kodak24-c256") == ({}, {})
    assert evaluate.report.references("cbsd68") == ({}, {})


def test_images_under_32_pixels_are_scored_without_lpips_unless_it_is_asked_for(tmp_path, weights_mirror, capsys):
    data = tmp_path / "small"
    data.mkdir()
    Image.fromarray(np.full((24, 40, 3), 120, np.uint8)).save(data / "tiny.png")
    out = tmp_path / "out"
    assert evaluate.main(["--data", str(data), "--sigma", "25", "--methods", "ffdnet", "--out", str(out)]) == 0
    assert "lpips not recorded in this run" in capsys.readouterr().err
    assert pd.read_csv(out / "results.csv")["psnr"].notna().all()
    with pytest.raises(SystemExit, match="at least 32x32 pixels; tiny.png is smaller"):
        evaluate.main(["--data", str(data), "--sigma", "25", "--methods", "ffdnet", "--out", str(out),
                       "--metrics", "psnr,lpips"])


def test_the_networks_get_every_core_back_once_the_worker_jobs_are_done(tmp_path, monkeypatch):
    """With CBM3D in a worker process the networks run on the cores left over; once the
    workers have nothing left, later network jobs get every core again (and the caller's
    thread count is restored at the end)."""
    from concurrent.futures import Future

    import torch

    class Finished:
        """A pool whose jobs are over as soon as they are submitted."""

        def submit(self, fn, *args):
            future = Future()
            future.set_result(fn(*args))
            return future

        def shutdown(self, **_):
            pass

    seen = []

    def one(job):
        if job.method != "cbm3d":
            seen.append(torch.get_num_threads())
        return {"image": job.image.name, "method": job.method, "sigma": job.sigma, "seed": job.seed, "psnr": 30.0}

    monkeypatch.setattr(evaluate, "evaluate_one", one)
    monkeypatch.setattr(evaluate, "process_pool", lambda workers: Finished())
    monkeypatch.setattr(evaluate.os, "cpu_count", lambda: 4)
    jobs = [evaluate.Job(Path(f"{m}{i}.png"), m, 25.0, 0, "w", None, ()) for m in ("cbm3d", "dncnn") for i in range(2)]
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        assert evaluate.run(jobs, tmp_path / "results.csv", workers=1) == []
        # The first network job starts before the finished worker jobs are collected.
        assert seen == [3, 4] and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 4
