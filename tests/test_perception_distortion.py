"""scripts/perception_distortion.py on a tiny evaluation: perceptual scores, pixel blends of
the dial's ends, the means and what they say, and a rerun that scores nothing twice."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import denoisers
from denoisers.io import read_image, write_png

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def script(monkeypatch):
    spec = importlib.util.spec_from_file_location("perception_distortion", ROOT / "scripts" / "perception_distortion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []

    def fake(reference, image, **_):  # stands in for LPIPS and DISTS (tested on their own)
        calls.append(1)
        return float(np.mean(np.abs(reference.astype(float) - image.astype(float)))) / 255

    monkeypatch.setattr(denoisers.metrics, "lpips", fake)
    monkeypatch.setattr(denoisers.metrics, "dists", fake)
    monkeypatch.setattr(denoisers.metrics, "scorer", lambda name, ref: lambda image: fake(ref, image))
    monkeypatch.setattr(module, "write_png", lambda fig, path: False)  # no browser here
    return module, calls


def dial_folder(tmp_path: Path, levels: dict[str, float], sigmas=(25.0,), seed: int = 0):
    """A tiny evaluation of two images: for each sigma and method an output with ``levels[method]``
    of noise left, saved as --save-images does, and its row (no perceptual score recorded)."""
    rng = np.random.default_rng(seed)
    data, images, out = tmp_path / "data", tmp_path / "saved", tmp_path / "out"
    rows = []
    for name in ("a.png", "b.png"):
        clean = rng.integers(40, 200, (40, 48, 3)).astype(np.uint8)
        write_png(clean, data / name)
        for sigma in sigmas:
            for method, level in levels.items():
                output = np.clip(clean + rng.normal(0, level, clean.shape), 0, 255).astype(np.uint8)
                write_png(output, images / f"sigma{sigma:g}_seed0" / method / name)
                rows.append({"image": name, "method": method, "sigma": float(sigma), "seed": 0,
                             "psnr": denoisers.metrics.psnr(clean, output), "ssim": 0.9, "seconds": 1.0,
                             "weights": "w", "hf": 1.0, "hf_clean": 1.0})
    out.mkdir()
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    return data, images, out


def test_the_plane_blends_scores_and_compares(script, tmp_path):
    module, calls = script
    data, images, out = dial_folder(tmp_path, {"idresnet": 6, "idgan": 12, "idgan@0.5": 8, "dncnn": 20})
    assert module.main([str(out), "--images", str(images), "--data", str(data)]) == 0
    blends = pd.read_csv(out / "pixel_blend.csv")
    assert set(blends["method"]) == {"pixel@0.5"} and len(blends) == 2
    plane = pd.read_csv(out / "plane.csv").set_index("method")
    assert plane.loc["idgan@0.5", "family"] == "network blend (dial)" and plane.loc["dncnn", "family"] == "baseline"
    assert plane.loc["pixel@0.5", "alpha"] == 0.5 and plane["lpips"].notna().all()
    text = (out / "plane.md").read_text()
    assert "sigma 25: detail is nearest 1" in text and "Network minus pixel blend" in text
    # The fake metric ranks by noise left: A = 0 (IDResNet, 6) beats DnCNN (20) at no PSNR cost;
    # A = 0.5 (8) costs 2.5 dB.
    assert "A = 0 beats every baseline in DISTS" in text and "Network minus pixel blend at the same A: +" in text
    first = len(calls)
    assert module.main([str(out), "--images", str(images), "--data", str(data)]) == 0
    assert len(calls) == first  # everything was scored already


def test_dists_is_added_to_outputs_scored_before_and_recorded_scores_are_reused(script, tmp_path):
    """A plane made with --no-dists, then without it: DISTS is scored for every output that lacks
    it (the LPIPS-only rows included); LPIPS that the evaluation recorded is taken, not scored
    again; scores of rows outside the plane (another sigma) stay in perceptual.csv."""
    module, calls = script
    data, images, out = dial_folder(tmp_path, {"idresnet": 6, "idgan": 12}, seed=3)
    results = pd.read_csv(out / "results.csv")
    results["lpips"] = np.where(results["method"] == "idgan", 0.25, np.nan)  # the evaluation recorded IDGAN's
    results.to_csv(out / "results.csv", index=False)
    pd.DataFrame([{"image": "a.png", "method": "idresnet", "sigma": 50.0, "seed": 0, "lpips": 0.7}]).to_csv(
        out / "perceptual.csv", index=False)
    args = [str(out), "--images", str(images), "--data", str(data)]
    assert module.main(args + ["--no-dists"]) == 0
    assert len(calls) == 2  # IDResNet's two outputs; no pixel blend without a dial setting inside
    scores = pd.read_csv(out / "perceptual.csv").set_index(["image", "method", "sigma"])
    assert scores.loc[("a.png", "idgan", 25.0), "lpips"] == 0.25 and scores.loc[("a.png", "idresnet", 50.0), "lpips"] == 0.7
    assert module.main(args) == 0
    assert len(calls) == 2 + 4  # DISTS of the four outputs, LPIPS of none
    scores = pd.read_csv(out / "perceptual.csv")
    assert len(scores) == 5 and scores[scores["sigma"] == 25]["dists"].notna().all()
    assert pd.read_csv(out / "plane.csv")["dists"].notna().all()


def test_a_run_limited_to_one_sigma_keeps_the_others_scores_and_plots_them(script, tmp_path, capsys):
    """--sigma 35 after an LPIPS-only plane of 25 and 35: DISTS is scored at 35 only; the pixel
    blends of 25, which lack DISTS, stay in pixel_blend.csv (scores are not thrown away) and
    the plane still shows 25 with the scores found for it."""
    module, calls = script
    data, images, out = dial_folder(tmp_path, {"idresnet": 6, "idgan": 12, "idgan@0.5": 8, "dncnn": 20},
                                    sigmas=(25.0, 35.0))
    args = [str(out), "--images", str(images), "--data", str(data)]
    assert module.main(args + ["--no-dists"]) == 0
    assert len(calls) == 2 * 2 * (4 + 1)  # LPIPS of 4 outputs and 1 blend, 2 images, 2 sigmas
    assert module.main(args + ["--sigma", "35"]) == 0
    assert len(calls) == 20 + 2 * (4 + 2)  # at 35: DISTS of the 4 outputs, LPIPS and DISTS of the blend
    blends = pd.read_csv(out / "pixel_blend.csv").set_index(["sigma", "image"])
    assert len(blends) == 4 and blends.loc[25.0, "lpips"].notna().all() and blends.loc[25.0, "dists"].isna().all()
    assert blends.loc[35.0, "dists"].notna().all()
    plane = pd.read_csv(out / "plane.csv").set_index(["sigma", "method"])
    assert set(plane.index.get_level_values("sigma")) == {25.0, 35.0}
    assert plane.loc[(25.0, "pixel@0.5"), "lpips"] > 0 and np.isnan(plane.loc[(25.0, "pixel@0.5"), "dists"])
    assert plane.loc[(35.0, "pixel@0.5"), "dists"] > 0
    text = (out / "plane.md").read_text()
    assert "sigma 25" in text and "sigma 35" in text and text.count("in DISTS") == 1
    with pytest.raises(SystemExit):
        module.main(args + ["--sigma", "50"])
    assert "--sigma 50: no dial on every image there (the folder's: 25, 35)" in capsys.readouterr().err


def test_a_sigma_never_scored_is_left_out_of_a_run_limited_to_another(script, tmp_path, capsys):
    module, calls = script
    data, images, out = dial_folder(tmp_path, {"idresnet": 6, "idgan": 12}, sigmas=(25.0, 35.0))
    assert module.main([str(out), "--images", str(images), "--data", str(data), "--no-dists", "--sigma", "25"]) == 0
    assert len(calls) == 4 and set(pd.read_csv(out / "plane.csv")["sigma"]) == {25.0}
    assert "left out, not scored: sigma 35 (run without --sigma)" in capsys.readouterr().err


def test_the_finding_names_the_first_setting_that_wins_and_the_best_within_half_a_db(script):
    """IDResNet itself may already beat every baseline: the finding says so, then where the
    metric is lowest within 0.5 dB; a setting past 0.5 dB does not count."""
    module, _ = script
    dial = pd.DataFrame({"method": ["idresnet", "idgan@0.5", "idgan@0.9", "idgan"], "alpha": [0.0, 0.5, 0.9, 1.0],
                         "psnr": [32.0, 31.6, 31.2, 30.5], "lpips": [0.12, 0.10, 0.09, 0.08]})
    baselines = pd.DataFrame({"method": ["dncnn", "cbm3d"], "psnr": [32.1, 31.9], "lpips": [0.13, 0.17]})
    text = module.win_text(dial, dial.iloc[0], baselines, "lpips")
    assert text == ("A = 0 beats every baseline in LPIPS (0.1200 against dncnn's 0.1300) for 0.000 dB against IDResNet. "
                    "Within 0.5 dB the lowest LPIPS is at A = 0.5 (0.1000, for 0.400 dB).")
    baselines["lpips"] = [0.095, 0.17]  # only A = 0.9 and 1 beat it now, both more than 0.5 dB below
    assert module.win_text(dial, dial.iloc[0], baselines, "lpips").startswith("No A beats the best baseline's LPIPS (dncnn")


def test_results_without_both_ends_of_the_dial_are_refused(script, tmp_path):
    module, _ = script
    (tmp_path / "results.csv").write_text("image,method,sigma,seed,psnr,ssim,weights\na.png,dncnn,25,0,30,0.9,w\n")
    with pytest.raises(SystemExit):
        module.main([str(tmp_path), "--images", str(tmp_path), "--data", str(tmp_path)])


def test_baselines_come_from_another_evaluation_with_their_recorded_scores(script, tmp_path):
    """--baselines: the dial's folder holds only the dial; DnCNN's rows (and their LPIPS) come
    from an evaluation on the same images and noise; a method there on one image of two, and
    the other folder's rows for another sigma, are left out."""
    module, _ = script
    data, images, dial = dial_folder(tmp_path, {"idresnet": 6, "idgan": 12}, seed=1)
    rows = pd.read_csv(dial / "results.csv").to_dict("records")
    base = tmp_path / "base"
    other = [{"image": name, "method": method, "sigma": sigma, "seed": 0, "psnr": 28.0, "ssim": 0.8, "seconds": 1.0,
              "weights": "w", "hf": 1.0, "hf_clean": 1.0, "lpips": lp} for name in ("a.png", "b.png")
             for method, sigma, lp in (("dncnn", 25.0, 0.5), ("dncnn", 50.0, 0.7), ("idgan@0.5", 25.0, 0.6))]
    other.append({**other[-1], "method": "ffdnet", "image": "a.png"})  # one image of two
    base.mkdir()
    pd.DataFrame(other).to_csv(base / "results.csv", index=False)
    args = [str(dial), "--images", str(images), "--data", str(data), "--no-dists"]
    assert module.main(args + ["--baselines", str(base)]) == 0
    plane = pd.read_csv(dial / "plane.csv")
    assert set(plane["method"]) == {"idresnet", "idgan", "dncnn"}  # no ffdnet, no dial setting from there
    dncnn = plane[plane["method"] == "dncnn"].iloc[0]
    assert dncnn["sigma"] == 25 and dncnn["lpips"] == pytest.approx(0.5) and dncnn["family"] == "baseline"
    assert "beats every baseline in LPIPS" in (dial / "plane.md").read_text()  # 0.5 is beaten by the fake metric
    with pytest.raises(SystemExit):
        module.main(args + ["--baselines", str(tmp_path / "missing")])
    # DnCNN run again in the dial's folder at sigma 25 (with DISTS, say): that sigma's rows come
    # from there, the other folder's DnCNN rows still serve the other sigmas.
    for name in ("a.png", "b.png"):
        rows.append({"image": name, "method": "dncnn", "sigma": 25.0, "seed": 0, "psnr": 27.0, "ssim": 0.8,
                     "seconds": 1.0, "weights": "w", "hf": 1.0, "hf_clean": 1.0, "lpips": 0.4, "dists": 0.3})
        for method in ("idresnet", "idgan"):
            rows.append({**rows[0], "image": name, "method": method, "sigma": 50.0})
            write_png(read_image(images / "sigma25_seed0" / method / name), images / "sigma50_seed0" / method / name)
    pd.DataFrame(rows).to_csv(dial / "results.csv", index=False)
    assert module.main(args + ["--baselines", str(base)]) == 0
    plane = pd.read_csv(dial / "plane.csv").set_index(["sigma", "method"])
    assert plane.loc[(25, "dncnn"), "lpips"] == pytest.approx(0.4) and plane.loc[(25, "dncnn"), "psnr"] == 27.0
    assert plane.loc[(50, "dncnn"), "lpips"] == pytest.approx(0.7)


def test_a_sigma_still_running_is_left_out_of_the_plane(script, tmp_path, capsys):
    """Rows of a run still going (IDResNet on one image of two at sigma 35, no IDGAN there yet)
    make no point and no finding: every (sigma, method) covers every image, with both ends."""
    module, _ = script
    rng = np.random.default_rng(2)
    data, images, out = tmp_path / "data", tmp_path / "saved", tmp_path / "out"
    rows = []
    for name in ("a.png", "b.png"):
        clean = rng.integers(40, 200, (40, 48, 3)).astype(np.uint8)
        write_png(clean, data / name)
        for method, sigma in (("idresnet", 25), ("idgan", 25), ("idresnet", 35)):
            if sigma == 35 and name == "b.png":
                continue
            output = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
            write_png(output, images / f"sigma{sigma}_seed0" / method / name)
            rows.append({"image": name, "method": method, "sigma": float(sigma), "seed": 0, "psnr": 30.0, "ssim": 0.9,
                         "seconds": 1.0, "weights": "w", "hf": 1.0, "hf_clean": 1.0})
    out.mkdir()
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    assert module.main([str(out), "--images", str(images), "--data", str(data), "--no-dists"]) == 0
    assert set(pd.read_csv(out / "plane.csv")["sigma"]) == {25}
    assert "sigma 35" not in (out / "plane.md").read_text()
    assert "idresnet at 35" in capsys.readouterr().err
    half = pd.DataFrame([r for r in rows if r["sigma"] == 25 and (r["method"] == "idresnet" or r["image"] == "a.png")])
    half.to_csv(out / "results.csv", index=False)  # IDGAN on one image of two: no sigma has a whole dial
    with pytest.raises(SystemExit):
        module.main([str(out), "--images", str(images), "--data", str(data), "--no-dists"])
    assert "no sigma has idresnet and idgan on every image" in capsys.readouterr().err


def test_the_clean_images_can_be_a_test_set_named_instead_of_a_folder(script, data_mirror, tmp_path):
    module, _ = script
    from denoisers import datasets

    named = module.clean_path(Path("kodak24"), "kodim01.png")
    assert named == datasets.file("kodak24", "kodim01.png", download=False) and named.exists()
    assert module.clean_path(tmp_path, "kodim01.png") == tmp_path / "kodim01.png"  # a folder is a folder
