"""The engine and session steps with the real fast methods on small images."""
import time

import numpy as np
import psutil
import pytest

import denoisers
from app import engine as engine_module
from app import session, views
from app.cache import ResultCache
from app.convert import InputError, image_id
from app.engine import Engine, synthetic_noisy
from app_support import needs_nets, png_bytes, smooth_image
from denoisers.io import to_float, to_uint8
from denoisers.metrics import add_noise, detail_ratio, score


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine(ResultCache(tmp_path_factory.mktemp("cache"), max_bytes=10**8))
    yield e
    e.close()


def wait_until(condition, what: str, seconds: float = 30) -> None:
    """Wait for ``condition()``; fail, saying ``what`` never happened, after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.01)


def _workers() -> list[psutil.Process]:
    """This process's worker processes (the pool's spawned children)."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and "spawn_main" in " ".join(p.cmdline())]


def source(h=48, w=64, seed=0):
    img = smooth_image(h, w, seed)
    return session.Source("upload", img, image_id(img))


def test_the_noisy_preview_is_scored_but_not_cached(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=10**8)
    e = Engine(cache, methods=["ffdnet"])
    try:
        src = source()
        comp, noisy = session.new_comparison(e, src, 25, 0, False, [])
        assert (comp.noisy.psnr, comp.noisy.ssim) == pytest.approx(score(src.image, to_float(comp.noisy.output)))
        assert not comp.noisy.cached
        assert list(tmp_path.rglob("*.npy")) == [] and cache.size_bytes() == 0
    finally:
        e.close()


def test_noise_is_the_protocols():
    clean = smooth_image()
    assert np.array_equal(synthetic_noisy(clean, 25, 3), add_noise(to_float(clean), 25, 3))


@needs_nets
def test_results_match_running_the_denoiser_directly_and_are_cached(engine, monkeypatch):
    src = source()
    comp, noisy = session.new_comparison(engine, src, 25, 0, False, ["ffdnet", "dncnn"])
    assert comp.methods == ["dncnn", "ffdnet"]  # display order
    list(session.run(engine, comp, noisy))
    for name in ("dncnn", "ffdnet"):
        r = comp.results[name]
        direct = denoisers.get(name).denoise(add_noise(to_float(src.image), 25, 0), 25)
        assert (r.psnr, r.ssim) == pytest.approx(score(src.image, direct))
        assert r.detail == pytest.approx(detail_ratio(src.image, to_uint8(direct)))
        assert 0 < r.detail < 1  # a denoiser smooths some of the clean image's fine detail away
        assert not r.cached and r.seconds > 0
    again, noisy2 = session.new_comparison(engine, src, 25, 0, False, ["dncnn", "ffdnet"])

    def no_work(*args, **kwargs):
        raise AssertionError("a cached result was computed again")

    with monkeypatch.context() as m:  # no network may run
        m.setattr(engine_module, "timed", no_work)
        list(session.run(engine, again, noisy2))
    for name in ("dncnn", "ffdnet"):
        assert again.results[name].cached
        assert np.array_equal(again.results[name].output, comp.results[name].output)
        assert again.results[name].psnr == comp.results[name].psnr
        assert again.results[name].detail == comp.results[name].detail
    assert not again.noisy.cached and again.noisy.psnr == comp.noisy.psnr
    # Another seed is another key: computed afresh.
    other, noisy3 = session.new_comparison(engine, src, 25, 1, False, ["ffdnet"])
    list(session.run(engine, other, noisy3))
    assert not other.results["ffdnet"].cached and other.results["ffdnet"].psnr != comp.results["ffdnet"].psnr


def test_results_say_which_model_and_precision_made_them_and_the_cache_keeps_them_apart(tmp_path, monkeypatch):
    """A bf16 output is not the fp32 one the evaluation CLI scores: each result records its
    weights and numerics, and an engine in another precision never takes the other's result."""
    cache = ResultCache(tmp_path, max_bytes=10**8)
    src = source()
    outputs = {}
    for precision in ("bf16", "fp32", "bf16"):
        monkeypatch.setenv("DENOISERS_PRECISION", precision)
        e = Engine(cache, methods=["ffdnet"])
        try:
            comp, noisy = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
            list(session.run(e, comp, noisy))
        finally:
            e.close()
        r = comp.results["ffdnet"]
        assert r.numerics == f"{precision} on cpu" and r.weights == denoisers.get("ffdnet").weights_id(25)
        assert r.cached == (precision in outputs)
        outputs.setdefault(precision, r.output)
    assert not np.array_equal(outputs["bf16"], outputs["fp32"])


def test_a_waiting_run_beats_so_a_cancelled_caller_ends_at_once_and_its_network_stops(tmp_path, monkeypatch):
    """A web request is cancelled between yields: without a heartbeat it would hang on until
    the slowest method finished. The network that was running is stopped at its next layer:
    nothing is cached, and the next comparison computes it afresh."""
    import time

    cache = ResultCache(tmp_path, max_bytes=10**8)
    e = Engine(cache, methods=["ffdnet"])
    real = engine_module.timed

    def slow(d, noisy, sigma):
        time.sleep(1.0)
        return real(d, noisy, sigma)

    monkeypatch.setattr(engine_module, "timed", slow)
    try:
        src = source()
        comp, noisy = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        run = session.run(e, comp, noisy, heartbeat=0.1)
        start = time.perf_counter()
        assert next(run) is None and time.perf_counter() - start < 0.5  # a beat, long before the result
        run.close()  # the caller goes away (Stop)
        assert "ffdnet" not in comp.results
        wait_until(lambda: e.under_way() == [], "the abandoned work being let go")  # it stops at its next layer
        again, noisy2 = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        list(session.run(e, again, noisy2))
        assert not again.results["ffdnet"].cached and again.results["ffdnet"].output is not None
    finally:
        e.close()


@needs_nets
def test_a_method_outside_its_training_range_says_so_fresh_and_cached(engine):
    src = source(seed=5)
    for _ in range(2):  # computed, then from the cache
        comp, noisy = session.new_comparison(engine, src, 70, 0, False, ["dncnn", "ffdnet"])
        list(session.run(engine, comp, noisy))
        assert comp.results["dncnn"].note == "not trained for sigma 70: trained for sigma 0-55"
        assert comp.results["ffdnet"].note == ""  # trained up to 75
        rows = {row[0]: row[-1] for row in views.scores_table(comp)}
        assert "not trained for sigma 70" in rows["DnCNN"] and "not trained" not in rows["FFDNet"]
    assert comp.results["dncnn"].cached
    record, _ = session.api_compare(engine, png_bytes(src.image), 70, 0, ["dncnn"], 10**6)
    assert record["methods"]["dncnn"]["note"].startswith("not trained for sigma 70")


def test_a_result_under_way_is_shared_not_computed_twice(tmp_path, monkeypatch):
    """A reload mid-run (the first comparison abandoned) or a second visitor of the same link
    waits on the computation already running."""
    import threading
    import time as _time

    calls = []

    def slow(d, noisy, sigma):
        calls.append(d.__self__.name)
        _time.sleep(1.0)
        return to_uint8(np.clip(noisy, 0, 1)), 1.0

    monkeypatch.setattr(engine_module, "timed", slow)
    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["ffdnet"])
    try:
        src = source(seed=9)
        first, noisy = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        abandoned = session.run(e, first, noisy, heartbeat=0.1)
        assert next(abandoned) is None  # under way
        second, noisy2 = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        results = []
        waiter = threading.Thread(target=lambda: results.extend(session.run(e, second, noisy2)))
        waiter.start()
        wait_until(lambda: e.under_way() == [(True, 2)], "the second comparison joining the work")
        abandoned.close()  # the first page went away: the computation goes on for the second
        waiter.join(10)
        assert not waiter.is_alive() and calls == ["ffdnet"]
        assert second.results["ffdnet"].output is not None and not second.results["ffdnet"].cached
        third, noisy3 = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        list(session.run(e, third, noisy3))
        assert third.results["ffdnet"].cached and calls == ["ffdnet"]
    finally:
        e.close()


def test_a_queued_result_left_by_one_comparison_still_reaches_the_other(tmp_path, monkeypatch):
    """The first comparison goes away while the shared work is still queued: it must not be
    cancelled under the second one (which would show a CancelledError for it)."""
    import threading

    calls = []
    gate = threading.Event()

    def quick(d, noisy, sigma):
        if sigma == 30:  # the comparison that keeps the one worker busy
            gate.wait(30)
        calls.append((d.__self__.name, sigma))
        return to_uint8(np.clip(noisy, 0, 1)), 0.1

    monkeypatch.setattr(engine_module, "timed", quick)
    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["ffdnet"], thread_workers=1)
    try:
        busy_src = source(seed=12)
        busy, busy_noisy = session.new_comparison(e, busy_src, 30, 0, False, ["ffdnet"])
        busy_run = session.run(e, busy, busy_noisy, heartbeat=0.05)
        assert next(busy_run) is None
        wait_until(lambda: e.under_way() == [(True, 1)], "the busy comparison's start")
        src = source(seed=10)
        first, noisy = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        left = session.run(e, first, noisy, heartbeat=0.05)
        assert next(left) is None
        second, noisy2 = session.new_comparison(e, src, 25, 0, False, ["ffdnet"])
        results = []
        waiter = threading.Thread(target=lambda: results.extend(session.run(e, second, noisy2)))
        waiter.start()
        wait_until(lambda: (False, 2) in e.under_way(), "the second comparison joining the queued work")
        left.close()
        gate.set()
        waiter.join(10)
        assert not waiter.is_alive()
        r = second.results["ffdnet"]
        assert r.error is None and r.output is not None and calls.count(("ffdnet", 25)) == 1
        list(busy_run)
        wait_until(lambda: e.under_way() == [], "the finished work being forgotten")  # read from the cache now
        # Left alone, queued work is dropped, and nothing waits on it afterwards.
        gate.clear()
        busy, busy_noisy = session.new_comparison(e, source(seed=13), 30, 0, False, ["ffdnet"])
        busy_run = session.run(e, busy, busy_noisy, heartbeat=0.05)
        assert next(busy_run) is None
        third, noisy3 = session.new_comparison(e, source(seed=11), 25, 0, False, ["ffdnet"])
        gone = session.run(e, third, noisy3, heartbeat=0.05)
        assert next(gone) is None
        gone.close()
        gate.set()
        list(busy_run)
        wait_until(lambda: e.under_way() == [], "the dropped work being forgotten")
        assert calls.count(("ffdnet", 25)) == 1  # the third comparison's work never ran
    finally:
        gate.set()
        e.close()


@needs_nets
def test_already_noisy_input_has_no_scores(engine):
    clean = smooth_image(48, 64)
    noisy_u8 = np.clip(clean + np.random.default_rng(0).normal(0, 20, clean.shape), 0, 255).round().astype(np.uint8)
    src = session.Source("upload", noisy_u8, image_id(noisy_u8))
    comp, noisy = session.new_comparison(engine, src, 20, 0, True, ["ffdnet"])
    assert comp.clean is None and comp.seed is None and np.array_equal(comp.noisy.output, noisy_u8)
    list(session.run(engine, comp, noisy))
    r = comp.results["ffdnet"]
    assert r.output.shape == noisy_u8.shape and r.psnr is None and r.ssim is None and r.detail is None


def test_unready_and_unknown_methods_never_run(engine):
    src = source()
    with pytest.raises(InputError, match="unknown methods"):
        session.new_comparison(engine, src, 25, 0, False, ["nope"])
    comp, noisy = session.new_comparison(engine, src, 25, 0, False, ["idresnet"])
    list(session.run(engine, comp, noisy))
    if not engine.denoisers["idresnet"].readiness(25).ready:
        r = comp.results["idresnet"]
        assert r.output is None and "not ready" in r.error


def test_cbm3d_runs_in_its_own_process_beside_the_networks(engine):
    if not engine.denoisers["cbm3d"].readiness(25).ready:
        pytest.skip("bm3d not installed")
    src = source(40, 40)
    methods = ["cbm3d"] + (["ffdnet"] if engine.denoisers["ffdnet"].readiness(25).ready else [])
    comp, noisy = session.new_comparison(engine, src, 25, 0, False, methods)
    order = [c.results.keys() for c in session.run(engine, comp, noisy)]
    r = comp.results["cbm3d"]
    assert r.error is None and r.output.shape == (40, 40, 3)
    direct = denoisers.get("cbm3d").denoise(add_noise(to_float(src.image), 25, 0), 25)
    assert r.psnr == pytest.approx(score(src.image, direct)[0])
    assert _workers(), "no worker process ran it"  # it went through the process pool
    assert len(order) == len(methods)
    assert "Best PSNR" in session.summary(comp, 1.0)


@needs_nets
def test_a_caller_leaving_at_a_cached_result_still_leaves_no_work_behind(tmp_path, monkeypatch):
    """Stop (or another image) can end a comparison at any yield, a cached result's included:
    the work already submitted is then abandoned like any other: stopped at its next layer, not
    cached, and no longer counted as under way."""
    import time

    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["dncnn", "ffdnet"])
    real = engine_module.timed
    try:
        src = source()
        noisy = synthetic_noisy(src.image, 25, 0)
        list(e.run(src.image, noisy, src.image_id, 25, 0, ["ffdnet"]))  # ffdnet is cached now

        def slow(d, x, sigma):
            time.sleep(1.0)
            return real(d, x, sigma)

        monkeypatch.setattr(engine_module, "timed", slow)
        run = e.run(src.image, noisy, src.image_id, 25, 0, ["dncnn", "ffdnet"], heartbeat=0.1)
        first = next(run)  # dncnn is submitted; ffdnet comes from the cache
        assert first.name == "ffdnet" and first.cached
        wait_until(lambda: e.under_way() == [(True, 1)], "dncnn's start")  # running (a queued one is dropped)
        run.close()
        wait_until(lambda: e.under_way() == [], "dncnn being stopped")  # and no longer under way
        monkeypatch.setattr(engine_module, "timed", real)
        again = {r.name: r for r in e.run(src.image, noisy, src.image_id, 25, 0, ["dncnn"])}
        assert not again["dncnn"].cached and again["dncnn"].output is not None  # computed afresh
    finally:
        e.close()


@needs_nets
def test_a_result_that_cannot_be_cached_is_still_shown(tmp_path, monkeypatch):
    cache = ResultCache(tmp_path, max_bytes=10**8)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "put", full_disk)
    e = Engine(cache, methods=["ffdnet"])
    try:
        src = source()
        [r] = list(e.run(src.image, synthetic_noisy(src.image, 25, 0), src.image_id, 25, 0, ["ffdnet"]))
        assert r.error is None and r.output is not None and r.psnr > 25
    finally:
        e.close()


def _ended(process) -> bool:
    import psutil

    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_worker_process_that_died_is_replaced(tmp_path):
    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["cbm3d"])
    if not e.denoisers["cbm3d"].readiness(25).ready:
        pytest.skip("bm3d not installed")
    try:
        before = {p.pid for p in _workers()}
        e.start()
        wait_until(lambda: {p.pid for p in _workers()} - before, "the worker's start", 60)
        [worker] = [p for p in _workers() if p.pid not in before]
        worker.kill()  # as if it had been killed (out of memory, a crash in native code)
        # Seen dead, not reaped: the pool must reap it itself (a worker reaped by someone else
        # looks alive to multiprocessing for ever, and its shutdown at exit would never end).
        wait_until(lambda: _ended(worker), "the worker's end", 30)
        src = source(40, 40)
        # A job sent before the pool has noticed its loss fails, and says so; the next one runs.
        [first] = list(e.run(src.image, synthetic_noisy(src.image, 25, 0), src.image_id, 25, 0, ["cbm3d"]))
        assert first.error is None or "BrokenProcessPool" in first.error
        [r] = list(e.run(src.image, synthetic_noisy(src.image, 25, 1), src.image_id, 25, 1, ["cbm3d"]))
        assert r.error is None and r.output.shape == (40, 40, 3)
    finally:
        e.close()


@pytest.mark.parametrize("methods, message", [
    ('["dncnn"', "unknown methods"),  # not JSON, not a method: a clear input error
    ("", "at least one method"),
    (5, "list of method names"),
])
def test_api_methods_that_are_not_a_list_of_names_are_input_errors(engine, methods, message):
    with pytest.raises(InputError, match=message):
        session.api_compare(engine, png_bytes(smooth_image()), 25, 0, methods, 10**6)


@needs_nets
def test_the_dial_works_through_the_api_under_its_canonical_name(engine):
    image = smooth_image(48, 64, 3)
    record, comp = session.api_compare(engine, png_bytes(image), 25, 0, ["idgan@0.50", "idresnet"], 10**6)
    assert list(record["methods"]) == ["idresnet", "idgan@0.5"]
    dial = record["methods"]["idgan@0.5"]
    assert dial.get("error") is None and dial["weights"].endswith("@0.5")
    noisy = synthetic_noisy(image, 25, 0)
    direct = to_uint8(denoisers.get("idgan@0.5").denoise(noisy, 25))
    assert np.array_equal(comp.results["idgan@0.5"].output, direct)
    with pytest.raises(InputError, match="from 0 to 1"):
        session.api_compare(engine, png_bytes(image), 25, 0, ["idgan@1.5"], 10**6)


def test_weights_that_cannot_be_had_are_said_without_the_servers_folders(tmp_path, monkeypatch, caplog):
    from denoisers.weights import WeightsError

    e = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["ffdnet"])

    def unreachable(noisy, sigma):
        raise WeightsError("weights 'ffdnet_color' not found in /srv/secret/mirror nor at https://example.org/x")

    monkeypatch.setattr(e.denoisers["ffdnet"], "denoise", unreachable)
    monkeypatch.setattr(type(e.denoisers["ffdnet"]), "readiness",
                        lambda self, sigma=None: denoisers.Readiness(True, ""))
    try:
        src = source()
        [r] = list(e.run(src.image, synthetic_noisy(src.image, 25, 0), src.image_id, 25, 0, ["ffdnet"]))
        assert r.error == "its weights could not be had (the server's log says why)"
        assert "/srv/secret/mirror" in caplog.text  # the details go to the server's log
    finally:
        e.close()


def test_start_warms_every_ready_method_in_the_background_and_a_failing_one_is_logged(tmp_path, monkeypatch, caplog):
    """``Engine.start`` loads what each ready method's first run would (``Denoiser.warm``) on
    a background thread: an unready method is left alone, a failing warm-up is only logged."""
    e = Engine(ResultCache(tmp_path, max_bytes=10**6), methods=["dncnn", "ffdnet", "idresnet"])
    warmed: list[tuple[str, float]] = []
    d1, d2, d3 = (e.denoisers[n] for n in ("dncnn", "ffdnet", "idresnet"))
    monkeypatch.setattr(d1, "readiness", lambda sigma=None: denoisers.Readiness(True))
    monkeypatch.setattr(d1, "warm", lambda sigma: warmed.append(("dncnn", sigma)))
    monkeypatch.setattr(d2, "readiness", lambda sigma=None: denoisers.Readiness(True))
    monkeypatch.setattr(d2, "warm", lambda sigma: 1 / 0)
    monkeypatch.setattr(d3, "readiness", lambda sigma=None: denoisers.Readiness(False, "no weights"))
    monkeypatch.setattr(d3, "warm", lambda sigma: warmed.append(("idresnet", sigma)))
    try:
        with caplog.at_level("WARNING", logger="app.engine"):
            e.start(warm_sigma=30)
            wait_until(lambda: "ffdnet: not warmed up: ZeroDivisionError" in caplog.text, "the failure's log line")
            e.warming.join(30)
            assert not e.warming.is_alive()
        assert warmed == [("dncnn", 30)]
    finally:
        e.close()


def test_a_network_warmed_up_has_its_model_loaded():
    d = denoisers.get("dncnn", device="cpu")
    if not d.readiness(25).ready:
        pytest.skip(d.readiness(25).reason)
    d.warm(25)
    assert d._models  # loaded, so the first run does not pay for it
