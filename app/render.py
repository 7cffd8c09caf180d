"""What the compare view shows for a comparison: the panels, the crop, the scores, the link and
the status line. Pure: values in, a mapping of component names to values or ``Props`` out."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from . import crops, errormap, export, session, tables, views
from .outputs import ExportDir
from .state import ViewState, to_query
from .views import HIDDEN, Comparison, Props

SCORES_LABEL = ("Scores (against the ground truth; detail: high-frequency energy over the ground truth's; "
                "seconds: while the others ran beside it; 'bf16 on cpu': run in bfloat16 for speed, within "
                "about 0.01 dB of the Benchmark tab's fp32)")
SCORES_LABEL_NO_TRUTH = ("Scores (an already-noisy input has no ground truth, so no PSNR, SSIM or detail; "
                         "seconds: while the others ran beside it)")


def stale_hint(comp: Comparison, sigma: object, seed: object, ticked: set[str], label: Callable[[str], str]) -> str:
    """"" while the panels show the chosen σ, seed and methods, else a hint to press Compare."""
    try:
        same = float(sigma) == comp.sigma and (comp.seed is None or float(seed) == comp.seed)
    except (TypeError, ValueError):
        same = False
    ran = set(comp.methods) | set(comp.stopped)
    if comp.seed is None and not ran:  # an input that came noisy, not yet run: σ changes nothing shown
        return ""
    if same and (not ran or ticked == ran):  # a preview has run no methods yet
        return ""
    shown = f"σ {comp.sigma:g}" + ("" if comp.seed is None else f", seed {comp.seed}")
    if ran:
        shown += ", " + ", ".join(label(m) for m in [*comp.methods, *comp.stopped])
    return f"Settings changed: press Compare to run them (the panels show {shown})."


def status_line(comp: Comparison, hint: str = "") -> str:
    """What the status line says about ``comp``: a preview's loading message, the progress,
    or the summary once done; followed by ``hint`` when the settings have changed since."""
    if not comp.methods and not comp.stopped:
        return hint or comp.note
    if not comp.done:
        text = f"Running: {len(comp.results)} of {len(comp.methods)} done…" + (f" ({comp.note})" if comp.note else "")
    else:
        text = session.summary(comp, comp.elapsed or 0.0)
    return f"{text} {hint}" if hint else text


class Renderer:
    """Fills ``slots`` full views and as many crops; writes each panel as a PNG under ``folders``."""

    def __init__(self, slots: int, label: Callable[[str], str], kodak_names: Sequence[str],
                 folders: ExportDir) -> None:
        self.slots, self.label = slots, label
        self.kodak_names, self.folders = set(kodak_names), folders

    def nothing(self) -> dict:
        """No input (a refused upload, say): no panels, and no link either, rather than the last input's."""
        out = {f"full_{i}": HIDDEN for i in range(self.slots)} | {f"crop_{i}": HIDDEN for i in range(self.slots)}
        return out | {"locator": HIDDEN, "error_bar": HIDDEN, "centre_text": "", "link": "", "scores": Props(visible=False),
                      "centre_x": HIDDEN, "centre_y": HIDDEN, "shown": {}}

    def render(self, comp: Comparison | None, centre, size, zoom, errors: bool, last: dict | None = None,
               sigma=None, seed=None, ticked: set[str] | None = None) -> dict:
        """Every panel for ``comp``, and the status line for it and the current settings
        (``sigma``, ``seed``, the ``ticked`` methods; ``sigma`` None: no hint). ``last``: what
        renders wrote before (``shown``); the centre boxes are written only when the centre
        changes, so that no render writes over a number being typed."""
        if comp is None:
            return self.nothing()
        box = crops.crop_box(centre, crops.clamp_size(size), comp.shape)
        zoom = crops.clamp_zoom(zoom)
        maps, vmax = views.error_views(comp) if errors else ({}, 1.0)
        out = self.panels(comp, box, zoom, maps if errors else None)
        out["error_bar"] = Props(value=errormap.legend(vmax) if maps else None, visible=bool(maps))
        cx, cy = crops.clamp_centre(centre, comp.shape) if centre is not None else box.centre
        out["centre_text"] = (f"centre x={cx}, y={cy}; box x {box.x0}-{box.x1 - 1}, y {box.y0}-{box.y1 - 1} "
                              f"({box.width}x{box.height}; files at {zoom}x)")
        linkable = comp.source in self.kodak_names and comp.has_truth  # "already noisy": a link cannot say so
        view = ViewState(image=comp.source if linkable else None, sigma=comp.sigma, seed=comp.seed or 0, x=cx, y=cy,
                         crop=crops.clamp_size(size), zoom=zoom, methods=tuple(comp.methods), errors=bool(maps))
        out["link"] = to_query(view)
        # "Done" is written only here, so it appears once the final panels are on screen.
        hint = "" if sigma is None else stale_hint(comp, sigma, seed, ticked or set(), self.label)
        progress = status_line(comp, hint)
        if progress:
            out["status"] = progress
        out["scores"] = self.scores(comp)
        scale = f": 0 to {vmax:g} grey levels, dark to bright" if maps else ""  # the bar's numbers, as text
        out["show_errors"] = Props(interactive=comp.has_truth,
                                   info=f"one colour scale for every map{scale}" if comp.has_truth
                                   else "no ground truth here, so no error maps")
        if (last or {}).get("centre") != (cx, cy):
            out["centre_x"], out["centre_y"] = Props(value=cx, visible=True), Props(value=cy, visible=True)
        out["shown"] = {"centre": (cx, cy)}
        return out

    def panels(self, comp: Comparison, box: crops.Box, zoom: int, maps: dict | None) -> dict:
        """The full views (with the crop box) and zoomed crops, as PNG files named for what they
        show (fast to encode: gradio's own encoder took 0.1 s per smooth 768x512 image)."""
        out = {}
        panels = views.panels(comp)
        folder = self.folders.views.new() if self.folders.views is not None else self.folders.new()
        stem = export.view_stem(comp)
        for i in range(self.slots):
            if i >= len(panels):
                out[f"full_{i}"] = out[f"crop_{i}"] = HIDDEN
                continue
            p = panels[i]
            image = maps.get(p.key, p.image) if maps is not None else p.image
            mapped = " · error map" if maps is not None and p.key in maps else ""
            name = f"{stem}_{p.key}" + ("_errors" if mapped else "")
            # the full view carries the green crop box: its name says so (the zip holds the bare images)
            full = export.png_file(folder, f"{name}_with_crop_box.png", views.full_view(image, box))
            crop = export.png_file(folder, f"{name}_crop_x{box.x0}_y{box.y0}_{box.width}px_{zoom}x.png",
                                   views.crop_view(image, box, zoom))
            out[f"full_{i}"] = Props(value=full, label=p.short + mapped, visible=True)
            label = p.label if maps is not None else views.crop_label(p, comp.clean, box)
            early = views.preview_crop(comp, p.key, box, zoom) if p.image is None else None
            if early is not None:  # the crop came first: shown (and named so) until the whole image comes
                crop = export.png_file(folder, f"{name}_crop_preview_x{box.x0}_y{box.y0}_{box.width}px_{zoom}x.png",
                                       early[0])
                label = early[1]
            out[f"crop_{i}"] = Props(value=crop, label=label + mapped, visible=True)
        # the locator: the first panel (the ground truth, or the input) with the crop box
        out["locator"] = HIDDEN if not panels else Props(
            value=out["full_0"]["value"], visible=True, label=f"Locator: {panels[0].title} (click to move the crop)")
        return out

    @staticmethod
    def scores(comp: Comparison) -> Props:
        frame = pd.DataFrame(views.scores_table(comp), columns=views.SCORE_COLUMNS)
        return Props(value=tables.fixed(frame, views.SCORE_FORMATS), visible=bool(comp.methods),
                     label=SCORES_LABEL if comp.has_truth else SCORES_LABEL_NO_TRUTH)
