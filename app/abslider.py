"""The A/B slider: which two images it shows (whole, or the zoomed crop following the crop
box), chosen by the user or following the results. Pure: values in, component values out."""
from __future__ import annotations

from . import crops, views
from .views import Comparison, Props


def identity(comp: Comparison | None) -> tuple | None:
    """The input and noise a comparison is of: a right side the user chose holds for it."""
    return None if comp is None else (comp.image_id, comp.sigma, comp.seed)


def crop_region(comp: Comparison, region: str, centre, size, zoom) -> tuple[crops.Box | None, int]:
    """(the crop box, its zoom) when the slider shows the zoomed crop, else (None, 1)."""
    if region != "crop" or comp is None:
        return None, 1
    return crops.crop_box(centre, crops.clamp_size(size), comp.shape), crops.clamp_zoom(zoom)


def update(comp: Comparison | None, a, b, region="full", centre=None, size=None, zoom=None,
           automatic: bool = False, left=None) -> dict:
    """The two dropdowns, the slider's pair and what that pair is (``ab_shown``). ``left``: the
    left side the user chose, taken again once this input has it; ``automatic``: the right side
    follows the best result as results arrive."""
    if comp is None:
        empty = Props(choices=[], value=None)
        return {"ab_a": empty, "ab_b": empty, "slider": None, "ab_shown": None}
    choices = views.slider_choices(comp)
    keys = [k for _, k in choices]
    a = left if left in keys else a if a in keys else (keys[0] if keys else None)
    # The right side's default: the best method, or without ground truth the first result.
    done = [k for k in keys if k in comp.methods]
    default = views.best_method(comp) or (done[0] if done else None)
    if automatic and default:
        b = default
    b = b if b in keys else (default or (keys[-1] if keys else None))
    box, zoom = crop_region(comp, region, centre, size, zoom)
    pair = views.slider_pair(comp, a, b, box, zoom) if a and b else None
    key = (comp.image_id, comp.sigma, comp.seed, a, b, tuple(m for m in comp.methods if m in comp.results),
           (box, zoom))
    slider = pair if pair is None else Props(value=pair, label=sides(comp, a, b))
    return {"ab_a": Props(choices=choices, value=a), "ab_b": Props(choices=choices, value=b),
            "slider": slider, "ab_shown": key}


def sides(comp: Comparison, a: str, b: str) -> str:
    """The slider's caption: which image is on which side, with its scores."""
    by_key = {p.key: p for p in views.panels(comp)}

    def side(key: str) -> str:
        p = by_key[key]
        lp = "" if p.lpips is None else f" · LPIPS {p.lpips:.3f}"
        return (p.short or p.title) + lp

    return f"◀ left: {side(a)}   |   right: {side(b)} ▶"


def follow(comp, a, b, shown, pinned, region="full", centre=None, size=None, zoom=None, chosen_left=None) -> dict:
    """``update`` on every new result and crop move; the slider's images are sent only when
    they change (re-sending the same pair made the page fire this event again, for ever). A
    right side the user chose for this input and noise stays, and a left side the user chose
    comes back on every input that has it."""
    out = update(comp, a, b, region, centre, size, zoom, automatic=pinned is None or pinned != identity(comp),
                 left=chosen_left)
    if out["ab_shown"] is not None and out["ab_shown"] == shown:
        del out["slider"], out["ab_shown"]
    return out


def pick_left(comp, a, b, *view) -> dict:
    """The user chose the left side: shown now, and again on later inputs that have it."""
    return update(comp, a, b, *view) | {"ab_left": a}


def pick_right(comp, a, b, *view) -> dict:
    """The user chose the right side: it stays for this input and noise. A pick among a
    preview's two images is not a choice against the methods to come."""
    return update(comp, a, b, *view) | {"ab_pinned": identity(comp) if comp is not None and comp.results else None}


def place_divider(position) -> dict:
    """The divider set from its number box (0-100 %); an emptied box changes nothing."""
    try:
        return {"slider": Props(slider_position=min(100.0, max(0.0, float(position))))}
    except (TypeError, ValueError):  # the box emptied while typing
        return {}
