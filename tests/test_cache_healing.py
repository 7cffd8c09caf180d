"""A damaged, edited or unreadable cache entry is never shown: it is dropped, logged, and
computed again; a read-only cache is still served."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from app.cache import ResultCache, result_key
from app.engine import Engine, synthetic_noisy
from app_support import needs_nets, smooth_image
from denoisers.metrics import psnr


def image(value: int = 7, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)


def stored(tmp_path) -> tuple[ResultCache, str]:
    cache = ResultCache(tmp_path, max_bytes=10**9)
    key = result_key("abc", 25, 0, "dncnn", "w")
    cache.put(key, image(), {"psnr": 30.01, "ssim": 0.9, "seconds": 1.5})
    return cache, key


def _truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _empty(path):
    path.write_bytes(b"")


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {"truncated": _truncate, "empty": _empty, "one byte flipped": _flip_last_byte}


@pytest.mark.parametrize("which", ["npy", "json"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_every_damaged_file_of_an_entry_is_a_logged_miss_and_is_removed(tmp_path, caplog, which, damage):
    cache, key = stored(tmp_path)
    arr_path, meta_path = cache._paths(key)
    DAMAGE[damage](arr_path if which == "npy" else meta_path)
    with caplog.at_level(logging.WARNING, logger="app.cache"):
        assert cache.get(key) is None
    assert "dropping entry" in caplog.text
    assert not arr_path.exists() and not meta_path.exists()  # healed: the next put starts clean
    cache.put(key, image(), {"psnr": 30.01})
    assert cache.get(key).meta == {"psnr": 30.01}


@pytest.mark.parametrize("record", [[1, 2, 3], "text", {"psnr": 30.0}, None])
def test_records_of_another_shape_are_misses(tmp_path, record):
    cache, key = stored(tmp_path)
    cache._paths(key)[1].write_text(json.dumps(record))
    assert cache.get(key) is None


def test_an_edited_score_or_a_replaced_image_is_never_served(tmp_path):
    cache, key = stored(tmp_path)
    arr_path, meta_path = cache._paths(key)
    record = json.loads(meta_path.read_text())
    record["meta"]["psnr"] = 45.0
    meta_path.write_text(json.dumps(record))
    assert cache.get(key) is None

    cache, key = stored(tmp_path)
    arr_path, meta_path = cache._paths(key)
    record = json.loads(meta_path.read_text())
    record["meta"]["psnr"] = "abc"
    meta_path.write_text(json.dumps(record))
    assert cache.get(key) is None

    cache, key = stored(tmp_path)
    arr_path, _ = cache._paths(key)
    np.save(arr_path, np.zeros_like(image()), allow_pickle=False)  # a valid file, of other pixels
    assert cache.get(key) is None


def test_a_read_only_cache_is_still_served(tmp_path, monkeypatch):
    cache, key = stored(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(os, "utime", refuse)
    hit = cache.get(key)
    assert hit is not None and np.array_equal(hit.image, image()) and hit.meta["psnr"] == 30.01


@needs_nets
@pytest.mark.parametrize("damage", ["empty npy", "flipped npy", "zeros npy", "list json", "text psnr", "edited psnr"])
def test_a_comparison_over_a_damaged_entry_gets_the_right_scores(tmp_path, damage):
    clean = smooth_image(40, 56)
    noisy = synthetic_noisy(clean, 25, 0)
    engine = Engine(ResultCache(tmp_path, max_bytes=10**8), methods=["dncnn"])
    try:
        first = [r for r in engine.run(clean, noisy, "img", 25, 0, ["dncnn"]) if r is not None][0]
        assert first.error is None and not first.cached
        (arr_path,) = tmp_path.rglob("*.npy")
        meta_path = arr_path.with_suffix(".json")
        record = json.loads(meta_path.read_text())
        if damage == "empty npy":
            arr_path.write_bytes(b"")
        elif damage == "flipped npy":
            _flip_last_byte(arr_path)
        elif damage == "zeros npy":
            np.save(arr_path, np.zeros_like(first.output), allow_pickle=False)
        elif damage == "list json":
            meta_path.write_text("[1, 2, 3]")
        else:
            record["meta"]["psnr"] = "abc" if damage == "text psnr" else 99.0
            meta_path.write_text(json.dumps(record))
        again = [r for r in engine.run(clean, noisy, "img", 25, 0, ["dncnn"]) if r is not None][0]
        assert again.error is None and not again.cached  # computed again, not served
        assert again.psnr == pytest.approx(first.psnr) == pytest.approx(psnr(clean, again.output))
        assert np.array_equal(again.output, first.output)
        healed = [r for r in engine.run(clean, noisy, "img", 25, 0, ["dncnn"]) if r is not None][0]
        assert healed.cached and healed.psnr == pytest.approx(first.psnr)
    finally:
        engine.close()
