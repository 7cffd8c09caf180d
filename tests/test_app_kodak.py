"""Without Kodak24 (no mirror, empty cache, offline) the app still builds and says where to get it."""
import os
import shutil

import pytest

from app import kodak, session
from app.convert import InputError
from app_support import needs_kodak


@pytest.fixture
def no_kodak(tmp_path, monkeypatch):
    monkeypatch.delenv("DENOISERS_DATA_MIRROR", raising=False)
    monkeypatch.setenv("DENOISERS_CACHE", str(tmp_path))


def test_names_need_no_files(no_kodak):
    assert kodak.names() == [f"kodim{i:02d}" for i in range(1, 25)]


def test_missing_set_says_where_to_get_it(no_kodak):
    assert not kodak.available() and kodak.thumbnails() == []
    with pytest.raises(InputError, match=r"r0k\.us.*DENOISERS_DATA_MIRROR"):
        kodak.path("kodim01", download=False)


def test_the_ui_builds_without_kodak(no_kodak):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from app.engine import Engine
    from app.ui import Settings, build

    engine = Engine(None, methods=["ffdnet"])
    try:
        demo, exports = build(engine, Settings(results_root=os.devnull))
        config = demo.get_config_file()
        texts = [c.get("props", {}).get("value") for c in config["components"]]
        assert any(isinstance(t, str) and "r0k.us" in t for t in texts)
        assert "compare" in [d.get("api_name") for d in config["dependencies"]]
        exports.close()
    finally:
        engine.close()


@needs_kodak
def test_kodak_source_is_the_checked_file():
    src = session.source_from_kodak("kodim23")
    assert src.image.shape == (512, 768, 3) and src.name == "kodim23"
    with pytest.raises(InputError, match="unknown Kodak24 image"):
        session.source_from_kodak("kodim99")


@needs_kodak
def test_one_image_needs_only_its_own_file(tmp_path, monkeypatch):
    # A mirror holding kodim05 alone: opening it must not check (or fetch) the other 23.
    original = kodak.path("kodim05", download=False)
    (tmp_path / "mirror" / "kodak24").mkdir(parents=True)
    shutil.copy(original, tmp_path / "mirror" / "kodak24" / "kodim05.png")
    monkeypatch.setenv("DENOISERS_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("DENOISERS_CACHE", str(tmp_path / "cache"))
    assert kodak.path("kodim05", download=False) == tmp_path / "mirror" / "kodak24" / "kodim05.png"
    with pytest.raises(InputError, match="r0k"):
        kodak.path("kodim06", download=False)
    (tmp_path / "mirror" / "kodak24" / "kodim05.png").write_bytes(b"not the image")
    with pytest.raises(InputError):  # still sha256-checked
        kodak.path("kodim05", download=False)
