import os
import time

import numpy as np
import pytest

from app.cache import ResultCache, result_key


def img(value: int, size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_round_trip_and_miss(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=10**9)
    key = result_key("abc", 25, 0, "dncnn", "sha")
    assert cache.get(key) is None
    cache.put(key, img(7), {"psnr": 30.5, "seconds": 1.25})
    hit = cache.get(key)
    assert hit is not None and np.array_equal(hit.image, img(7)) and hit.meta == {"psnr": 30.5, "seconds": 1.25}
    assert not list(tmp_path.rglob("*.part"))  # atomic writes leave no temporary files


def test_every_key_part_matters():
    base = dict(image_id="abc", sigma=25, seed=0, method="dncnn", weights_id="sha")
    keys = {result_key(**base)}
    for change in (dict(image_id="abd"), dict(sigma=25.5), dict(seed=1), dict(seed=None), dict(method="ffdnet"),
                   dict(weights_id="sha2")):
        keys.add(result_key(**{**base, **change}))
    assert len(keys) == 7
    assert result_key(**base) == result_key(**{**base, "sigma": 25.0})


def test_least_recently_used_entries_are_evicted(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=10**9)
    keys = [result_key(str(i), 25, 0, "m", "w") for i in range(4)]
    for i, k in enumerate(keys):
        cache.put(k, img(i, 64), {"i": i})
        past = time.time() - 100 + i  # distinct, increasing last-use times
        for p in cache._paths(k):
            os.utime(p, (past, past))
    entry_size = cache.size_bytes() // 4
    assert cache.get(keys[0]) is not None  # key 0 is now the most recently used
    cache.max_bytes = 2 * entry_size + 10
    assert cache.evict() == 2
    assert cache.get(keys[1]) is None and cache.get(keys[2]) is None
    assert cache.get(keys[0]) is not None and cache.get(keys[3]) is not None
    assert cache.size_bytes() <= cache.max_bytes


def test_put_keeps_the_cache_bounded(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=3 * (64 * 64 * 3 + 300))
    for i in range(10):
        cache.put(result_key(str(i), 25, 0, "m", "w"), img(i, 64), {})
    assert cache.size_bytes() <= cache.max_bytes
    assert cache.get(result_key("9", 25, 0, "m", "w")) is not None  # the newest survives


def test_damaged_entries_are_misses(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=10**9)
    key = result_key("x", 25, 0, "m", "w")
    cache.put(key, img(1), {})
    arr_path, meta_path = cache._paths(key)
    arr_path.write_bytes(b"garbage")
    assert cache.get(key) is None
    cache.put(key, img(1), {})
    meta_path.write_text("{not json")
    assert cache.get(key) is None


def test_only_uint8_is_stored(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        ResultCache(tmp_path).put("k" * 64, np.zeros((4, 4, 3), np.float32), {})


def test_default_location_follows_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DENOISERS_CACHE", str(tmp_path))
    assert ResultCache().root == tmp_path / "results"


def test_writes_that_never_finished_are_removed_once_old(tmp_path):
    """A process killed between writing an entry's array and its record, or mid-write, leaves
    files no entry counts: they would grow past the bound for ever."""
    cache = ResultCache(tmp_path, max_bytes=10**9)
    keep, orphan = result_key("a", 25, 0, "dncnn", "w"), result_key("b", 25, 0, "dncnn", "w")
    cache.put(keep, img(1), {})
    cache.put(orphan, img(2), {})
    _, orphan_record = cache._paths(orphan)
    orphan_record.unlink()  # killed before the record was written
    part = orphan_record.parent / f".{orphan}.npy.abc.part"
    part.write_bytes(b"half")
    recent = orphan_record.parent / ".young.npy.def.part"  # a write under way elsewhere
    recent.write_bytes(b"half")
    old = time.time() - 3600
    for path in (orphan_record.with_suffix(".npy"), part):
        os.utime(path, (old, old))
    cache.evict()
    assert not orphan_record.with_suffix(".npy").exists() and not part.exists()
    assert recent.exists() and cache.get(keep) is not None
