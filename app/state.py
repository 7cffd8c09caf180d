"""The view state in the URL query string, so that a link reproduces the exact view.

``?image=kodim05&sigma=25&seed=0&x=384&y=256&crop=96&zoom=4&methods=dncnn,ffdnet`` (and
``&errors=1`` when the error maps are shown; ``idgan@0.3`` among the methods sets the
fidelity <-> detail dial).
Unknown or out-of-range values fall back to defaults and are reported (cut short, never
whole), never trusted. The reports are plain text: ``text.plain`` makes them safe to show.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping
from urllib.parse import urlencode

from denoisers.dial import FAMILY, parse_alpha

from . import crops
from .convert import InputError, SIGMA_MAX, SIGMA_MIN, check_seed, check_sigma, shown

SIGMA_DEFAULT = 25.0
QUERY_KEYS = ("image", "sigma", "seed", "x", "y", "crop", "zoom", "methods", "errors")  # what a link can set


@dataclass(frozen=True)
class ViewState:
    image: str | None = None  # a Kodak24 name such as "kodim05"; None for an upload
    sigma: float = SIGMA_DEFAULT
    seed: int = 0
    x: int | None = None  # crop centre in image pixels; None = image centre
    y: int | None = None
    crop: int = crops.CROP_DEFAULT
    zoom: int = crops.ZOOM_DEFAULT
    methods: tuple[str, ...] = field(default_factory=tuple)
    errors: bool = False  # error maps instead of the images
    dial: float = 1.0  # the fidelity <-> detail dial's A: IDGAN runs as idgan@A ("methods=...,idgan@0.3,...")

    @property
    def centre(self) -> tuple[int, int] | None:
        return None if self.x is None or self.y is None else (self.x, self.y)


def to_query(state: ViewState) -> str:
    """The query string (without ``?``) for ``state``; an upload cannot be linked, so no image."""
    params: dict[str, str] = {}
    if state.image:
        params["image"] = state.image
    params["sigma"] = f"{state.sigma:g}"
    params["seed"] = str(state.seed)
    if state.centre is not None:
        params["x"], params["y"] = str(state.x), str(state.y)
    params["crop"] = str(state.crop)
    params["zoom"] = str(state.zoom)
    if state.methods:  # none chosen yet (a preview): the link leaves the defaults to the page
        params["methods"] = ",".join(state.methods)
    if state.errors:
        params["errors"] = "1"
    return urlencode(params, safe=",@")


def from_query(query: Mapping[str, str], known_images: list[str], known_methods: list[str],
               default_methods: list[str] | None = None) -> tuple[ViewState, list[str]]:
    """Parse a query mapping into a ``ViewState``; returns it and a list of problems found."""
    problems: list[str] = []
    state = ViewState(methods=tuple(default_methods if default_methods is not None else known_methods))

    image = query.get("image")
    if image:
        stem = image.rsplit(".", 1)[0]
        if stem in known_images:
            state = replace(state, image=stem)
        else:
            problems.append(f"unknown image {shown(image)}")
    if "sigma" in query:
        try:
            state = replace(state, sigma=check_sigma(query["sigma"]))
        except InputError as exc:
            problems.append(str(exc))
    if "seed" in query:
        try:
            state = replace(state, seed=check_seed(query["seed"]))
        except InputError as exc:
            problems.append(str(exc))
    if ("x" in query) != ("y" in query):
        problems.append("a crop centre needs both x and y")
    if "errors" in query:
        if query["errors"] in ("0", "1"):
            state = replace(state, errors=query["errors"] == "1")
        else:
            problems.append(f"bad errors {shown(query['errors'])} (0 or 1)")
    if "x" in query and "y" in query:
        try:
            x, y = int(query["x"]), int(query["y"])
            if x < 0 or y < 0:
                raise ValueError
            state = replace(state, x=x, y=y)
        except ValueError:
            problems.append(f"bad crop centre x={shown(query['x'])}, y={shown(query['y'])}")
    for name, clamp in (("crop", crops.clamp_size), ("zoom", crops.clamp_zoom)):
        if name in query:
            try:
                value = clamp(query[name])
                state = replace(state, **{name: value})
                if value != round(float(query[name])):
                    problems.append(f"{name} {shown(query[name], quoted=False)} is out of range; using {value}")
            except (TypeError, ValueError, OverflowError):
                problems.append(f"bad {name} {shown(query[name])}")
    if query.get("methods"):  # "methods=" (empty) keeps the defaults: a link never unticks everything
        wanted = [m for m in query["methods"].split(",") if m]
        for i, name in enumerate(wanted):  # the dial: idgan@A ticks IDGAN and sets A
            family, at, argument = name.partition("@")
            if at and family == FAMILY and family in known_methods:
                try:
                    state = replace(state, dial=parse_alpha(argument))
                    wanted[i] = family
                except ValueError as exc:
                    problems.append(str(exc))
        unknown = [m for m in wanted if m not in known_methods and not m.startswith(FAMILY + "@")]  # said above
        if unknown:
            problems.append(f"unknown methods {shown(', '.join(unknown), quoted=False)}")
        chosen = tuple(m for m in known_methods if m in wanted)
        if chosen:  # none known: the defaults stay
            state = replace(state, methods=chosen)
    return state, problems


__all__ = ["ViewState", "to_query", "from_query", "QUERY_KEYS", "SIGMA_MIN", "SIGMA_MAX", "SIGMA_DEFAULT"]
