"""Crop first: region previews ahead of whole images (``Engine.run(..., box=...)``,
``Engine.previews``), whole images fastest first, the run-time estimate, and ``/compare_crop``'s
work (``crop_api``). Fake methods (a mean filter, timed) except where a real one is named."""
from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
import torch
from scipy import ndimage

from app import crop_api, speeds
from app.cache import ResultCache
from app.convert import InputError, image_id
from app.crop_first import parse_box
from app.engine import Engine, synthetic_noisy
from app_support import needs_nets, png_bytes, smooth_image
from denoisers.base import Denoiser
from denoisers.io import to_uint8
from denoisers.metrics import psnr, ssim

H, W = 64, 80
BOX = (10, 20, 24, 30)


class _Step(torch.nn.Module):
    """One "layer" of a fake network: records when it runs and takes ``pause`` seconds."""

    def __init__(self, pause: float, times: list) -> None:
        super().__init__()
        self.pause, self.times = pause, times

    def forward(self, x):
        self.times.append(time.perf_counter())
        time.sleep(self.pause)
        return x


class _Mean(Denoiser):
    """A 5x5 mean filter (reach 2). The whole image takes ``layers`` torch layers of ``step``
    seconds (a network the engine can hold at a layer); a region takes ``region_pause``."""

    region_margin = 2

    def __init__(self, name: str, calls: list, layers: int = 0, step: float = 0.0, region_pause: float = 0.0):
        self.name, self.label = name, name.title()
        self.calls, self.region_pause = calls, region_pause
        self.layer_times: list[float] = []
        self.net = torch.nn.Sequential(*[_Step(step, self.layer_times) for _ in range(layers)])

    def _denoise(self, noisy, sigma):
        start = time.perf_counter()
        whole = noisy.shape[:2] == (H, W)
        if whole:
            self.net(torch.zeros(1))
        else:
            time.sleep(self.region_pause)
        self.calls.append((self.name, "whole" if whole else "region", start, time.perf_counter()))
        return ndimage.uniform_filter(noisy, size=(5, 5, 1), mode="reflect")


def _engine(tmp_path, fakes: list[Denoiser] | None = None, **kwargs) -> Engine:
    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["ffdnet"], **kwargs)
    e.denoisers = {d.name: d for d in fakes or []}
    return e


def _input(seed=0):
    clean = smooth_image(H, W, seed)
    return clean, synthetic_noisy(clean, 25, 0), image_id(clean)


def _crop(image, box):
    top, left, h, w = box
    return image[top:top + h, left:left + w]


def test_previews_come_first_scored_on_the_crop_and_are_never_cached(tmp_path):
    calls = []
    e = _engine(tmp_path, [_Mean("a", calls), _Mean("b", calls)])
    clean, noisy, iid = _input()
    try:
        results = list(e.run(clean, noisy, iid, 25, 0, ["a", "b"], box=BOX))
        assert [(r.name, r.preview) for r in results if r.preview] == [("a", True), ("b", True)]
        for name in ("a", "b"):
            order = [r.preview for r in results if r.name == name]
            assert order == [True, False]  # the preview, then the whole image
            preview = next(r for r in results if r.name == name and r.preview)
            full = next(r for r in results if r.name == name and not r.preview)
            assert preview.output.shape == (24, 30, 3) and preview.box == BOX and preview.detail is None
            assert np.array_equal(preview.output, _crop(full.output, BOX))  # reach 2 < margin 2: exact
            assert preview.psnr == pytest.approx(psnr(_crop(clean, BOX), preview.output))
            assert preview.ssim == pytest.approx(ssim(_crop(clean, BOX), preview.output))
            assert preview.psnr != pytest.approx(full.psnr) and full.output.shape == (H, W, 3)
            assert not preview.cached and full.box is None
        assert len(list(tmp_path.rglob("*.npy"))) == 2  # the two whole images only
        calls.clear()
        again = list(e.run(clean, noisy, iid, 25, 0, ["a", "b"], box=BOX))
        assert [(r.name, r.cached, r.preview) for r in again] == [("a", True, False), ("b", True, False)]
        assert calls == []  # a cached method gets no preview: its crop is cut from the whole image
    finally:
        e.close()


def test_whole_images_and_previews_go_fastest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(speeds, "SECONDS_PER_MP", {"slow": 100.0, "mid": 10.0, "fast": 1.0})
    calls = []
    e = _engine(tmp_path, [_Mean(n, calls) for n in ("slow", "fast", "mid")], thread_workers=1)
    clean, noisy, iid = _input(1)
    try:
        list(e.run(clean, noisy, iid, 25, 0, ["slow", "fast", "mid"], box=BOX))
        assert [n for n, kind, *_ in calls if kind == "region"] == ["fast", "mid", "slow"]
        assert [n for n, kind, *_ in calls if kind == "whole"] == ["fast", "mid", "slow"]
    finally:
        e.close()


def test_a_whole_image_waits_at_its_next_layer_while_a_preview_runs(tmp_path):
    calls = []
    d = _Mean("net", calls, layers=40, step=0.02, region_pause=0.6)
    e = _engine(tmp_path, [d])
    clean, noisy, iid = _input(2)
    try:
        start = time.perf_counter()
        results = list(e.run(clean, noisy, iid, 25, 0, ["net"], box=BOX))
        wall = time.perf_counter() - start
        (_, _, r_start, r_end), = [c for c in calls if c[1] == "region"]
        assert d.layer_times and not [t for t in d.layer_times if r_start <= t <= r_end]
        assert [r.preview for r in results] == [True, False]
        assert results[1].seconds < wall - 0.4  # the wait is not counted as the method's time
    finally:
        e.close()


def test_a_moved_crop_gets_its_previews_while_whole_images_still_run(tmp_path):
    calls = []
    fakes = [_Mean(n, calls, layers=60, step=0.05, region_pause=0.1) for n in ("a", "b")]
    e = _engine(tmp_path, fakes, thread_workers=1)
    clean, noisy, iid = _input(3)
    try:
        run = e.run(clean, noisy, iid, 25, 0, ["a", "b"], heartbeat=0.1)
        assert next(run) is None  # whole images under way (3 s each, one at a time)
        moved = (30, 40, 20, 20)
        start = time.perf_counter()
        previews = [r for r in e.previews(clean, noisy, iid, 25, 0, ["a", "b"], moved, heartbeat=0.1) if r]
        took = time.perf_counter() - start
        assert [(r.name, r.preview, r.box, r.output.shape) for r in previews] == [
            ("a", True, moved, (20, 20, 3)), ("b", True, moved, (20, 20, 3))]
        assert took < 2.0 and not [c for c in calls if c[1] == "whole"]  # before any whole image
        finals = [r for r in run if r is not None]
        assert sorted(r.name for r in finals) == ["a", "b"] and all(not r.preview for r in finals)
    finally:
        e.close()


def test_a_caller_that_leaves_drops_the_queued_previews(tmp_path):
    calls = []
    e = _engine(tmp_path, [_Mean(n, calls, region_pause=0.5) for n in ("a", "b", "c")])
    clean, noisy, iid = _input(4)
    try:
        gen = e.previews(clean, noisy, iid, 25, 0, ["a", "b", "c"], BOX)
        assert next(gen).name == "a"
        gen.close()
        time.sleep(1.5)
        assert "c" not in [n for n, *_ in calls]  # queued: never ran
        assert e._priority.full_may_run.is_set()  # whole images are no longer held
    finally:
        e.close()


def test_bad_boxes_are_value_errors_naming_the_form(tmp_path):
    e = _engine(tmp_path, [_Mean("a", [])])
    clean, noisy, iid = _input()
    try:
        with pytest.raises(ValueError, match="top, left, height, width"):
            list(e.run(clean, noisy, iid, 25, 0, ["a"], box=(60, 0, 10, 10)))
        with pytest.raises(ValueError, match="top,left,height,width"):
            parse_box("1,2,three,4", noisy.shape)
        assert parse_box(" 1, 2,3 ,4", noisy.shape) == (1, 2, 3, 4)
        assert parse_box([1.0, 2.0, 3.0, 4.0], noisy.shape) == (1, 2, 3, 4)
        with pytest.raises(ValueError, match="top, left, height, width"):
            parse_box([1.5, 2, 3, 4], noisy.shape)
    finally:
        e.close()


def test_a_tiny_crop_has_a_psnr_but_no_ssim_or_lpips(tmp_path):
    e = _engine(tmp_path, [_Mean("a", [])])
    clean, noisy, iid = _input(5)
    try:
        preview = next(r for r in e.run(clean, noisy, iid, 25, 0, ["a"], box=(0, 0, 5, 6)) if r.preview)
        assert preview.output.shape == (5, 6, 3) and preview.psnr > 0
        assert preview.ssim is None and preview.lpips is None
    finally:
        e.close()


def test_the_estimate_counts_cached_methods_as_nothing_and_reads_as_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(speeds, "SECONDS_PER_MP", {"slow": 100.0, "fast": 1.0})
    e = _engine(tmp_path, [_Mean(n, []) for n in ("slow", "fast")])
    clean, noisy, iid = _input(6)
    try:
        assert e.estimate(["slow", "fast"], (500, 2000)) == {"slow": 100.0, "fast": 1.0}
        list(e.run(clean, noisy, iid, 25, 0, ["fast"]))
        assert e.estimate(["slow", "fast"], (500, 2000), iid, 25, 0) == {"slow": 100.0, "fast": 0.0}
        assert e.estimate(["fast"], (500, 2000), iid, 25, 1) == {"fast": 1.0}  # another seed: not cached
    finally:
        e.close()
    label = str.title
    assert speeds.estimate_text({"fast": 1.4, "slow": 48.2, "x": 0.3}, label) == \
        "about 50 s: Slow ~48 s, Fast ~1 s, X <1 s"
    assert speeds.estimate_text({"slow": 48.0, "fast": 0.0}, label) == "about 48 s: Slow ~48 s; cached: Fast"
    assert speeds.estimate_text({"fast": 0.0}, label) == "all cached: ready at once"


def test_the_measured_table_puts_the_networks_before_cbm3d():
    order = speeds.fastest_first(["cbm3d", "idgan", "idresnet", "dncnn", "ffdnet", "idgan@0.3", "plugin"])
    assert order[0] == "ffdnet" and order[-1] == "cbm3d" and order.index("idgan@0.3") < order.index("plugin")
    assert speeds.estimate("ffdnet", (512, 768)) == pytest.approx(speeds.SECONDS_PER_MP["ffdnet"] * 0.393216)


def test_compare_crop_cuts_cached_results_and_runs_the_rest_on_the_region(tmp_path):
    e = _engine(tmp_path, [_Mean("a", []), _Mean("b", [])])
    clean = smooth_image(H, W, 7)
    try:
        record, crops = crop_api.compare_crop(e, png_bytes(clean), 25, 3, ["a", "b"], "10,20,24,30", 10**6)
        assert record["box"] == list(BOX) and list(crops) == ["noisy", "a", "b"]
        assert {m["source"] for m in record["methods"].values()} == {"region"}
        noisy = synthetic_noisy(clean, 25, 3)
        list(e.run(clean, noisy, image_id(clean), 25, 3, ["b"]))  # b's whole image is cached now
        record2, crops2 = crop_api.compare_crop(e, png_bytes(clean), 25, 3, ["a", "b"], [10, 20, 24, 30], 10**6)
        assert record2["methods"]["b"]["source"] == "full" and record2["methods"]["b"]["cached"]
        assert record2["methods"]["a"]["source"] == "region"
        assert np.array_equal(crops2["b"], crops["b"]) and crops2["b"].shape == (24, 30, 3)
        assert record2["methods"]["b"]["psnr"] == pytest.approx(psnr(_crop(clean, BOX), crops2["b"]))
        assert record2["noisy"]["psnr"] == pytest.approx(psnr(_crop(clean, BOX), _crop(to_uint8(noisy), BOX)))
        with pytest.raises(InputError, match="top,left,height,width"):
            crop_api.compare_crop(e, png_bytes(clean), 25, 3, ["a"], "10;20", 10**6)
        with pytest.raises(InputError, match="top, left, height, width"):
            crop_api.compare_crop(e, png_bytes(clean), 25, 3, ["a"], "60,70,10,20", 10**6)
    finally:
        e.close()


@needs_nets
def test_network_previews_equal_the_whole_images_crops(tmp_path):
    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["dncnn", "ffdnet"])
    clean, noisy, iid = _input(8)
    try:
        results = list(e.run(clean, noisy, iid, 25, 0, ["dncnn", "ffdnet"], box=(0, 41, 40, 39)))
        for name in ("dncnn", "ffdnet"):
            preview, full = [r for r in results if r.name == name]
            assert preview.preview and not full.preview
            steps = np.abs(preview.output.astype(int) - _crop(full.output, (0, 41, 40, 39)).astype(int))
            assert steps.max() <= 1
            assert preview.lpips is not None  # 39 px a side: LPIPS is defined
    finally:
        e.close()


def _worker(e: Engine) -> psutil.Process:
    (pid,) = [p.pid for p in e._pool._processes.values()]
    return psutil.Process(pid)


def test_the_cbm3d_worker_is_suspended_while_a_preview_runs(tmp_path):
    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["cbm3d"])
    if not e.denoisers["cbm3d"].readiness(25).ready:
        e.close()
        pytest.skip("bm3d is not installed")
    calls = []
    e.denoisers["slow"] = _Mean("slow", calls, region_pause=1.5)
    clean = smooth_image(160, 160, 9)
    noisy = synthetic_noisy(clean, 25, 0)
    try:
        e.start()
        run = e.run(clean, noisy, image_id(clean), 25, 0, ["cbm3d"], heartbeat=0.1)
        assert next(run) is None
        previews = e.previews(clean, noisy, image_id(clean), 25, 0, ["slow"], (0, 0, 16, 16), heartbeat=0.2)
        assert next(previews) is None  # the slow preview is pending
        assert _worker(e).status() == psutil.STATUS_STOPPED
        assert next(r for r in previews if r is not None).preview
        assert _worker(e).status() != psutil.STATUS_STOPPED
        (full,) = [r for r in run if r is not None]
        assert full.error is None and full.output.shape == (160, 160, 3)
    finally:
        e.close()


def test_the_session_keeps_previews_apart_from_the_results(tmp_path):
    from app import session

    e = _engine(tmp_path, [_Mean("a", []), _Mean("b", [])])
    clean = smooth_image(H, W, 10)
    src = session.Source("upload", clean, image_id(clean))
    try:
        comp, noisy = session.new_comparison(e, src, 25, 0, False, ["a", "b"])
        previews: dict = {}
        list(session.run(e, comp, noisy, box=BOX, previews=previews))
        assert sorted(previews) == ["a", "b"] and all(p.preview and p.box == BOX for p in previews.values())
        assert all(not r.preview and r.output.shape == (H, W, 3) for r in comp.results.values())
        comp2, noisy2 = session.new_comparison(e, src, 25, 1, False, ["a", "b"])
        comp2.results["a"] = comp.results["a"]  # as if a's whole image had come in already
        moved: dict = {}
        list(session.moved_crop(e, comp2, noisy2, (0, 0, 8, 8), moved))
        assert list(moved) == ["b"] and moved["b"].output.shape == (8, 8, 3)
    finally:
        e.close()


def test_a_preview_of_an_input_without_ground_truth_has_no_scores(tmp_path):
    e = _engine(tmp_path, [_Mean("a", [])])
    _, noisy, iid = _input(11)
    try:
        preview, full = list(e.run(None, noisy, iid, 25, None, ["a"], box=BOX))
        assert preview.preview and preview.output.shape == (24, 30, 3)
        assert (preview.psnr, preview.ssim, preview.lpips) == (None, None, None)
        assert not full.preview and full.psnr is None
    finally:
        e.close()
