"""End to end: the app on a free port, driven through ``/compare`` with gradio_client."""
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import denoisers  # noqa: E402
from app_support import needs_nets, png_bytes, smooth_image, running_app  # noqa: E402
from denoisers.io import to_float, to_uint8  # noqa: E402
from denoisers.metrics import add_noise, detail_ratio, score  # noqa: E402

# gradio 6.31 itself calls deprecated pandas options in its queue (not ours).
pytestmark = [needs_nets, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Uploads over 1 MB refused (the app's default is 200 MB); every other upload here is smaller.
    with running_app(tmp_path_factory.mktemp("app"), heavy_limit=2, max_upload_mb=1) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def write_png(tmp_path, image, name="in.png"):
    path = tmp_path / name
    path.write_bytes(png_bytes(image))
    return str(path)


def call(client, path, sigma, seed, methods):
    from gradio_client import handle_file

    return client.predict(handle_file(path), sigma, seed, methods, api_name="/compare")


def test_page_is_served(server):
    with urllib.request.urlopen(server, timeout=30) as response:
        assert response.status == 200 and b"<html" in response.read(4000).lower()


def test_compare_matches_the_denoisers_run_directly(client, tmp_path):
    clean = smooth_image(64, 72, seed=5)
    record, files = call(client, write_png(tmp_path, clean), 30, 2, ["ffdnet", "dncnn"])
    assert record["sigma"] == 30 and record["seed"] == 2
    assert list(record["methods"]) == ["dncnn", "ffdnet"]
    noisy = add_noise(to_float(clean), 30, 2)
    assert record["noisy"]["psnr"] == pytest.approx(score(clean, noisy)[0])
    assert [os.path.basename(f) for f in files] == ["noisy.png", "dncnn.png", "ffdnet.png"] == record["files"]
    assert np.array_equal(np.asarray(Image.open(files[0])), to_uint8(noisy))
    for name, path in zip(("dncnn", "ffdnet"), files[1:]):
        direct = denoisers.get(name).denoise(noisy, 30)
        p, s = score(clean, direct)
        assert record["methods"][name]["psnr"] == pytest.approx(p, abs=1e-9)
        if min(clean.shape[:2]) >= 32:  # LPIPS beside PSNR, of the same output
            lp = denoisers.metrics.lpips(clean, to_uint8(direct))
            assert record["methods"][name]["lpips"] == pytest.approx(lp, abs=1e-6)
        assert record["methods"][name]["ssim"] == pytest.approx(s, abs=1e-9)
        assert record["methods"][name]["detail"] == pytest.approx(detail_ratio(clean, to_uint8(direct)))
        assert record["methods"][name]["seconds"] > 0
        assert record["methods"][name]["weights"] == denoisers.get(name).weights_id(30)
        assert record["methods"][name]["numerics"] == "fp32 on cpu"  # baselines: always fp32
        assert np.array_equal(np.asarray(Image.open(path)), to_uint8(direct))  # lossless PNG
    again, _ = call(client, write_png(tmp_path, clean, "again.png"), 30, 2, ["dncnn", "ffdnet"])
    assert all(m["cached"] for m in again["methods"].values())
    assert again["methods"]["dncnn"]["psnr"] == record["methods"]["dncnn"]["psnr"]


@pytest.mark.parametrize("kind, match", [
    ("corrupt", "not a readable image"),
    ("tiny", "at least 32 pixels"),
    ("sigma", "sigma must be between"),
    ("method", "unknown|not in the list|methods"),
])
def test_bad_requests_get_clear_errors(client, tmp_path, kind, match):
    from gradio_client.exceptions import AppError

    path = write_png(tmp_path, smooth_image(16 if kind == "tiny" else 48, 48))
    if kind == "corrupt":
        (tmp_path / "in.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    sigma = 80 if kind == "sigma" else 25
    methods = ["evil"] if kind == "method" else ["ffdnet"]
    with pytest.raises((AppError, ValueError), match=match):
        call(client, path, sigma, 0, methods)


def test_compare_crop_gives_each_method_s_crop_first(client, tmp_path):
    """``/compare_crop``: the crops of one region, run on the region alone, or cut from a
    cached whole result (then ``source`` is "full"); scores are the crop's."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    clean = smooth_image(64, 80, seed=21)
    box, crop = (8, 30, 40, 36), (slice(8, 48), slice(30, 66))
    record, files = client.predict(handle_file(write_png(tmp_path, clean)), 25, 4, ["dncnn", "ffdnet"], "8,30,40,36",
                                   api_name="/compare_crop")
    assert record["box"] == list(box) and record["files"] == ["noisy_crop.png", "dncnn_crop.png", "ffdnet_crop.png"]
    noisy = add_noise(to_float(clean), 25, 4)
    for name, path in zip(("dncnn", "ffdnet"), files[1:]):
        entry = record["methods"][name]
        shown = np.asarray(Image.open(path))
        direct = to_uint8(denoisers.get(name).denoise(noisy, 25))[crop]
        assert entry["source"] == "region" and shown.shape == (40, 36, 3)
        assert np.abs(shown.astype(int) - direct.astype(int)).max() <= 1  # the whole run's crop
        assert entry["psnr"] == pytest.approx(score(clean[crop], to_float(shown))[0])
    call(client, write_png(tmp_path, clean, "full.png"), 25, 4, ["ffdnet"])  # its whole image is cached now
    again, _ = client.predict(handle_file(write_png(tmp_path, clean, "again.png")), 25, 4, ["ffdnet"], "8,30,40,36",
                              api_name="/compare_crop")
    assert again["methods"]["ffdnet"]["source"] == "full" and again["methods"]["ffdnet"]["cached"]
    with pytest.raises((AppError, ValueError), match="top, left, height, width"):
        client.predict(handle_file(write_png(tmp_path, clean, "bad.png")), 25, 4, ["ffdnet"], "60,70,10,20",
                       api_name="/compare_crop")


def test_an_upload_over_the_size_limit_is_refused_while_it_arrives(server, client, tmp_path):
    boundary = "x7d1b0c"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + bytes(1_100_000) + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(server + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    assert b"maximum allowed size of 1000000 bytes" in refused.value.read()
    noise = np.random.default_rng(0).integers(0, 256, (620, 620, 3), dtype=np.uint8)  # about 1.15 MB as PNG
    path = write_png(tmp_path, noise, "big.png")
    assert os.path.getsize(path) > 1_000_000
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1000000 bytes"):  # checked before sending
        call(client, path, 25, 0, ["ffdnet"])
    record, _ = call(client, write_png(tmp_path, smooth_image(48, 48), "small.png"), 25, 0, ["ffdnet"])
    assert record["methods"]["ffdnet"]["psnr"] > record["noisy"]["psnr"]  # still serving


def test_two_users_at_once_get_their_own_results(server, tmp_path):
    from gradio_client import Client

    images = [smooth_image(48, 56, seed=s) for s in (11, 12, 13)]
    results = {}

    def user(i):
        c = Client(server, verbose=False)
        results[i] = call(c, write_png(tmp_path, images[i], f"u{i}.png"), 20, i, ["ffdnet"])

    threads = [threading.Thread(target=user, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for i, image in enumerate(images):
        record, files = results[i]
        noisy = add_noise(to_float(image), 20, i)
        direct = denoisers.get("ffdnet").denoise(noisy, 20)
        assert record["seed"] == i
        assert record["methods"]["ffdnet"]["psnr"] == pytest.approx(score(image, direct)[0])
        assert np.array_equal(np.asarray(Image.open(files[1])), to_uint8(direct))


def test_the_server_keeps_the_views_of_a_bounded_number_of_sessions(tmp_path):
    """Each visitor's view (input and outputs) stays in memory for up to an hour: beyond
    ``max_sessions`` the least recently used ones are dropped rather than memory run out."""
    from app.server import MAX_SESSIONS, create, launch_kwargs
    from app_support import free_port

    assert launch_kwargs()["state_session_capacity"] == MAX_SESSIONS == 300
    demo, engine, exports = create(results_root=tmp_path / "results", cache_dir=tmp_path / "cache")
    try:
        demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                    **launch_kwargs(max_sessions=3))
        holder = demo.state_holder
        for session in ("a", "b", "c", "d"):
            holder[session]  # a visitor's first event
        holder["b"]  # b acts again
        holder["e"]
        assert list(holder.session_data) == ["d", "b", "e"]  # a and c, the least recently used, dropped
    finally:
        demo.close()
        engine.close()
        exports.close()


def test_an_upload_that_never_ran_a_comparison_leaves_the_server_s_cache(tmp_path, monkeypatch):
    """gradio keeps uploads in its cache folder; the app's clean-up removes them once old,
    whether or not anything ran on them (here after 1 s, checked every second)."""
    import json
    import time

    from app import ui

    monkeypatch.setattr(ui, "CACHE_CLEANUP", (1, 1))
    boundary = "x7d1b0d"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"left.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png_bytes(smooth_image(48, 48)) + \
        f"\r\n--{boundary}--\r\n".encode()
    with running_app(tmp_path) as url:
        request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            [stored] = json.loads(answer.read())
        assert os.path.exists(stored)
        deadline = time.monotonic() + 30
        while os.path.exists(stored):
            assert time.monotonic() < deadline, "the upload was still in the cache after 30 s"
            time.sleep(0.2)
