"""The page's components, placed: ``place(...)`` returns them by name (the names the events
return values for). No behaviour here: ``ui`` wires the components to ``events``."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

import denoisers
from denoisers.dial import FAMILY, dial_name

from . import benchmark, crops, kodak, views
from .dialview import preview_accuracy
from .convert import SIGMA_MAX, SIGMA_MIN, downscale_label
from .render import SCORES_LABEL
from .session import Turn
from .widgets import LenientSlider

#: The plane whose network-vs-pixel-blend gap the dial's note quotes: the whole Kodak24 images.
DIAL_PLANE = benchmark.default_root() / benchmark.PLANES["Kodak24, whole images"] / "plane.csv"

STATIC = Path(__file__).with_name("static")
OWN_NOTE = "trained by this project, briefly so far (its model card says how long)"
#: Results kept per session for this long after the last update (seconds).
STATE_TTL = 3600
INTRO = ("Every method side by side on Kodak24 or your own image. "
         "Numbers follow one protocol: PSNR/SSIM on the clipped, rounded 8-bit output against the "
         "8-bit ground truth, computed on the server; *detail* is an output's high-frequency "
         "energy over the ground truth's (1 = as much fine texture, below 1 = smoothed away, "
         "above 1 = noise left in or texture invented). Images are lossless PNG.")


def static_text(name: str) -> str:
    """A file of ``app/static`` (the page's CSS and scripts)."""
    return (STATIC / name).read_text(encoding="utf-8")


class Page(dict):
    """The components by name; also readable as attributes (``page.status``)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def place(page: Page, engine, settings, thumbs) -> None:
    """Every component of the page, in ``page``; call inside ``gr.Blocks``."""
    page.update(comparison=gr.State(None, time_to_live=STATE_TTL), source=gr.State(None, time_to_live=STATE_TTL),
                centre=gr.State(None), autorun=gr.State(False),
                turn=gr.State(Turn()),  # inputs chosen so far (session.Turn): one per visitor
                # Counters whose change renders the view: one bumped by new results and inputs, one
                # by crop moves and view settings (each only ever written by its own events).
                results_changed=gr.State(0), view_changed=gr.State(0),
                shown=gr.State(None),  # what renders last wrote: {"centre": (x, y)}
                ab_shown=gr.State(None),  # what the A/B slider shows: (image, sigma, seed, left, right, results, crop)
                ab_pinned=gr.State(None),  # (image, sigma, seed) whose A/B right side the user chose
                ab_left=gr.State(None),  # the left side the user chose last: shown again once it exists
                # the dial's network output and a counter whose change applies it (events.dial_apply)
                dial_found=gr.State(None, time_to_live=STATE_TTL), dial_count=gr.State(0))
    # The controls live in a sidebar, so that the compare view opens on the results: the
    # locator and every method's crop side by side, inside one desktop screen.
    with gr.Sidebar(width=340, elem_id="controls", label="Controls"):
        gr.Markdown("# Denoiser comparison", elem_id="title")
        _input_column(page, settings, thumbs)
        _settings_column(page, engine)
        gr.Markdown(INTRO, elem_id="intro")
    with gr.Tabs() as page["tabs"]:
        with gr.Tab("Compare", id="compare"):
            page["status"] = gr.Markdown("Pick a Kodak24 image or upload one (in the sidebar), then press Compare.",
                                         elem_id="status")
            _crop_strip(page, 2 + len(engine.names()))
            _crop_controls(page)
            _panels(page, 2 + len(engine.names()))
            _ab_slider(page)
            _exports(page)
        with gr.Tab("Benchmark", id="benchmark"):
            _benchmark(page)
    _api(page, engine.names())


def _input_column(page: Page, settings, thumbs) -> None:
    page["gallery"] = gr.Gallery(value=thumbs or None, label="Kodak24 (click to pick)", columns=6, height=230,
                                 allow_preview=False, format="png", elem_id="kodak", visible=bool(thumbs), buttons=[])
    page["kodak_note"] = gr.Markdown("" if thumbs else kodak.where_to_get(), elem_id="kodak-note")
    page["get_kodak"] = gr.Button("Download Kodak24 (sha256-checked)", visible=not thumbs, size="sm")
    page["upload"] = gr.File(label=f"…or upload an image (PNG, JPEG, TIFF, BMP, WebP; at most "
                                   f"{settings.max_upload_mb} MB)", type="filepath", file_types=["image"],
                             elem_id="upload", height=110)
    with gr.Row():
        page["downscale"] = gr.Checkbox(False, label=downscale_label(settings.max_pixels))
        page["already_noisy"] = gr.Checkbox(False, label="My image is already noisy", elem_id="already-noisy",
                                            info="no ground truth, no PSNR; σ is estimated")


def _settings_column(page: Page, engine) -> None:
    page["sigma"] = LenientSlider(SIGMA_MIN, SIGMA_MAX, value=25, step=1, label="Noise σ (0-255 scale)",
                                  elem_id="sigma")
    page["seed"] = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="seed")
    readiness = engine.readiness()  # not ready: why; generators: the sigmas they were trained for
    boxes = []
    with gr.Group():
        for name in engine.names():
            ready = readiness[name]
            d = engine.denoisers[name]
            info = "; ".join(t for t in (OWN_NOTE if d.trained_here else "", d.licence_note, ready.reason) if t)
            boxes.append(gr.Checkbox(ready.ready, label=engine.label(name), interactive=ready.ready,
                                     info=info or None, elem_id=f"method-{name}"))
            page[f"method_{name}"] = boxes[-1]
    page["boxes"] = boxes
    _dial(page, engine)
    with gr.Row():
        page["run"] = gr.Button("Compare", variant="primary", elem_id="run", scale=3)
        page["stop"] = gr.Button("Stop", variant="secondary", elem_id="stop", scale=1, min_width=60)


def _dial(page: Page, engine) -> None:
    """IDGAN's fidelity <-> detail dial (idgan@A: the weights (1 - A)·IDResNet + A·IDGAN)."""
    ready = denoisers.get(dial_name(0.5)).readiness() if FAMILY in engine.names() else None
    why = "" if ready is None or ready.ready else f"; not available: {ready.reason}"
    page["dial"] = gr.Slider(0, 1, value=1, step=0.05, label="IDGAN: fidelity ↔ detail (A)",
                             info="0 = IDResNet's fidelity, 1 = IDGAN's detail; the IDGAN panel runs the blended "
                                  "network (weights (1−A)·IDResNet + A·IDGAN). " + preview_accuracy(DIAL_PLANE) + why,
                             interactive=bool(ready and ready.ready), elem_id="dial")


def _crop_strip(page: Page, slots: int) -> None:
    """The locator (one full image with the crop box; click it to move the crop) beside every
    panel's zoomed crop, shown at the chosen zoom, captions under the images."""
    with gr.Row(elem_id="strip", elem_classes=["strip"]):
        page["locator"] = gr.Image(format="png", interactive=False, visible=False, elem_id="locator",
                                   label="Locator: click to move the crop", show_label=True, buttons=[],
                                   elem_classes=["locator"], min_width=160)
        page["crops"] = []
        for i in range(slots):
            page["crops"].append(gr.Image(format="png", interactive=False, visible=False, elem_id=f"crop-{i}",
                                          elem_classes=["crop"], show_label=True,
                                          buttons=["download", "fullscreen"], min_width=64))
            page[f"crop_{i}"] = page["crops"][-1]


def _crop_controls(page: Page) -> None:
    with gr.Row(elem_id="crop-controls", equal_height=True):
        page["crop_size"] = LenientSlider(crops.CROP_MIN, crops.CROP_MAX, value=crops.CROP_DEFAULT, step=8,
                                          label="Crop size (image px)", elem_id="crop-size", min_width=180)
        page["zoom"] = LenientSlider(crops.ZOOM_MIN, crops.ZOOM_MAX, value=crops.ZOOM_DEFAULT, step=1,
                                     label="Zoom (×; files too)", elem_id="zoom",
                                     min_width=180)
        # The keyboard's way to move the crop (arrow keys step it; Enter applies). No
        # minimum/maximum: a number outside the image is moved inside it (and the box shows
        # where), not refused. Hidden while no image is shown: gradio shows 0 in an empty box.
        page["centre_x"] = gr.Number(label="Crop centre x", precision=0, step=8, min_width=90, visible=False,
                                     elem_id="centre-x")
        page["centre_y"] = gr.Number(label="Crop centre y", precision=0, step=8, min_width=90, visible=False,
                                     elem_id="centre-y")
        page["show_errors"] = gr.Checkbox(False, label="Error maps |output − ground truth|",
                                          info="one colour scale for every map", elem_id="errors", min_width=180)
    page["centre_text"] = gr.Textbox(label="Crop (click the locator or any full view, or type its centre above "
                                           "and press Enter)", interactive=False, elem_id="centre", lines=1)
    page["error_bar"] = gr.Image(label="Error scale", show_label=False, format="png", interactive=False,
                                 visible=False, elem_id="error-bar", buttons=[], height=60)


def _panels(page: Page, slots: int) -> None:
    page["scores"] = gr.Dataframe(headers=views.SCORE_COLUMNS, label=SCORES_LABEL, interactive=False,
                                  visible=False, elem_id="scores")
    gr.Markdown("### Full views (the green box is the crop; click to move it)")
    page["fulls"] = _grid(page, slots, "full", "panel", height=300)
    # ``link`` holds the query string (written by the render); the page turns it into the
    # address bar's URL and the full link shown here, so the copy button copies something a
    # browser can open.
    page["link"] = gr.Textbox(visible=False, elem_id="link-query")
    page["link_url"] = gr.Textbox(label="Link to this view (also in the address bar)", interactive=False,
                                  elem_id="link", buttons=["copy"])


def _grid(page: Page, n: int, prefix: str, css_class: str, height: int | None, per_row: int = 4) -> list:
    items = []
    for start in range(0, n, per_row):
        with gr.Row(equal_height=True, elem_classes=["panel-row"]):
            for i in range(start, min(n, start + per_row)):
                items.append(gr.Image(format="png", interactive=False, visible=False, height=height,
                                      elem_id=f"{prefix}-{i}", elem_classes=[css_class], show_label=True,
                                      buttons=["download", "fullscreen"], min_width=200))
                page[f"{prefix}_{i}"] = items[-1]
    return items


def _ab_slider(page: Page) -> None:
    with gr.Accordion("A/B slider (lossless)", open=False):
        with gr.Row():
            page["ab_a"] = gr.Dropdown(label="Left", choices=[], elem_id="ab-a")
            page["ab_b"] = gr.Dropdown(label="Right", choices=[], elem_id="ab-b")
            page["ab_region"] = gr.Radio([("Whole image", "full"), ("Zoomed crop", "crop")], value="full",
                                         label="Show", elem_id="ab-region",
                                         info="the images (not error maps); the crop follows the crop box and zoom")
        page["slider"] = gr.ImageSlider(label="A/B", format="png", type="numpy", max_height=800, elem_id="slider")
        # the divider can be dragged, or set here (also from the keyboard)
        page["ab_position"] = LenientSlider(0, 100, value=50, step=1, label="Move the divider to (%)",
                                            elem_id="ab-position")


def _exports(page: Page) -> None:
    with gr.Row():
        page["fig_btn"] = gr.Button("Export paper-style figure (PNG)", size="sm")
        page["zip_btn"] = gr.Button("Export all outputs + CSV (zip)", size="sm")
    with gr.Row():
        # Shown once there is a file: two empty drop zones took 400 px of the page.
        page["fig_file"] = gr.File(label="Figure", interactive=False, height=80, visible=False)
        page["zip_file"] = gr.File(label="Outputs", interactive=False, height=80, visible=False)


def _benchmark(page: Page) -> None:
    page["bench_set"] = gr.Dropdown(list(benchmark.DATASETS), value="kodak24", label="Test set")
    page["bench_notes"] = gr.Markdown()
    page["bench_table"] = gr.Dataframe(label="Mean PSNR (dB): ours beside the paper's Table 1 and the FFDNet "
                                             "paper's table (see the notes above)", interactive=False)
    page["bench_plot"] = gr.Plot(label="PSNR against σ")
    with gr.Row():
        page["bench_detail"] = gr.Dataframe(
            label="Detail: the outputs' high-frequency energy over the clean images' (1 = as much fine texture "
                  "as the ground truth, below 1 = smoothed away, above 1 = noise left in or texture invented)",
            interactive=False, elem_id="bench-detail")
        page["bench_tradeoff"] = gr.Plot(label="PSNR against detail")
    page["bench_plane_on"] = gr.Radio(list(benchmark.PLANES), value=next(iter(benchmark.PLANES)),
                                      label="Perception-distortion plane measured on", elem_id="bench-plane-on")
    page["bench_plane"] = gr.Plot(label="Perception-distortion plane (PSNR against LPIPS)", elem_id="bench-plane")
    page["bench_paired"] = gr.Dataframe(label="Paired against the best mean at each σ (same images, same "
                                              "noise): is the lead consistent?", interactive=False,
                                        elem_id="bench-paired")
    with gr.Row():
        page["bench_sigma"] = gr.Dropdown(list(benchmark.TABLE_SIGMAS), value=25, label="σ for per-image PSNR")
    page["per_image"] = gr.Dataframe(label="Per-image PSNR, largest spread between methods first "
                                           "(click a Kodak image name to open it)", interactive=False,
                                     elem_id="per-image")


def _api(page: Page, names: list[str]) -> None:
    """Hidden components behind the ``/compare`` endpoint. Not ``gr.api``: its generic
    component hands a function the client's file payload as it came (no ``type="filepath"``,
    no check that the file was uploaded here) and returns paths as plain strings, which the
    client would not download as files, so ``Client.predict(handle_file(...), ...)`` as the
    README shows it would change. ``gr.File``/``gr.Files`` do that file handling."""
    with gr.Row(visible=False):
        page["api_image"] = gr.File(label="image", type="filepath")
        page["api_sigma"] = gr.Number(25, label="sigma")
        page["api_seed"] = gr.Number(0, label="seed")  # no rounding: 1.5 is refused, not taken as 2
        page["api_methods"] = gr.Dropdown(choices=names, multiselect=True, value=[], label="methods")
        page["api_json"] = gr.JSON(label="result")
        page["api_files"] = gr.Files(label="outputs")
        page["api_btn"] = gr.Button("compare")
