"""The Benchmark tab's per-image table opening an image in the Compare tab (``Events.open_from_table``,
called directly): the ticked methods stay ticked, and their cached results show at once."""
import os

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


from app.cache import ResultCache  # noqa: E402
from app.events import Events, Settings  # noqa: E402
from app.outputs import ExportDir  # noqa: E402
from app_support import needs_kodak, needs_nets  # noqa: E402

pytestmark = [needs_kodak, needs_nets]


@pytest.fixture
def events(tmp_path, monkeypatch):
    from app import engine as engine_module

    calls = []

    def fake_timed(denoise, noisy, sigma):  # the noisy input as every method's output: instant
        calls.append(denoise.__self__.name)
        return np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8), 0.01
    monkeypatch.setattr(engine_module, "timed", fake_timed)
    monkeypatch.setattr(engine_module, "perceptual_distance", lambda clean, out: None)  # no LPIPS network here
    engine = engine_module.Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["dncnn", "ffdnet"])
    exports = ExportDir()
    ev = Events(engine, Settings(results_root=os.devnull), exports, kodak_names=["kodim05"])
    ev.calls = calls
    yield ev
    exports.close()
    engine.close()


def run_once(events, flags, sigma=25):
    """A comparison of kodim05 run to the end in the Compare tab (so its results are cached)."""
    out = events.open_from_table("kodak24", sigma, 0, None, ["kodim05.png"], 0)
    return list(events.compare(out["source"], sigma, 0, False, flags, 1))[-1]["comparison"]


def test_a_row_shows_the_ticked_methods_cached_results_at_once(events):
    ran = run_once(events, [False, True])  # FFDNet only
    assert ran.done and not ran.results["ffdnet"].cached and events.calls == ["ffdnet"]
    out = events.open_from_table("kodak24", 25, 0, ran, ["kodim05.png"], 7, [False, True])
    assert not any(key.startswith("method_") for key in out)  # the boxes are left as ticked
    comp = out["comparison"]
    assert comp.done and comp.methods == ["ffdnet"] and comp.results["ffdnet"].cached
    assert np.array_equal(comp.results["ffdnet"].output, ran.results["ffdnet"].output)
    assert comp.results["ffdnet"].psnr == pytest.approx(ran.results["ffdnet"].psnr)
    assert out["status"].startswith("Done: 1 of 1 methods") and "(1 from the cache)" in out["status"]
    assert out["results_changed"] == 8 and events.calls == ["ffdnet"]  # nothing computed again


def test_a_ticked_method_not_cached_waits_for_compare(events):
    run_once(events, [False, True])
    out = events.open_from_table("kodak24", 25, 0, None, ["kodim05.png"], 0, [True, True])
    comp = out["comparison"]
    assert comp.methods == ["ffdnet"] and "dncnn" not in comp.results and events.calls == ["ffdnet"]
    assert "press Compare" in out["status"] and "FFDNet" in out["status"], out["status"]


def test_without_a_cached_result_the_row_opens_the_preview(events):
    run_once(events, [False, True])
    for sigma, flags in ((30, [False, True]), (25, [True, False]), (25, [False, False])):  # other σ, other method
        out = events.open_from_table("kodak24", sigma, 0, None, ["kodim05.png"], 0, flags)
        assert not out["comparison"].methods and not out["comparison"].results
        assert out["status"] == "Loaded kodim05 (768x512). Press Compare."
    assert events.calls == ["ffdnet"]
