from urllib.parse import parse_qsl

from app import crops
from app.state import ViewState, from_query, to_query

IMAGES = [f"kodim{i:02d}" for i in range(1, 25)]
METHODS = ["idresnet", "idgan", "dncnn", "ffdnet", "cbm3d"]


def parse(query: str):
    return from_query(dict(parse_qsl(query)), IMAGES, METHODS, ["dncnn", "ffdnet", "cbm3d"])


def test_round_trip():
    state = ViewState("kodim05", 35.0, 7, 100, 200, 128, 6, ("dncnn", "cbm3d"), errors=True)
    query = to_query(state)
    assert "image=kodim05" in query and "methods=dncnn,cbm3d" in query and "errors=1" in query
    assert "errors" not in to_query(ViewState("kodim05"))
    back, problems = parse(query)
    assert back == state and problems == []


def test_defaults_when_empty():
    state, problems = parse("")
    assert state.image is None and state.sigma == 25 and state.seed == 0 and state.centre is None
    assert state.methods == ("dncnn", "ffdnet", "cbm3d") and problems == []


def test_bad_values_fall_back_and_are_reported():
    state, problems = parse("image=../../etc/passwd&sigma=500&seed=-3&x=a&y=2&crop=9999&zoom=0&methods=dncnn,evil")
    assert state.image is None and state.sigma == 25 and state.seed == 0 and state.centre is None
    assert state.crop == 256 and state.zoom == 1  # clamped into range
    assert state.methods == ("dncnn",)
    text = " ".join(problems)
    for word in ("unknown image", "sigma", "seed", "crop centre", "unknown methods evil",
                 "crop 9999 is out of range; using 256", "zoom 0 is out of range; using 1"):
        assert word in text


def test_a_seed_of_other_digits_is_a_problem_not_a_crash():
    for seed in ("%C2%B2", "9" * 5000):  # "²": a digit to str.isdigit, not to int()
        state, problems = parse(f"seed={seed}")
        assert state.seed == 0 and "seed must be a whole number from 0 to" in " ".join(problems)


def test_method_order_is_display_order_and_upload_has_no_image():
    state, _ = parse("methods=cbm3d,dncnn")
    assert state.methods == ("dncnn", "cbm3d")
    assert "image=" not in to_query(ViewState(image=None))


def test_a_link_never_unticks_every_method():
    """A preview's link (no methods chosen yet) leaves ``methods`` out, and an empty or wholly
    unknown list keeps the defaults, so opening it never ends in "Tick at least one method"."""
    assert "methods" not in to_query(ViewState(image="kodim05"))
    for query in ("image=kodim05&methods=", "image=kodim05&methods=,", "image=kodim05&methods=evil"):
        state, _ = parse(query)
        assert state.methods == ("dncnn", "ffdnet", "cbm3d"), query


def test_image_with_extension_is_accepted():
    state, problems = parse("image=kodim07.png")
    assert state.image == "kodim07" and not problems


def test_non_finite_crop_and_zoom_are_reported_not_raised():
    for query in ("crop=inf&zoom=1e999", "crop=-inf&zoom=nan", "crop=1e999&zoom=-1e999"):
        state, problems = parse(query)
        assert (state.crop, state.zoom) == (crops.CROP_DEFAULT, crops.ZOOM_DEFAULT)  # defaults kept
        text = " ".join(problems)
        assert "bad crop" in text and "bad zoom" in text


def test_query_keys_are_every_key_a_link_holds():
    from urllib.parse import parse_qs

    from app.state import QUERY_KEYS

    full = ViewState(image="kodim05", sigma=35, seed=2, x=10, y=20, crop=64, zoom=3, methods=("dncnn",), errors=True)
    assert set(parse_qs(to_query(full))) == set(QUERY_KEYS)


def test_half_a_crop_centre_and_a_bad_errors_flag_are_reported():
    state, problems = parse("image=kodim05&x=10&errors=yes")
    assert state.centre is None and not state.errors
    assert "a crop centre needs both x and y" in problems and "bad errors 'yes' (0 or 1)" in problems


def test_the_dial_travels_in_the_methods():
    """``idgan@0.3`` among a link's methods ticks IDGAN and sets the dial to 0.3; a bad A is
    reported and the dial stays at 1."""
    known = ["idresnet", "idgan", "dncnn"]
    state, problems = from_query({"methods": "dncnn,idgan@0.30"}, [], known)
    assert state.methods == ("idgan", "dncnn") and state.dial == 0.3 and problems == []
    state, problems = from_query({"methods": "idgan@1.5,dncnn,foo@1"}, [], known)
    assert state.methods == ("dncnn",) and state.dial == 1.0
    assert "A must be from 0 to 1" in problems[0] and "unknown methods foo@1" in problems[1]
