"""The compare view's event handlers (``app.events``, ``app.abslider``), called directly: no
server, no browser, no gradio. Values are read by component name."""
import dataclasses
import html
import os

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app import abslider, crops, session, views  # noqa: E402
from app.convert import InputError, image_id  # noqa: E402
from app.engine import Engine, MethodResult  # noqa: E402
from app.events import INFO, WARNING, Events, Settings  # noqa: E402
from app.outputs import EXPORT_MAX_AGE, VIEW_MAX_AGE, ExportDir  # noqa: E402
from app_support import needs_kodak, smooth_image  # noqa: E402
from denoisers.io import read_image  # noqa: E402
from denoisers.metrics import psnr  # noqa: E402


@pytest.fixture(scope="module")
def events():
    engine = Engine(None, methods=["ffdnet"])
    exports = ExportDir()
    yield Events(engine, Settings(results_root=os.devnull), exports)
    exports.close()
    engine.close()


def upload():
    img = smooth_image(48, 64)
    return session.Source("upload", img, image_id(img))


def comparison(methods=(), truth=True, psnrs=None):
    """A comparison of ``upload()`` with ``methods`` requested and ``psnrs`` ({name: PSNR}) finished."""
    engine = Engine(None, methods=["ffdnet"])
    try:
        comp, _ = session.new_comparison(engine, upload(), 25, 0, False, [])
    finally:
        engine.close()
    comp.methods = list(methods) or list(psnrs or {})
    if not truth:
        comp.clean, comp.seed = None, None
    for name, value in (psnrs or {}).items():
        comp.results[name] = MethodResult(name, name.upper(), comp.noisy.output, psnr=value if truth else None,
                                          ssim=0.9 if truth else None, seconds=1.0, detail=0.5 if truth else None)
    return comp


def finished(psnrs):
    return dataclasses.replace(comparison(psnrs=psnrs), done=True, elapsed=1.0)


def test_unticking_already_noisy_rebuilds_the_preview_with_synthetic_noise(events):
    src = upload()
    out = events.switch_noisy(src, True, 25, 0, 0)
    assert out["comparison"].clean is None and out["results_changed"] == 1  # the input as it is
    out = events.switch_noisy(src, False, 25, 0, 1)
    comp = out["comparison"]
    assert comp.clean is not None and comp.noisy.psnr is not None
    assert (comp.noisy.output != src.image).any()  # synthetic noise, not the input shown as is
    assert out["results_changed"] == 2 and "Press Compare" in out["status"]
    for sigma in (None, 3):  # the σ box left empty or out of range: said plainly
        with pytest.raises(InputError, match="sigma must be"):
            events.switch_noisy(src, False, sigma, 0, 2)


@needs_kodak
def test_opening_a_kodak_image_unticks_already_noisy(events):
    for out in (events.pick_kodak(4, 25, 0, 0), events.open_from_table("kodak24", 25, 0, None, ["kodim05.png"], 0)):
        assert out["already_noisy"] is False
        comp = out["comparison"]
        assert comp.source == "kodim05" and comp.clean is not None and comp.noisy.psnr is not None
    with pytest.raises(InputError, match="unknown Kodak24 image"):
        events.pick_kodak(99, 25, 0, 0)


def test_a_plain_visit_leaves_the_view_alone(events):
    """A visit without a link must not overwrite an image picked while the page was loading."""
    assert events.open_link({}, 0) == {} and events.open_link({"utm_source": "x"}, 0) == {}


def test_a_link_restores_its_view(events):
    out = events.open_link({"sigma": "35", "seed": "7", "crop": "64", "errors": "1"}, 0)
    assert out["status"] == "Pick a Kodak24 image or upload one, then press Compare."
    assert (out["sigma"], out["seed"], out["crop_size"], out["show_errors"]) == (35, 7, 64, True)
    assert out["autorun"] is False and WARNING not in out


def test_method_boxes_say_what_a_generator_was_trained_for(tiny_generators):
    from app.ui import build

    engine = Engine(None, methods=["idresnet", "ffdnet", "cbm3d"])
    demo, exports = build(engine, Settings(results_root=os.devnull))
    try:
        boxes = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", "") in
                 ("method-idresnet", "method-ffdnet", "method-cbm3d")}
        assert boxes["method-cbm3d"].info.startswith("licence: non-commercial use only")
        assert boxes["method-idresnet"].info == "trained by this project, briefly so far (its model card says how long); trained for sigma 25, 50"
        assert boxes["method-idresnet"].value
        assert boxes["method-ffdnet"].info.startswith("trained for sigma 0-75")  # the FFDNet paper's range
    finally:
        exports.close()
        engine.close()


@needs_kodak
def test_a_link_runs_its_comparison_only_when_it_names_methods(events):
    """A preview's link (no methods) opens the image and waits: reloading it must not start
    every method (CBM3D included) on its own."""
    waits = events.open_link({"image": "kodim05", "sigma": "25"}, 0)
    runs = events.open_link({"image": "kodim05", "sigma": "25", "methods": "ffdnet"}, 0)
    assert waits["autorun"] is False and runs["autorun"] is True
    assert waits["status"].endswith("Press Compare.") and runs["method_ffdnet"] is True


def test_removing_an_old_upload_keeps_the_kodak_image_picked_since(events):
    assert events.clear_upload(session.Source("kodim02", smooth_image(48, 64), "id"), 3) == {}
    out = events.clear_upload(upload(), 3)
    assert out["source"] is None and out["results_changed"] == 4 and "Upload removed" in out["status"]


def test_a_benchmark_row_does_not_replace_an_image_whose_comparison_runs(events):
    with pytest.raises(InputError, match="still running"):
        events.open_from_table("kodak24", 25, 0, comparison(methods=("ffdnet",)), ["kodim05.png"], 0)
    with pytest.raises(InputError, match="Only Kodak24"):
        events.open_from_table("cbsd68", 25, 0, None, ["102061.png"], 0)


def test_changing_methods_after_a_run_says_the_panels_are_stale(events):
    done = finished({"ffdnet": 30.0})
    assert events.settings_changed(done, 25, 0, [True])["status"].startswith("Done")  # as it ran: no hint
    assert "press Compare" in events.settings_changed(done, 25, 0, [False])["status"]  # FFDNet unticked since
    stale = events.settings_changed(done, 30, 0, [True])["status"]
    assert stale.startswith("Done") and "Settings changed: press Compare" in stale  # the summary stays too
    preview = comparison()
    assert events.settings_changed(preview, 25, 0, [False]) == {}  # nothing ran yet: nothing stale
    assert "press Compare" in events.settings_changed(preview, 30, 0, [False])["status"]  # noise of the old σ
    came_noisy = dataclasses.replace(preview, seed=None, clean=None, note="Loaded upload; estimated noise σ ≈ 31")
    assert events.settings_changed(came_noisy, 40, 0, [False])["status"] == came_noisy.note  # σ changes nothing shown


def test_the_status_line_says_progress_until_the_run_is_done(events):
    """The summary follows the explicit finished flag, not a time of 0 (a Stop) or a missing one."""
    running = comparison(methods=("ffdnet",))
    assert events.render(running, None, 96, 4, False)["status"] == "Running: 0 of 1 done…"
    out = events.stop(running, 5)
    assert out["comparison"].done and out["results_changed"] == 6
    assert events.render(out["comparison"], None, 96, 4, False)["status"].startswith("Stopped: 0 of 1 methods done")
    assert events.stop(out["comparison"], 6) == {INFO: "Nothing is running."}
    assert events.stop(None, 6) == {INFO: "Nothing is running."}


def test_a_comparison_streams_its_results_and_ends_done(events, monkeypatch):
    from app import engine as engine_module

    monkeypatch.setattr(engine_module, "timed", lambda d, noisy, sigma: (np.clip(noisy * 255, 0, 255).astype(np.uint8),
                                                                        0.01))
    steps = list(events.compare(upload(), 25, 0, False, [True], 10))
    # with the run-time estimate from the measured seconds per megapixel (a 48x64 image: under 1 s)
    assert steps[0]["status"] == "Running FFDNet… (estimate: about <1 s: FFDNet <1 s; the crops come first)"
    assert not steps[0]["comparison"].done
    counts = [s["results_changed"] for s in steps if s]
    assert counts == sorted(set(counts)) and counts[0] == 11  # every step renders: the counter always moves
    last = steps[-1]["comparison"]
    assert last.done and last.elapsed is not None and last.results["ffdnet"].output is not None
    with pytest.raises(InputError, match="Tick at least one method"):
        next(events.compare(upload(), 25, 0, False, [False], 0))
    with pytest.raises(InputError, match="Pick a Kodak24 image"):
        next(events.compare(None, 25, 0, False, [True], 0))


def test_a_comparison_yields_nothing_once_another_input_is_chosen(events, monkeypatch):
    """gradio's cancels may let a result already on its way land after the new input's preview;
    the run itself holds it back once the visitor's turn has moved on."""
    from app import engine as engine_module

    monkeypatch.setattr(engine_module, "timed", lambda d, noisy, sigma: (np.clip(noisy * 255, 0, 255).astype(np.uint8),
                                                                        0.01))
    turn = session.Turn()
    whole = list(events.compare(upload(), 25, 0, False, [True], 0, turn=turn))  # untouched: runs to the end
    assert whole[-1]["comparison"].done
    run = events.compare(upload(), 25, 0, False, [True], 0, turn=turn)
    assert "Running" in next(run)["status"]
    out = events.load(upload, 25, 0, False, 3, turn)  # another input, while the run is under way
    assert out["comparison"].methods == [] and turn.count == 1
    assert list(run) == []  # not the FFDNet result, not "Done"
    cleared = events.compare(upload(), 25, 0, False, [True], 0, turn=turn)
    next(cleared)
    assert events.clear_upload(upload(), 4, turn)["source"] is None and turn.count == 2
    assert list(cleared) == []


def test_an_already_noisy_kodak_view_is_not_put_in_a_link(events):
    """A link adds synthetic noise to a Kodak image; an 'already noisy' view of one is another
    comparison, so its link names no image rather than a wrong one."""
    engine = Engine(None, methods=["ffdnet"])
    try:
        src = session.Source("kodim05", smooth_image(48, 64), "id")
        noisy_view, _ = session.new_comparison(engine, src, 25, 0, True, [])
        clean_view, _ = session.new_comparison(engine, src, 25, 0, False, [])
    finally:
        engine.close()
    events.renderer.kodak_names.add("kodim05")  # whether or not Kodak24 is here
    assert "image=" not in events.render(noisy_view, None, 96, 4, False)["link"]
    assert "image=kodim05" in events.render(clean_view, None, 96, 4, False)["link"]


@needs_kodak
def test_a_link_with_problems_opens_its_image_and_waits(events):
    """Unknown methods (or a bad sigma) must not make a link run every method at the defaults."""
    out = events.open_link({"image": "kodim05", "sigma": "80", "methods": "foo"}, 0)
    assert out["autorun"] is False
    assert html.unescape(out[WARNING][0]).startswith("Ignored in the link: sigma must be between") and \
        out[WARNING][1] == 30
    status = html.unescape(out["status"])
    assert status.startswith("Loaded kodim05 from the link. Press Compare.") and "Ignored in the link" in status


def test_moving_the_crop_leaves_the_status_line_alone(events):
    """A 'settings changed' hint must survive a click or a zoom change on the old panels (and
    a result arriving): every render writes the status for the current settings."""
    done = finished({"ffdnet": 30.0})
    first = events.render(done, None, 96, 4, False, None, 25, 0, [True])
    assert first["status"].startswith("Done") and "Settings" not in first["status"]
    moved = events.render(done, (10, 10), 96, 4, False, first["shown"], 30, 0, [True])  # σ 30 since, crop moved
    assert moved["status"].startswith("Done")
    assert "Settings changed: press Compare to run them (the panels show σ 25" in moved["status"]
    assert moved["centre_x"]["value"] == 10  # the boxes follow the move
    back = events.render(done, (10, 10), 96, 2, False, moved["shown"], 25, 0, [True])  # σ set back: no hint
    assert "Settings" not in back["status"]


def test_a_click_or_a_typed_centre_moves_the_crop(events):
    comp = comparison()
    assert events.click_crop(comp, [20, 10], 3) == {"centre": (20, 10), "view_changed": 4}
    assert events.click_crop(None, [20, 10], 3) == {}
    out = events.type_centre(comp, None, 500, 10, 32, 4)  # beyond the right edge: the last column
    assert out == {"centre": (63, 10), "view_changed": 5, "centre_x": 63}
    assert events.type_centre(comp, (63, 10), 63, 10, 32, 5) == {}  # unchanged: nothing to redraw
    assert events.type_centre(comp, None, None, 10, 32, 5) == {}  # a box emptied


def test_the_ab_slider_shows_the_best_method_until_the_user_picks_another():
    out = abslider.follow(comparison(psnrs={"ffdnet": 30.0}), None, None, None, None)
    assert (out["ab_a"]["value"], out["ab_b"]["value"]) == ("clean", "ffdnet")
    comp = comparison(psnrs={"dncnn": 31.0, "ffdnet": 30.0})  # DnCNN finished later, better
    assert abslider.follow(comp, "clean", "ffdnet", None, None)["ab_b"]["value"] == "dncnn"
    pinned = abslider.pick_right(comp, "clean", "ffdnet")["ab_pinned"]
    assert abslider.follow(comp, "clean", "ffdnet", None, pinned)["ab_b"]["value"] == "ffdnet"  # the choice stays
    blind = comparison(psnrs={"ffdnet": None}, truth=False)  # already noisy: no best; the result, not the input
    out = abslider.follow(blind, None, None, None, None)
    assert (out["ab_a"]["value"], out["ab_b"]["value"]) == ("noisy", "ffdnet")


def test_a_left_side_the_user_chose_comes_back_with_the_next_results():
    out = abslider.follow(comparison(), "ffdnet", "noisy", None, None, "full", None, 32, 2, "ffdnet")
    assert out["ab_a"]["value"] == "clean"  # another image: only its ground truth and noisy input so far
    done = comparison(psnrs={"ffdnet": 30.0})
    out = abslider.follow(done, "clean", "noisy", None, None, "full", None, 32, 2, "ffdnet")
    assert (out["ab_a"]["value"], out["ab_b"]["value"]) == ("ffdnet", "ffdnet")
    assert abslider.pick_left(done, "noisy", "ffdnet", "full", None, 32, 2)["ab_left"] == "noisy"  # a new choice


def test_the_ab_slider_can_show_the_zoomed_crop_and_follows_it():
    def nothing_sent(out):
        return "slider" not in out and "ab_shown" not in out

    comp = comparison(psnrs={"ffdnet": 30.0})
    out = abslider.follow(comp, None, None, None, None)
    assert out["slider"]["value"][0] is comp.clean
    # each side is named, with its scores
    ffdnet = comp.results["ffdnet"]
    assert out["slider"]["label"] == (f"◀ left: Ground truth   |   right: {ffdnet.label} · {ffdnet.psnr:.2f} dB "
                                      f"{views.BEST_MARK} ▶")
    shown = out["ab_shown"]
    # A crop move changes nothing on a slider showing the whole images: nothing is sent.
    assert nothing_sent(abslider.follow(comp, "clean", "ffdnet", shown, None, "full", (20, 20), 32, 2))
    out = abslider.follow(comp, "clean", "ffdnet", shown, None, "crop", (20, 20), 32, 2)
    box = crops.crop_box((20, 20), 32, comp.shape)
    assert np.array_equal(out["slider"]["value"][0], crops.zoomed_crop(comp.clean, box, 2))
    assert np.array_equal(out["slider"]["value"][1], crops.zoomed_crop(comp.results["ffdnet"].output, box, 2))
    assert nothing_sent(abslider.follow(comp, "clean", "ffdnet", out["ab_shown"], None, "crop", (20, 20), 32, 2))
    moved = abslider.follow(comp, "clean", "ffdnet", out["ab_shown"], None, "crop", (40, 30), 32, 3)
    assert np.array_equal(moved["slider"]["value"][0], crops.zoomed_crop(comp.clean, crops.crop_box((40, 30), 32, comp.shape), 3))
    assert abslider.update(comp, "clean", "ffdnet", "crop", None, 32, 2)["slider"]["value"][0].shape == (64, 64, 3)  # centred
    # Back to whole images by hand: what that sent is recorded, so the next crop move sends nothing.
    picked = abslider.update(comp, "clean", "ffdnet", "full", (40, 30), 32, 3)["ab_shown"]
    assert nothing_sent(abslider.follow(comp, "clean", "ffdnet", picked, None, "full", (50, 50), 32, 3))
    assert abslider.place_divider("20")["slider"]["slider_position"] == 20 and abslider.place_divider("") == {}


def test_error_maps_reach_the_crops_and_the_link(events):
    comp = comparison(psnrs={"ffdnet": 30.0})
    out = events.render(comp, (20, 20), 32, 2, True)
    maps, _ = views.error_views(comp)
    slot = [p.key for p in views.panels(comp)].index("ffdnet")
    crop = out[f"crop_{slot}"]
    box = crops.crop_box((20, 20), 32, comp.shape)
    assert (read_image(crop["value"]) == crops.zoomed_crop(maps["ffdnet"], box, 2)).all()  # a lossless PNG
    assert crop["label"].endswith(" · error map")
    assert crop["value"].endswith(f"upload_sigma25_seed0_ffdnet_errors_crop_x{box.x0}_y{box.y0}_32px_2x.png")
    full = out[f"full_{slot}"]["value"]
    assert full.endswith("upload_sigma25_seed0_ffdnet_errors_with_crop_box.png")  # not the bare output
    assert "errors=1" in out["link"]
    assert "errors" not in events.render(comp, (20, 20), 32, 2, False)["link"]
    blind = comparison(psnrs={"ffdnet": None}, truth=False)
    box_update = events.render(blind, None, 32, 2, True)["show_errors"]
    assert box_update["interactive"] is False and "no ground truth" in box_update["info"]


def test_panel_files_are_kept_a_short_while_and_exports_longer():
    from app import outputs

    exports = ExportDir()
    try:
        view, export_folder = exports.views.new(), exports.new()
        (view / "a.png").write_bytes(b"x")
        old = outputs.time.time() - VIEW_MAX_AGE - 1
        os.utime(view, (old, old))
        older = outputs.time.time() - EXPORT_MAX_AGE - 1
        os.utime(export_folder, (older, older))
        exports.new()  # an export's clean-up leaves the panels' folder to its own
        assert view.exists() and not export_folder.exists()
        exports.views.new()
        assert not view.exists()
        os.utime(exports.views.root, (0, 0))
        exports.new()  # however old the panels' folder looks, an export never removes it
        assert exports.views.new().exists()
    finally:
        exports.close()
    assert not exports.root.exists()


def test_a_preview_s_render_writes_its_note_and_result_renders_leave_the_centre_boxes(events):
    """After the render of an input left behind, the render of the one chosen since puts its
    status back; and renders of arriving results never write over a number being typed."""
    preview = comparison()
    preview.note = "Loaded upload (64x48). Press Compare."
    before = events.render(finished({"ffdnet": 30.0}), None, 96, 4, False)  # the input left behind
    out = events.render(preview, None, 96, 4, False, before["shown"])
    assert out["status"] == preview.note
    fresh = events.render(preview, None, 96, 4, False, None)  # a page's first render fills the boxes, shown
    assert (fresh["centre_x"], fresh["centre_y"]) == ({"value": 32, "visible": True}, {"value": 24, "visible": True})
    gone = events.render(None, None, 96, 4, False, fresh["shown"])  # no input any more: hidden again
    assert gone["centre_x"]["visible"] is False and gone["centre_y"]["visible"] is False and gone["link"] == ""
    running = comparison(psnrs={"ffdnet": 30.0})
    first = events.render(running, None, 96, 4, False, out["shown"])
    later = events.render(running, None, 96, 4, False, first["shown"])  # the next result's render: same centre
    assert "centre_x" not in later and "centre_y" not in later


def test_the_benchmark_table_mentions_published_values_only_where_the_set_has_some(events):
    kodak, cbsd = events.show_benchmark("kodak24", 25), events.show_benchmark("cbsd68", 25)
    assert "beside the published values" in kodak["bench_table"]["label"]
    label = cbsd["bench_table"]["label"]
    assert "no published values on this set" in label and "paper" not in label


def test_exports_need_a_comparison(events):
    with pytest.raises(InputError, match="Run a comparison first"):
        events.export_zip(comparison())
    out = events.export_figure(finished({"ffdnet": 30.0}), None, 32)
    assert out["fig_file"]["visible"] and out["fig_file"]["value"].endswith(".png")


def test_the_slider_boxes_accept_any_number_while_typed_even_after_an_update():
    """Gradio refused a number outside a slider's range before any handler ran (an error toast
    per keystroke: "1" on the way to "15"); ours let it through to handlers that check it. Any
    update to a component, ``gr.skip()`` included, makes gradio rebuild the session's copy of
    it from its class and constructor arguments: the copy must be as lenient."""
    from app.ui import build

    engine = Engine(None, methods=["ffdnet"])
    demo, exports = build(engine, Settings(results_root=os.devnull))
    try:
        sliders = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None) in
                   ("sigma", "crop-size", "zoom", "ab-position")}
        assert len(sliders) == 4
        for block in sliders.values():
            rebuilt = block.__class__(**{**block.constructor_args, "render": False})
            for copy in (block, rebuilt):
                assert copy.preprocess(1) == 1 and copy.preprocess(300) == 300 and copy.preprocess(None) is None
            assert rebuilt.get_block_name() == "slider"  # drawn as gradio's own
        assert not [b for b in demo.blocks.values() if type(b).__name__ == "Number" and not b.visible
                    and b.elem_id not in ("centre-x", "centre-y")]  # no hidden numbers carrying events
    finally:
        exports.close()
        engine.close()


def test_the_dial_previews_the_pixel_blend_at_once_then_shows_the_network_blend():
    import denoisers
    from app import dialview
    from denoisers.io import to_uint8

    engine = Engine(None, methods=["idresnet", "idgan"])
    exports = ExportDir()
    try:
        ev = Events(engine, Settings(results_root=os.devnull), exports)
        if not all(engine.readiness()[n].ready for n in ("idresnet", "idgan")):
            pytest.skip("the bundled IDResNet/IDGAN weights are not here")
        *_, last = ev.compare(upload(), 25, 0, False, [True, True], 0)
        comp = last["comparison"]
        assert comp.done and comp.methods == ["idresnet", "idgan"]
        assert ev.dial_preview(dataclasses.replace(comp, done=False), 0.3) == {}  # a run going on: wait
        moved = ev.dial_preview(comp, 0.3)["comparison"]
        assert moved.methods == ["idresnet", "idgan@0.3"]  # in IDGAN's place
        ends = comp.results["idresnet"].output, comp.results["idgan"].output
        preview = moved.results["idgan@0.3"]
        assert dialview.is_preview(preview) and np.array_equal(preview.output, dialview.blend(*ends, 0.3))
        assert preview.psnr == pytest.approx(psnr(comp.clean, preview.output))
        assert "idgan" not in moved.results  # the panel shows the dial's setting only
        *_, found = ev.dial_run(moved, 0.3, 0)
        assert found["dial_count"] == 1
        assert ev.dial_apply(moved, 0.35, found["dial_found"], 6) == {}  # the dial moved on: dropped
        assert ev.dial_apply(comp, 0.3, found["dial_found"], 6) == {}  # not the panel's setting: dropped
        final = ev.dial_apply(moved, 0.3, found["dial_found"], 6)
        assert final["results_changed"] == 7
        exact = final["comparison"].results["idgan@0.3"]
        want = to_uint8(denoisers.get("idgan@0.3").denoise(session.noisy_input(comp), 25))
        assert not dialview.is_preview(exact) and np.array_equal(exact.output, want)
        assert exact.ssim is not None and final["comparison"].methods == ["idresnet", "idgan@0.3"]
        view = ev.render(final["comparison"], None, 32, 2, False, None, 25, 0, [True, True], 0.3)
        assert "methods=idresnet,idgan@0.3" in view["link"]
        assert "status" not in view or "Settings changed" not in view["status"]  # the dial is part of the choice
        assert list(ev.dial_run(final["comparison"], 0.3, 1)) == []  # already exact: nothing to compute
        back = ev.dial_preview(final["comparison"], 1.0)["comparison"]
        assert back.methods == ["idresnet", "idgan"] and "idgan" not in back.results  # IDGAN's own: from its run
    finally:
        exports.close()
        engine.close()


def test_the_dials_note_quotes_the_measured_gap_between_pixel_and_network_blend(tmp_path):
    """The slider's note takes network minus pixel blend from the plane's means (mean over the
    A both have, per sigma), not from typed numbers; without a plane it says what the preview
    is and nothing more."""
    import pandas as pd

    from app.dialview import PREVIEW_NOTE, preview_accuracy

    rows = [(25, "idgan@0.2", 32.0, 0.110, 0.2), (25, "pixel@0.2", 31.9, 0.108, 0.2),
            (25, "idgan@0.6", 31.0, 0.100, 0.6), (25, "pixel@0.6", 31.0, 0.097, 0.6),
            (50, "idgan@0.5", 28.0, 0.200, 0.5), (50, "pixel@0.5", 28.05, 0.190, 0.5),
            (50, "pixel@0.7", 27.0, 0.180, 0.7), (25, "dncnn", 32.1, 0.134, None)]
    path = tmp_path / "plane.csv"
    pd.DataFrame(rows, columns=["sigma", "method", "psnr", "lpips", "alpha"]).to_csv(path, index=False)
    note = preview_accuracy(path)
    assert note.startswith(PREVIEW_NOTE)
    assert "+0.050 / -0.050 dB PSNR and +0.0025 / +0.0100 LPIPS against the pixel blend at sigma 25 / 50" in note
    assert preview_accuracy(tmp_path / "missing.csv") == PREVIEW_NOTE
    (tmp_path / "odd.csv").write_text("not,a,plane\n1,2,3\n")
    assert preview_accuracy(tmp_path / "odd.csv") == PREVIEW_NOTE
