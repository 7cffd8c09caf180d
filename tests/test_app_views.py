"""Panels, labels, best mark, error maps, A/B pairs and exports, on hand-made results."""
import csv
import dataclasses
import io
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app import crops, errormap, export, views
from app.engine import MethodResult
from app_support import smooth_image
from denoisers.metrics import detail_ratio, psnr, ssim


def result(name, clean, out, seconds=1.0, cached=False):
    return MethodResult(name, name.upper(), out, psnr(clean, out), ssim(clean, out), seconds, cached,
                        detail=detail_ratio(clean, out), weights=f"sha-{name}", numerics="fp32 on cpu")


def shifted(clean, amount, seed):
    noise = np.random.default_rng(seed).normal(0, amount, clean.shape)
    return np.clip(clean + noise, 0, 255).round().astype(np.uint8)


@pytest.fixture
def comp():
    clean = smooth_image(64, 96)
    noisy = shifted(clean, 25, 0)
    c = views.Comparison("kodim01", "id", clean, result("noisy", clean, noisy), 25.0, 0, ["dncnn", "ffdnet", "cbm3d"])
    c.results["dncnn"] = result("dncnn", clean, shifted(clean, 6, 1), 2.0)
    c.results["ffdnet"] = result("ffdnet", clean, shifted(clean, 3, 2), 0.5, cached=True)
    c.results["cbm3d"] = MethodResult("cbm3d", "CBM3D", None, error="not ready: bm3d missing")
    return c


def test_best_is_the_highest_psnr(comp):
    assert views.best_method(comp) == "ffdnet"
    labels = {p.key: p.label for p in views.panels(comp)}
    assert views.BEST_MARK in labels["ffdnet"] and views.BEST_MARK not in labels["dncnn"]
    r = comp.results["ffdnet"]
    assert f"{r.psnr:.2f} dB" in labels["ffdnet"] and f"SSIM {r.ssim:.3f}" in labels["ffdnet"]
    assert "0.5 s (cached)" in labels["ffdnet"] and "2.0 s" in labels["dncnn"]
    assert f"detail {comp.results['dncnn'].detail:.2f}" in labels["dncnn"]
    assert "bm3d missing" in labels["cbm3d"]
    assert f"{comp.noisy.psnr:.2f} dB" in labels["noisy"]
    # The full views (four to a row) carry only the name and PSNR; the scores table has the rest.
    short = {p.key: p.short for p in views.panels(comp)}
    assert short["ffdnet"] == f"FFDNET · {r.psnr:.2f} dB {views.BEST_MARK}"
    assert short["dncnn"] == f"DNCNN · {comp.results['dncnn'].psnr:.2f} dB"
    assert short["noisy"] == f"Noisy (σ=25, seed 0) · {comp.noisy.psnr:.2f} dB"
    assert short["cbm3d"] == labels["cbm3d"] and short["clean"] == "Ground truth"  # errors in full


def test_the_scores_table_says_when_a_network_ran_in_bf16(comp):
    comp.results["dncnn"].numerics = "bf16 on cpu"
    notes = {row[0]: row[-1] for row in views.scores_table(comp)}
    assert "bf16 on cpu" in notes["DNCNN"] and "fp32" not in notes["FFDNET"]


def test_a_stopped_comparison_says_what_was_not_run(comp):
    from app import session

    stopped = dataclasses.replace(comp, methods=["dncnn", "ffdnet"], elapsed=0.0, stopped=("cbm3d",))
    assert session.summary(stopped, 0.0).startswith("Stopped: 2 of 3 methods done (CBM3D not run)")
    assert session.summary(comp, 1.0).startswith("Done: 2 of 3 methods in 1.0 s (1 from the cache) on kodim01, "
                                                 f"σ 25, seed 0. Best PSNR: {comp.results['ffdnet'].label}")
    assert "same in all three channels" not in session.summary(comp, 1.0)
    grey = np.repeat(comp.noisy.output[..., :1], 3, axis=2)
    grey_input = dataclasses.replace(comp, clean=None, seed=None,
                                     noisy=MethodResult("noisy", "Input", grey))  # an already noisy grey upload
    assert "Note: a grey image: its noise is the same in all three channels" in session.summary(grey_input, 1.0)


def test_panel_order_and_pending(comp):
    comp.methods.insert(0, "idgan")
    keys = [p.key for p in views.panels(comp)]
    assert keys == ["clean", "noisy", "idgan", "dncnn", "ffdnet", "cbm3d"]
    pending = views.panels(comp)[2]
    assert pending.image is None and "running" in pending.label


def test_without_ground_truth_there_are_no_scores(comp):
    comp.clean = None
    comp.seed = None
    for r in comp.results.values():
        r.psnr = r.ssim = r.detail = None
    comp.noisy = MethodResult("noisy", "Noisy", comp.noisy.output)
    panels = views.panels(comp)
    assert [p.key for p in panels][0] == "noisy" and "already noisy" in panels[0].label
    assert views.best_method(comp) is None
    assert "dB" not in " ".join(p.label for p in panels) and "detail" not in " ".join(p.label for p in panels)
    assert views.error_views(comp) == ({}, 1.0)


def test_every_crop_is_taken_at_the_same_place(comp):
    box = crops.crop_box((70, 10), 32, comp.shape)
    for p in views.panels(comp):
        if p.image is None:
            assert views.crop_view(p.image, box, 3) is None
            continue
        c = views.crop_view(p.image, box, 3)
        assert c.shape == (96, 96, 3)
        assert np.array_equal(c[::3, ::3], p.image[box.y0:box.y1, box.x0:box.x1])
        full = views.full_view(p.image, box)
        assert np.array_equal(full[box.y0:box.y1, box.x0:box.x1], p.image[box.y0:box.y1, box.x0:box.x1])
        assert not np.array_equal(full, p.image)  # the box is drawn


def test_error_maps_share_one_scale(comp):
    maps, vmax = views.error_views(comp)
    assert set(maps) == {"noisy", "dncnn", "ffdnet"}
    err_d = errormap.abs_error(comp.clean, comp.results["dncnn"].output)
    assert vmax == errormap.shared_scale([err_d, errormap.abs_error(comp.clean, comp.results["ffdnet"].output)])
    # One scale: the same error value gets the same colour in every map, so the method
    # with smaller errors has a darker map (per-image min-max scaling would hide this).
    brightness = {k: m.astype(float).mean() for k, m in maps.items()}
    assert brightness["ffdnet"] < brightness["dncnn"] < brightness["noisy"]
    assert np.array_equal(errormap.colourize(np.array([[vmax]]), vmax), errormap.colourize(np.array([[1e6]]), vmax))


def test_colourize_is_monotonic_in_brightness():
    bar = errormap.colour_bar(10.0, width=64, height=16)
    lum = bar[0].astype(float) @ [0.299, 0.587, 0.114]
    assert bar.shape == (16, 64, 3) and np.all(np.diff(lum) >= -1.0) and lum[-1] > lum[0] + 200


def test_the_error_legend_carries_its_ramp_and_numbers():
    img = errormap.legend(17.0, width=300)
    ramp = img[8 + 11, 8:-8]  # the middle row of the colour bar
    assert np.array_equal(ramp, errormap.colour_bar(17.0, 300 - 16, 1)[0])
    text = img[8 + 22 + 3:]
    assert (text < 128).any() and img.shape[1] == 300  # numbers and words drawn below the bar


def test_slider(comp):
    keys = [k for _, k in views.slider_choices(comp)]
    assert keys == ["clean", "noisy", "dncnn", "ffdnet"]  # cbm3d failed: not offered
    a, b = views.slider_pair(comp, "clean", "ffdnet")
    assert a is comp.clean and b is comp.results["ffdnet"].output
    assert views.slider_pair(comp, "clean", "cbm3d") is None
    box = crops.crop_box((10, 12), 8, comp.clean.shape)
    a, b = views.slider_pair(comp, "noisy", "ffdnet", box, 3)  # the zoomed crops, as the crop panels
    assert np.array_equal(a, crops.zoomed_crop(comp.noisy.output, box, 3)) and a.shape == (24, 24, 3)
    assert np.array_equal(b, crops.zoomed_crop(comp.results["ffdnet"].output, box, 3))


def test_zip_has_full_resolution_outputs_and_the_numbers(comp):
    zf = zipfile.ZipFile(io.BytesIO(export.zip_bytes(comp)))
    folder = "kodim01_sigma25_seed0/"  # two archives unpacked side by side keep apart
    assert sorted(zf.namelist()) == [folder + f for f in ("clean.png", "dncnn.png", "ffdnet.png", "noisy.png",
                                                          "results.csv")]
    out = np.asarray(Image.open(io.BytesIO(zf.read(folder + "dncnn.png"))))
    assert np.array_equal(out, comp.results["dncnn"].output)  # lossless
    rows = list(csv.DictReader(io.StringIO(zf.read(folder + "results.csv").decode())))
    by_method = {r["method"]: r for r in rows}
    assert set(by_method) == {"noisy", "dncnn", "ffdnet", "cbm3d"}
    assert float(by_method["dncnn"]["psnr"]) == pytest.approx(comp.results["dncnn"].psnr)
    assert float(by_method["dncnn"]["detail"]) == pytest.approx(comp.results["dncnn"].detail)
    assert by_method["cbm3d"]["error"] and by_method["cbm3d"]["psnr"] == ""
    assert by_method["dncnn"]["weights"] == "sha-dncnn" and by_method["dncnn"]["numerics"] == "fp32 on cpu"


def test_figure_has_the_reference_and_every_crop(comp):
    box = crops.crop_box((20, 20), 32, comp.shape)
    fig = export.figure(comp, box, tile=128)
    shown = [p for p in views.panels(comp) if p.image is not None]
    ref_w = round(96 * 128 / 64)
    assert fig.dtype == np.uint8 and fig.shape[0] > 128
    assert fig.shape[1] == ref_w + len(shown) * (128 + 6) + 6
    # The last tile is the ffdnet crop magnified 4x with nearest neighbour.
    x = ref_w + 6 + (len(shown) - 1) * (128 + 6)
    tile = fig[:128, x:x + 128]
    assert np.array_equal(tile[::4, ::4], comp.results["ffdnet"].output[box.y0:box.y1, box.x0:box.x1])
    assert Image.open(io.BytesIO(export.png_bytes(fig))).format == "PNG"
    # A 96 px crop in a 256 px figure is magnified 3x, not 2.67x: every pixel an even block.
    box96 = crops.crop_box((48, 32), 96, (256, 256, 3))
    big = views.Comparison("kodim01", "id", np.zeros((256, 256, 3), np.uint8), comp.noisy, 25.0, 0, [])
    rng = np.random.default_rng(0)
    big.noisy = dataclasses.replace(comp.noisy, output=rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    big.clean = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    fig = export.figure(big, box96)
    assert fig.shape[0] > 288 and (fig[:288, 288 + 6:288 + 6 + 288] ==
                                   crops.zoomed_crop(big.clean, box96, 3)).all()


def test_the_figure_names_its_image_and_noise_and_fits_long_captions(comp):
    assert export.reference_caption(comp, "Ground truth") == "Ground truth (kodim01, sigma 25, seed 0)"
    comp.seed, comp.source = None, "upload-holiday"
    assert export.reference_caption(comp, "Input") == "Input (upload-holiday, sigma 25 used)"
    draw = ImageDraw.Draw(Image.new("RGB", (8, 8)))
    font = export.caption_font(18)
    long = "Ground truth (upload-" + "x" * 200 + "-end, sigma 25, seed 0)"
    short = export._fit(draw, long, font, 300)
    assert draw.textlength(short, font=font) <= 300 < draw.textlength(long, font=font)
    assert short.startswith("Ground truth (up") and short.endswith("sigma 25, seed 0)") and "..." in short
    assert export._fit(draw, "FFDNet 31.00 dB", font, 300) == "FFDNet 31.00 dB"
    # A long upload name no longer runs under the first crop: the caption strip there stays blank
    # except for the crop's own caption, which starts 2 px into its tile.
    comp.source = "upload-" + "x" * 200
    box = crops.crop_box((20, 20), 32, comp.shape)
    fig = export.figure(comp, box, tile=128)
    ref_w = round(96 * 128 / 64)
    strip = fig[128:, ref_w + 3:ref_w + 8]  # the reference caption ends by ref_w + 2, the next starts at + 8
    assert (strip == 255).all()


def test_scores_table_holds_the_captions_numbers(comp):
    comp.methods.insert(0, "idgan")  # requested, not finished yet
    rows = {r[0]: r for r in views.scores_table(comp)}
    assert list(rows) == ["Noisy input", "IDGAN", "DNCNN", "FFDNET", "CBM3D"]  # pending: named as when done
    assert [c for c in views.SCORE_COLUMNS] == ["method", "PSNR (dB)", "SSIM", "LPIPS ↓", "detail", "seconds", "note"]
    d = comp.results["dncnn"]
    d.lpips = 0.12345
    rows = {r[0]: r for r in views.scores_table(comp)}
    assert rows["DNCNN"][1:6] == [round(d.psnr, 2), round(d.ssim, 3), 0.123, round(d.detail, 2), 2.0]
    assert "LPIPS 0.123" in views.result_label(d)
    assert rows["FFDNET"][6] == f"{views.BEST_MARK}; cached" and rows["DNCNN"][6] == ""
    assert rows["IDGAN"][6] == "running…" and rows["CBM3D"][6] == "not ready: bm3d missing"
    assert [p.label for p in views.panels(comp) if p.key == "idgan"] == ["IDGAN · running…"]
    assert rows["CBM3D"][1] is None and rows["Noisy input"][3] is None and rows["Noisy input"][4] is None
    assert rows["Noisy input"][1] == round(comp.noisy.psnr, 2)


def test_tables_show_fixed_decimals_and_keep_the_values():
    import gradio as gr
    import pandas as pd

    from app import tables

    frame = pd.DataFrame({"method": ["a", "b"], "psnr": [30.8, "31.83 (15/24)"], "detail": [0.7, None],
                          "images": [24, 3]})
    shown = gr.Dataframe().postprocess(tables.fixed(frame, {"detail": ".3f"}))
    assert shown.metadata["display_value"] == [["a", "30.80", "0.700", "24"], ["b", "31.83 (15/24)", "", "3"]]
    assert shown.data[0][1] == 30.8 and shown.data[0][2] == 0.7  # the numbers themselves are unchanged


def test_a_crop_caption_gives_the_crop_s_scores_beside_the_whole_image_s(comp):
    """PSNR of the crop region, then of the whole image, each labelled; a panel without
    numbers keeps its caption. (LPIPS needs 32x32 at least: this 16x16 crop has none.)"""
    box = crops.crop_box((20, 30), 16, comp.shape)
    by_key = {p.key: p for p in views.panels(comp)}
    out = comp.results["ffdnet"].output
    caption = views.crop_label(by_key["ffdnet"], comp.clean, box)
    crop_psnr = psnr(crops.crop(comp.clean, box), crops.crop(out, box))
    assert caption.splitlines() == [f"FFDNET {views.BEST_MARK}", f"crop {crop_psnr:.2f} dB",
                                    f"image {comp.results['ffdnet'].psnr:.2f} dB"]
    assert abs(crop_psnr - comp.results["ffdnet"].psnr) > 0.01  # the two numbers are not the same one
    assert views.crop_label(by_key["clean"], comp.clean, box) == "Ground truth"
    assert views.crop_label(by_key["cbm3d"], comp.clean, box) == by_key["cbm3d"].label
    assert views.crop_label(by_key["ffdnet"], None, box) == by_key["ffdnet"].label
