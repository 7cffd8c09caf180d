"""The helper scripts' own logic (the child-process wrapper, the load check's file mapping, the
region accuracy's options) and ./dev's usage."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

app_server = pytest.importorskip("app_server")


@pytest.mark.parametrize("limit, message", [("not-a-number", "expected a whole number"),
                                            ("0", "must be at least 1")])  # 0 queued every comparison for ever
def test_a_server_that_exits_shows_its_log_and_leaves_nothing(tmp_path, limit, message):
    server = app_server.AppServer(tmp_path, heavy_limit=limit)  # argparse refuses it
    with pytest.raises(RuntimeError, match="--heavy-limit: " + message):
        with server:
            pass
    assert server.proc.poll() is not None
    assert not server.log_path.exists()


def test_a_server_that_does_not_answer_in_time_is_stopped(tmp_path, capsys):
    import httpx

    server = app_server.AppServer(tmp_path, start_timeout=0)
    with pytest.raises(httpx.TransportError):  # no answer yet: the connection is refused (or times out)
        with server:
            pass
    # __exit__ is never called when __enter__ raises; the child must be stopped all the same.
    assert server.proc.poll() is not None
    assert "did not answer" in capsys.readouterr().err


def test_load_check_maps_files_by_the_record_not_the_request_order():
    load_check = pytest.importorskip("load_check")
    # Asked for cbm3d, dncnn, ffdnet; dncnn failed, the rest come back in display order.
    record = {"files": ["noisy.png", "ffdnet.png", "cbm3d.png"],
              "methods": {"dncnn": {"error": "boom"}, "ffdnet": {}, "cbm3d": {}}}
    paths = ["/d/1/noisy.png", "/d/2/ffdnet.png", "/d/3/cbm3d.png"]
    assert load_check.outputs_by_key(record, paths) == {
        "noisy": "/d/1/noisy.png", "ffdnet": "/d/2/ffdnet.png", "cbm3d": "/d/3/cbm3d.png"}
    with pytest.raises(ValueError):
        load_check.outputs_by_key(record, paths[:2])


@pytest.mark.parametrize("text, pairs", [("32:4", [(32, 4)]), ("32:4, 16:2,", [(32, 4), (16, 2)]),
                                         ("32", None), ("32:4:1", None), ("a:b", None), ("", None)])
def test_region_accuracy_reads_nf_k_pairs_and_refuses_others(text, pairs):
    import argparse

    region_accuracy = pytest.importorskip("region_accuracy")
    if pairs is None:
        with pytest.raises(argparse.ArgumentTypeError, match="NF:K"):
            region_accuracy.bm3d_profiles(text)
    else:
        assert region_accuracy.bm3d_profiles(text) == pairs


def test_dev_says_how_to_use_it_and_refuses_an_unknown_command():
    import subprocess

    dev = SCRIPTS.parent / "dev"
    shown = subprocess.run([str(dev), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "./dev test" in shown.stdout
    wrong = subprocess.run([str(dev), "nonsense"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and wrong.stderr.startswith("unknown command: nonsense")
    assert "./dev app" in wrong.stderr and not wrong.stdout
