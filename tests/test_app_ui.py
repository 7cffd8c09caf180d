"""The UI's event handlers, called directly (no server, no browser)."""
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


@needs_kodak
@pytest.mark.parametrize("name, event", [
    ("open_from_table", SimpleNamespace(row_value=["kodim05.png"], index=[0, 0])),
    ("pick_kodak", SimpleNamespace(index=4, row_value=None)),
])
def test_opening_a_kodak_image_unticks_already_noisy(ui, name, event):
    fn, outputs = handler(ui, name)
    assert "already-noisy" in outputs
    args = ("kodak24", 25, 0, 0) if name == "open_from_table" else (25, 0, 0)
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
        assert boxes["method-idresnet"].info == "trained for sigma 25, 50" and boxes["method-idresnet"].value
        assert boxes["method-ffdnet"].info is None
    finally:
        exports.close()
        engine.close()
