"""The UI's event handlers, called directly (no server, no browser)."""
import dataclasses
import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app import session  # noqa: E402
from app.convert import image_id  # noqa: E402
from app.engine import Engine  # noqa: E402
from app.ui import Settings, build  # noqa: E402
from app_support import needs_kodak, smooth_image  # noqa: E402


@pytest.fixture(scope="module")
def ui():
    engine = Engine(None, methods=["ffdnet"])
    demo, exports = build(engine, Settings(results_root=os.devnull))
    yield demo
    exports.close()
    engine.close()


def handler(demo, name):
    """The function ``name`` and the elem_ids / labels of its outputs."""
    for fn in demo.fns.values():
        if fn.name == name:
            return fn.fn, [getattr(o, "elem_id", None) or getattr(o, "label", None) for o in fn.outputs]
    raise LookupError(name)


def upload():
    img = smooth_image(48, 64)
    return session.Source("upload", img, image_id(img))


def test_unticking_already_noisy_rebuilds_the_preview_with_synthetic_noise(ui):
    fn, _ = handler(ui, "on_noisy_switch")
    src = upload()
    _, _, noisy_comp, tick = fn(src, True, 25, 0, 0)
    assert noisy_comp.clean is None and tick == 1  # the input as it is, no ground truth
    _, note, comp, tick = fn(src, False, 25, 0, tick)
    assert comp is not None and comp.clean is not None and comp.noisy.psnr is not None
    assert (comp.noisy.output != src.image).any()  # synthetic noise, not the input shown as is
    assert tick == 2 and "Press Compare" in note
    import gradio as gr

    for sigma in (None, 3):  # the σ box left empty or out of range: said plainly
        with pytest.raises(gr.Error, match="sigma must be"):
            fn(src, False, sigma, 0, tick)


@needs_kodak
@pytest.mark.parametrize("name, event", [
    ("open_from_table", SimpleNamespace(row_value=["kodim05.png"], index=[0, 0])),
    ("pick_kodak", SimpleNamespace(index=4, row_value=None)),
])
def test_opening_a_kodak_image_unticks_already_noisy(ui, name, event):
    fn, outputs = handler(ui, name)
    assert "already-noisy" in outputs
    args = ("kodak24", 25, 0, 0, None) if name == "open_from_table" else (25, 0, 0)
    out = fn(*args, event)
    assert out[outputs.index("already-noisy")] is False
    comp = out[2]
    assert comp.source == "kodim05" and comp.clean is not None and comp.noisy.psnr is not None


def test_a_plain_visit_leaves_the_view_alone(ui):
    """The page-load event of a visit without a link must not overwrite an image picked while
    it was on its way (the picked image was reset and Compare said "pick an image first")."""
    import gradio as gr

    fn, outputs = handler(ui, "on_load")
    out = fn(0, SimpleNamespace(query_params={}))
    assert len(out) == len(outputs) and all(isinstance(o, type(gr.skip())) for o in out)
    assert not {"bench-detail", "bench-paired", "per-image"} & set(outputs)  # filled in by their own event


def test_a_link_restores_its_view(ui):
    fn, outputs = handler(ui, "on_load")
    out = fn(0, SimpleNamespace(query_params={"sigma": "35", "seed": "7"}))
    assert out[outputs.index("status")] == "Pick a Kodak24 image or upload one, then press Compare."
    assert out[outputs.index("sigma")] == 35 and out[outputs.index("seed")] == 7


def test_method_boxes_say_what_a_generator_was_trained_for(tiny_generators):
    engine = Engine(None, methods=["idresnet", "ffdnet"])
    demo, exports = build(engine, Settings(results_root=os.devnull))
    try:
        boxes = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", "") in
                 ("method-idresnet", "method-ffdnet")}
        assert boxes["method-idresnet"].info == "trained by this project, briefly so far (its model card says how long); trained for sigma 25, 50"
        assert boxes["method-idresnet"].value
        assert boxes["method-ffdnet"].info.startswith("trained for sigma 0-75")  # the FFDNet paper's range
    finally:
        exports.close()
        engine.close()


def _running(methods=("ffdnet",), done=()):
    engine = Engine(None, methods=["ffdnet"])
    try:
        comp, _ = session.new_comparison(engine, upload(), 25, 0, False, list(methods))
    finally:
        engine.close()
    for m in done:
        comp.results[m] = comp.noisy
    return comp


@needs_kodak
def test_a_link_runs_its_comparison_only_when_it_names_methods(ui):
    """A preview's link (no methods) opens the image and waits: reloading it must not start
    every method (CBM3D included) on its own."""
    fn, outputs = handler(ui, "on_load")
    autorun = 8  # [source, comparison, centre, tick, sigma, seed, crop, zoom, autorun, status, boxes...]
    waits = fn(0, SimpleNamespace(query_params={"image": "kodim05", "sigma": "25"}))
    runs = fn(0, SimpleNamespace(query_params={"image": "kodim05", "sigma": "25", "methods": "ffdnet"}))
    assert waits[autorun] is False and runs[autorun] is True
    assert waits[outputs.index("status")].endswith("Press Compare.")


def test_removing_an_old_upload_keeps_the_kodak_image_picked_since(ui):
    import gradio as gr

    fn, outputs = handler(ui, "on_upload_cleared")
    kodak_source = session.Source("kodim02", smooth_image(48, 64), "id")
    assert all(isinstance(o, type(gr.skip())) for o in fn(kodak_source, 3))
    out = fn(upload(), 3)
    assert out[0] is None and out[3] == 4 and "Upload removed" in out[outputs.index("status")]


def test_a_benchmark_row_does_not_replace_an_image_whose_comparison_runs(ui):
    import gradio as gr

    fn, _ = handler(ui, "open_from_table")
    event = SimpleNamespace(row_value=["kodim05.png"], index=[0, 0])
    with pytest.raises(gr.Error, match="still running"):
        fn("kodak24", 25, 0, 0, _running(), event)


def test_changing_methods_after_a_run_says_the_panels_are_stale(ui):
    import gradio as gr

    fn, _ = handler(ui, "settings_changed")
    finished = _scored({"ffdnet": 30.0})
    finished.elapsed = 1.0
    assert fn(finished, 25, 0, True).startswith("Done")  # as it ran: what the panels show, no hint
    assert "press Compare" in fn(finished, 25, 0, False)  # FFDNet unticked since
    stale = fn(finished, 30, 0, True)
    assert stale.startswith("Done") and "Settings changed: press Compare" in stale  # the summary stays too
    preview = _running(methods=())
    assert isinstance(fn(preview, 25, 0, False), type(gr.skip()))  # nothing ran yet: nothing stale
    assert "press Compare" in fn(preview, 30, 0, False)  # its noise is of the old sigma
    came_noisy = dataclasses.replace(preview, seed=None, clean=None, note="Loaded upload; estimated noise σ ≈ 31")
    assert fn(came_noisy, 40, 0, False) == came_noisy.note  # σ changes nothing its panels show


def test_an_already_noisy_kodak_view_is_not_put_in_a_link(ui):
    """A link adds synthetic noise to a Kodak image; an 'already noisy' view of one is another
    comparison, so its link names no image rather than a wrong one."""
    fn, outputs = handler(ui, "render")
    engine = Engine(None, methods=["ffdnet"])
    try:
        src = session.Source("kodim05", smooth_image(48, 64), "id")
        noisy_view, _ = session.new_comparison(engine, src, 25, 0, True, [])
        clean_view, _ = session.new_comparison(engine, src, 25, 0, False, [])
    finally:
        engine.close()
    link = outputs.index("link-query")
    assert "image=" not in fn(noisy_view, None, 96, 4, False)[link]
    assert "image=kodim05" in fn(clean_view, None, 96, 4, False)[link]


@needs_kodak
def test_a_link_with_problems_opens_its_image_and_waits(ui):
    """Unknown methods (or a bad sigma) must not make a link run every method at the defaults."""
    fn, outputs = handler(ui, "on_load")
    autorun = 8
    with pytest.warns(UserWarning, match="Ignored in the link: sigma must be between"):  # the toast
        out = fn(0, SimpleNamespace(query_params={"image": "kodim05", "sigma": "80", "methods": "foo"}))
    assert out[autorun] is False
    status = out[outputs.index("status")]
    assert status.startswith("Loaded kodim05 from the link. Press Compare.") and "Ignored in the link" in status


def test_moving_the_crop_leaves_the_status_line_alone(ui):
    """A 'settings changed' hint must survive a click or a zoom change on the old panels (and
    a result arriving): every render writes the status for the current settings."""
    fn, outputs = handler(ui, "render")
    finished = _scored({"ffdnet": 30.0})
    finished.elapsed = 1.0
    first = fn(finished, None, 96, 4, False, None, 25, 0, True)
    assert first[outputs.index("status")].startswith("Done") and "Settings" not in first[outputs.index("status")]
    moved = fn(finished, (10, 10), 96, 4, False, first[-1], 30, 0, True)  # sigma 30 chosen since, crop moved
    status = moved[outputs.index("status")]
    assert status.startswith("Done") and "Settings changed: press Compare to run them (the panels show σ 25" in status
    assert moved[outputs.index("centre-x")]["value"] == 10  # the boxes follow the move
    back = fn(finished, (10, 10), 96, 2, False, moved[-1], 25, 0, True)  # sigma set back: no hint
    assert "Settings" not in back[outputs.index("status")]


def _scored(methods_psnr: dict, truth: bool = True):
    """A comparison whose methods finished in the given order with the given PSNRs."""
    from app.engine import MethodResult

    comp = _running(methods=tuple(methods_psnr))
    if not truth:
        comp.clean, comp.seed = None, None
    for name, value in methods_psnr.items():
        comp.results[name] = MethodResult(name, name.upper(), comp.noisy.output, psnr=value if truth else None,
                                          ssim=0.9 if truth else None, seconds=1.0, detail=0.5 if truth else None)
    return comp


def test_the_ab_slider_shows_the_best_method_until_the_user_picks_another(ui):
    fn, _ = handler(ui, "ab_follow")
    first = _scored({"ffdnet": 30.0})  # the only one so far
    left, right, _, _ = fn(first, None, None, None, None)
    assert (left["value"], right["value"]) == ("clean", "ffdnet")
    comp = _scored({"ffdnet": 30.0})
    comp.methods.insert(0, "dncnn")
    from app.engine import MethodResult

    comp.results["dncnn"] = MethodResult("dncnn", "DNCNN", comp.noisy.output, psnr=31.0, ssim=0.9, seconds=1.0,
                                         detail=0.5)  # finished later, better
    _, right, _, _ = fn(comp, "clean", "ffdnet", None, None)
    assert right["value"] == "dncnn"
    pinned = (comp.image_id, comp.sigma, comp.seed)
    _, right, _, _ = fn(comp, "clean", "ffdnet", None, pinned)  # the user chose FFDNet: it stays
    assert right["value"] == "ffdnet"
    blind = _scored({"ffdnet": None}, truth=False)  # already noisy: no best; the result, not the input
    left, right, _, _ = fn(blind, None, None, None, None)
    assert (left["value"], right["value"]) == ("noisy", "ffdnet")


def test_a_left_side_the_user_chose_comes_back_with_the_next_results(ui):
    fn, _ = handler(ui, "ab_follow")
    preview = _scored({})  # another image picked: only its ground truth and noisy input so far
    left, _, _, _ = fn(preview, "ffdnet", "noisy", None, None, "full", None, 32, 2, "ffdnet")
    assert left["value"] == "clean"
    done = _scored({"ffdnet": 30.0})
    left, right, _, _ = fn(done, "clean", "noisy", None, None, "full", None, 32, 2, "ffdnet")
    assert (left["value"], right["value"]) == ("ffdnet", "ffdnet")
    pick, _ = handler(ui, "ab_pick_left")
    assert pick(done, "noisy", "ffdnet", "full", None, 32, 2)[-1] == "noisy"  # a new choice replaces it


def test_the_ab_slider_can_show_the_zoomed_crop_and_follows_it(ui):
    import gradio as gr
    import numpy as np

    from app import crops

    def nothing_sent(out):
        return all(isinstance(o, type(gr.skip())) for o in out[2:])

    fn, _ = handler(ui, "ab_follow")
    comp = _scored({"ffdnet": 30.0})
    _, _, whole, shown = fn(comp, None, None, None, None)
    assert whole[0] is comp.clean
    # A crop move changes nothing on a slider showing the whole images: nothing is sent.
    assert nothing_sent(fn(comp, "clean", "ffdnet", shown, None, "full", (20, 20), 32, 2))
    _, _, pair, shown = fn(comp, "clean", "ffdnet", shown, None, "crop", (20, 20), 32, 2)
    box = crops.crop_box((20, 20), 32, comp.shape)
    assert np.array_equal(pair[0], crops.zoomed_crop(comp.clean, box, 2))
    assert np.array_equal(pair[1], crops.zoomed_crop(comp.results["ffdnet"].output, box, 2))
    assert nothing_sent(fn(comp, "clean", "ffdnet", shown, None, "crop", (20, 20), 32, 2))
    _, _, moved, _ = fn(comp, "clean", "ffdnet", shown, None, "crop", (40, 30), 32, 3)  # moved, zoomed
    assert np.array_equal(moved[0], crops.zoomed_crop(comp.clean, crops.crop_box((40, 30), 32, comp.shape), 3))
    update, _ = handler(ui, "ab_update")
    assert update(comp, "clean", "ffdnet", "crop", None, 32, 2)[2][0].shape == (64, 64, 3)  # centred box
    # Back to whole images by hand: what that sent is recorded, so the next crop move sends nothing.
    *_, picked = update(comp, "clean", "ffdnet", "full", (40, 30), 32, 3)
    assert nothing_sent(fn(comp, "clean", "ffdnet", picked, None, "full", (50, 50), 32, 3))


def test_error_maps_reach_the_crops_and_the_link(ui):
    from app import crops, handlers

    fn, outputs = handler(ui, "render")
    comp = _scored({"ffdnet": 30.0})
    out = fn(comp, (20, 20), 32, 2, True)
    maps, _ = handlers.error_views(comp)
    slot = [p.key for p in handlers.panels(comp)].index("ffdnet")
    crop = out[outputs.index(f"crop-{slot}")]
    box = crops.crop_box((20, 20), 32, comp.shape)
    from denoisers.io import read_image

    assert (read_image(crop["value"]) == crops.zoomed_crop(maps["ffdnet"], box, 2)).all()  # a lossless PNG
    assert crop["label"].endswith(" · error map")
    assert crop["value"].endswith(f"upload_sigma25_seed0_ffdnet_errors_crop_x{box.x0}_y{box.y0}_32px_2x.png")
    full = out[outputs.index(f"full-{slot}")]
    assert full["value"].endswith("upload_sigma25_seed0_ffdnet_errors_with_crop_box.png")  # not the bare output
    assert "errors=1" in out[outputs.index("link-query")]
    assert "errors" not in fn(comp, (20, 20), 32, 2, False)[outputs.index("link-query")]
    blind = _scored({"ffdnet": None}, truth=False)
    box_update = fn(blind, None, 32, 2, True)[outputs.index("errors")]
    assert box_update["interactive"] is False and "no ground truth" in box_update["info"]


def test_panel_files_are_kept_a_short_while_and_exports_longer(monkeypatch):
    from app import ui as ui_module

    exports = ui_module.ExportDir()
    try:
        view, export_folder = exports.views.new(), exports.new()
        (view / "a.png").write_bytes(b"x")
        old = ui_module.time.time() - ui_module.VIEW_MAX_AGE - 1
        os.utime(view, (old, old))
        older = ui_module.time.time() - ui_module.EXPORT_MAX_AGE - 1
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


def test_a_preview_s_render_writes_its_note_and_result_renders_leave_the_centre_boxes(ui):
    """After the render of an input left behind, the render of the one chosen since puts its
    status back; and renders of arriving results never write over a number being typed."""
    import gradio as gr

    fn, outputs = handler(ui, "render")
    engine = Engine(None, methods=["ffdnet"])
    try:
        preview, _ = session.new_comparison(engine, upload(), 25, 0, False, [])
    finally:
        engine.close()
    preview.note = "Loaded upload (64x48). Press Compare."
    stale = _scored({"ffdnet": 30.0})
    before = fn(stale, None, 96, 4, False, None)  # a render of the input left behind
    out = fn(preview, None, 96, 4, False, before[-1])
    assert out[outputs.index("status")] == preview.note
    fresh = fn(preview, None, 96, 4, False, None)  # a page's first render fills the boxes and shows them
    assert [fresh[outputs.index(box)] for box in ("centre-x", "centre-y")] == [
        gr.update(value=32, visible=True), gr.update(value=24, visible=True)]
    gone = fn(None, None, 96, 4, False, fresh[-1])  # no input any more (a refused upload): hidden again
    assert [gone[outputs.index(box)]["visible"] for box in ("centre-x", "centre-y")] == [False, False]
    running = _scored({"ffdnet": 30.0})
    first = fn(running, None, 96, 4, False, out[-1])
    later = fn(running, None, 96, 4, False, first[-1])  # the next result's render: same centre
    assert isinstance(later[outputs.index("centre-x")], type(gr.skip()))


def test_the_benchmark_table_mentions_published_values_only_where_the_set_has_some(ui):
    fn, _ = handler(ui, "show_benchmark")
    kodak, cbsd = fn("kodak24", 25)[1], fn("cbsd68", 25)[1]
    assert "beside the published values" in kodak["label"]
    assert "no published values on this set" in cbsd["label"] and "paper" not in cbsd["label"]


def test_the_slider_boxes_accept_any_number_while_typed_even_after_an_update(ui):
    """Gradio refused a number outside a slider's range before any handler ran (an error toast
    per keystroke: "1" on the way to "15"); ours let it through to handlers that check it. Any
    update to a component, ``gr.skip()`` included, makes gradio rebuild the session's copy of
    it from its class and constructor arguments: the copy must be as lenient."""
    sliders = {b.elem_id: b for b in ui.blocks.values() if getattr(b, "elem_id", None) in
               ("sigma", "crop-size", "zoom", "ab-position")}
    assert len(sliders) == 4
    for block in sliders.values():
        rebuilt = block.__class__(**{**block.constructor_args, "render": False})
        for copy in (block, rebuilt):
            assert copy.preprocess(1) == 1 and copy.preprocess(300) == 300 and copy.preprocess(None) is None
        assert rebuilt.get_block_name() == "slider"  # drawn as gradio's own
