"""The gradio Blocks: components wired to the pure functions in ``session``, ``handlers``,
``crops``, ``export``, ``benchmark`` and ``state``. Every image goes out as PNG."""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from . import benchmark, crops, errormap, export, handlers, kodak, session, tables
from .convert import MAX_PIXELS, MAX_UPLOAD_MB, SIGMA_MAX, SIGMA_MIN, InputError, check_sigma, downscale_label
from .engine import Engine
from .state import QUERY_KEYS, ViewState, from_query, to_query
from .widgets import LenientSlider

# The address bar follows the view. Another input (image, sigma or seed) is a new history entry,
# so the browser's Back returns to the previous one; crop, zoom and methods only rewrite the
# current entry, and so does an upload (its address cannot hold the image). An address the app
# has not written yet (a link as opened: "sigma=25.0", no seed, a value out of range) is
# rewritten in place, never pushed, so Back does not land on it and push it again for ever.
# The page reloads itself on Back/Forward (``PAGE_JS``), reading the view from the address.
LINK_JS = """(q) => {
  if (!q) return '';
  const input = (s) => { const p = new URLSearchParams(s); return ['image', 'sigma', 'seed'].map((k) => p.get(k)).join('|'); };
  const ours = Boolean(history.state && history.state.denoiserView);
  const image = new URLSearchParams(q).get('image');
  const push = Boolean(image) && (!location.search || (ours && input(location.search) !== input(q)));
  if (push) history.pushState({denoiserView: true}, '', '?' + q);
  else history.replaceState({denoiserView: true}, '', '?' + q);
  const url = location.origin + location.pathname + '?' + q;
  if (image) return url;
  return 'An upload cannot be linked: this address opens the settings without the image. ' + url;
}"""
# Also, for screen readers: the status line is a live region (read out when it changes), and
# every panel image has its caption as its text alternative (gradio leaves alt empty).
PAGE_JS = """() => {
  window.addEventListener('popstate', () => location.reload());
  let queued = false;
  const label = () => {
    queued = false;
    const status = document.querySelector('#status .prose, #status [data-testid="markdown"]');
    if (status && !status.hasAttribute('aria-live')) {
      status.setAttribute('role', 'status');
      status.setAttribute('aria-live', 'polite');
    }
    document.querySelectorAll('[id^="full-"], [id^="crop-"], #slider, #error-bar').forEach((block) => {
      const caption = block.querySelector('[data-testid="block-label"]');
      const text = caption ? caption.textContent.trim() : '';  // textContent: no layout per frame
      block.querySelectorAll('img').forEach((img) => { if (text && img.alt !== text) img.alt = text; });
    });
    // Kodak thumbnails are read as their names ("kodim05, 5 of 24"), not only "Thumbnail 5 of 24".
    document.querySelectorAll('#kodak button[aria-label^="Thumbnail"]').forEach((button) => {
      const img = button.querySelector('img');
      if (img && img.alt) button.setAttribute('aria-label', img.alt + ', ' + button.getAttribute('aria-label').slice(10));
    });
  };
  new MutationObserver(() => { if (!queued) { queued = true; requestAnimationFrame(label); } })
    .observe(document.body, {childList: true, subtree: true, characterData: true, attributeFilter: ['src']});
  label();
}"""

CSS = """
#status {min-height: 2em}
.panel img, .crop img {image-rendering: pixelated}
/* a crop fills its panel whatever the files' magnification: the crop size alone sets how large
   its pixels show, the same in every panel (a small file was shown small, a large one shrunk) */
.crop img {width: 100% !important; height: 100% !important; object-fit: contain}
/* fixed column widths, so a lone panel on the last row keeps the size of the others */
.panel {flex: 0 1 calc(25% - 12px) !important}
.crop {flex: 0 1 calc(33.3% - 11px) !important}
/* a short last row starts at the left, under the first panels, instead of spreading out */
.panel-row {justify-content: flex-start !important}
.panel-row > .panel, .panel-row > .crop {margin-left: 0 !important; margin-right: 0 !important}
/* the Kodak thumbnails wrap to the column's width (fixed 100 px columns scrolled sideways) */
#kodak .grid-container {grid-template-columns: repeat(auto-fill, minmax(76px, 1fr)) !important}
/* on a phone every panel and crop takes the whole width (200 px ones left a third empty) */
@media (max-width: 640px) {.panel, .crop {flex: 1 1 100% !important}
  /* and a panel is as tall as its image (a fixed box left bands empty above and below) */
  .panel, .panel .image-container, .panel .image-frame, .panel button, .panel img,
  .crop, .crop .image-container, .crop .image-frame, .crop button, .crop img {height: auto !important}}
/* a panel's caption wraps before the download and full-screen buttons instead of running under them */
.panel label[data-testid="block-label"], .crop label[data-testid="block-label"] {max-width: calc(100% - 64px)}
/* at 200 % browser zoom (or a tablet) two panels a row fill the width (four stayed 200 px wide) */
@media (min-width: 641px) and (max-width: 1100px) {.panel, .crop {flex: 0 1 calc(50% - 8px) !important}}
/* the theme's info texts and slider limits were 1.9:1 on white; these are over 4.5:1 */
.gradio-container {--block-info-text-color: #52525b; --body-text-color-subdued: #52525b}
.dark .gradio-container {--block-info-text-color: #a1a1aa; --body-text-color-subdued: #a1a1aa}
/* keyboard focus must show: the theme's ring is faint on checkboxes and absent on sliders */
input:focus-visible, button:focus-visible, textarea:focus-visible, [role="tab"]:focus-visible
  {outline: 2px solid #2563eb !important; outline-offset: 2px}
"""
OWN_NOTE = "trained by this project, briefly so far (its model card says how long)"
SCORES_LABEL = ("Scores (against the ground truth; detail: high-frequency energy over the ground truth's; "
                "seconds: while the others ran beside it; 'bf16 on cpu': run in bfloat16 for speed, within "
                "about 0.01 dB of the Benchmark tab's fp32)")
SCORES_LABEL_NO_TRUTH = ("Scores (an already-noisy input has no ground truth, so no PSNR, SSIM or detail; "
                         "seconds: while the others ran beside it)")
#: A running comparison yields at least this often (seconds), so that Stop, or choosing another
#: image, ends it at once rather than when its slowest method finishes.
HEARTBEAT = 0.5
#: Results kept per session for this long after the last update (seconds).
STATE_TTL = 3600
EXPORT_MAX_AGE = 3600
#: Panel images are written as PNG files, which gradio copies into its own cache as soon as the
#: render returns; our copies (about 2 MB per render) are removed after this many seconds.
VIEW_MAX_AGE = 60


@dataclass
class Settings:
    results_root: Path
    max_pixels: int = MAX_PIXELS
    heavy_limit: int = 2  # comparisons running at once, UI and API together
    max_upload_mb: int = MAX_UPLOAD_MB  # the server refuses larger files (``launch_kwargs``)


class ExportDir:
    """Where export, API and panel files are written before gradio serves them: one fresh
    sub-folder per request (never shared between users), those older than ``max_age`` seconds
    removed. ``views`` holds the panels' PNGs, kept a shorter time."""

    def __init__(self, max_age: float = EXPORT_MAX_AGE, root: Path | None = None) -> None:
        self.max_age = max_age
        self.root = Path(tempfile.mkdtemp(prefix="denoiser-app-")) if root is None else root
        self.views = ExportDir(VIEW_MAX_AGE, self.root / "_views") if root is None else None

    def new(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - self.max_age
        for old in self.root.iterdir():
            try:
                if old.name != "_views" and old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _err(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def build(engine: Engine, settings: Settings) -> tuple[gr.Blocks, ExportDir]:
    names = engine.names()
    n_slots = 2 + len(names)
    kodak_names = kodak.names()
    thumbs = kodak.thumbnails()
    exports = ExportDir()

    with gr.Blocks(title="Denoiser comparison", delete_cache=(3600, 3600)) as demo:
        comparison = gr.State(None, time_to_live=STATE_TTL)
        source = gr.State(None, time_to_live=STATE_TTL)
        centre = gr.State(None)
        autorun = gr.State(False)
        ab_shown = gr.State(None)  # what the A/B slider shows: (image, sigma, seed, left, right, results, crop)
        ab_pinned = gr.State(None)  # (image, sigma, seed) whose A/B right side the user chose
        ab_left = gr.State(None)  # the left side the user chose last: shown again once it exists
        tick = gr.Number(0, visible=False)
        moved = gr.Number(0, visible=False)  # bumped by crop moves: a render, as ``tick`` is by results
        shown = gr.State(None)  # what renders last wrote: {"centre": (x, y)}

        gr.Markdown("# Denoiser comparison\nEvery method side by side on Kodak24 or your own image. "
                    "Numbers follow one protocol: PSNR/SSIM on the clipped, rounded 8-bit output against the "
                    "8-bit ground truth, computed on the server; *detail* is an output's high-frequency "
                    "energy over the ground truth's (1 = as much fine texture, below 1 = smoothed away, "
                    "above 1 = noise left in or texture invented). Images are lossless PNG.")
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    with gr.Column(scale=3, min_width=320):
                        gallery = gr.Gallery(value=thumbs or None, label="Kodak24 (click to pick)", columns=8,
                                             height=250, allow_preview=False, format="png", elem_id="kodak",
                                             visible=bool(thumbs), buttons=[])
                        kodak_note = gr.Markdown("" if thumbs else kodak.where_to_get(), elem_id="kodak-note")
                        get_kodak = gr.Button("Download Kodak24 (sha256-checked)", visible=not thumbs, size="sm")
                        upload = gr.File(label=f"…or upload an image (PNG, JPEG, TIFF, BMP, WebP; "
                                               f"at most {settings.max_upload_mb} MB)", type="filepath",
                                         file_types=["image"], elem_id="upload", height=140)
                        with gr.Row():
                            downscale = gr.Checkbox(False, label=downscale_label(settings.max_pixels))
                            already_noisy = gr.Checkbox(False, label="My image is already noisy",
                                                        info="no ground truth, no PSNR; σ is estimated",
                                                        elem_id="already-noisy")
                    with gr.Column(scale=2, min_width=280):
                        sigma = LenientSlider(SIGMA_MIN, SIGMA_MAX, value=25, step=1, label="Noise σ (0-255 scale)",
                                              elem_id="sigma")
                        seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="seed")
                        readiness = engine.readiness()  # not ready: why; generators: the sigmas they were trained for
                        boxes = []
                        with gr.Group():
                            for name in names:
                                r = readiness[name]
                                info = "; ".join(t for t in (OWN_NOTE if engine.denoisers[name].trained_here else "",
                                                             r.reason) if t)
                                boxes.append(gr.Checkbox(r.ready, label=engine.label(name), interactive=r.ready,
                                                         info=info or None, elem_id=f"method-{name}"))
                        with gr.Row():
                            run_btn = gr.Button("Compare", variant="primary", elem_id="run", scale=3)
                            stop_btn = gr.Button("Stop", variant="secondary", elem_id="stop", scale=1, min_width=60)
                        status = gr.Markdown("Pick a Kodak24 image or upload one, then press Compare.", elem_id="status")
                    with gr.Column(scale=2, min_width=280):
                        crop_size = LenientSlider(crops.CROP_MIN, crops.CROP_MAX, value=crops.CROP_DEFAULT, step=8,
                                                  label="Crop size (px)", elem_id="crop-size")
                        zoom = LenientSlider(crops.ZOOM_MIN, crops.ZOOM_MAX, value=crops.ZOOM_DEFAULT, step=1,
                                             label="Magnification of the crop files (nearest neighbour; "
                                                   "on screen a crop fills its panel)", elem_id="zoom")
                        centre_text = gr.Textbox(label="Crop (click any full view, or type its centre below and press Enter)",
                                                 interactive=False, elem_id="centre")
                        with gr.Row():  # the keyboard's way to move the crop (arrow keys step it; Enter applies)
                            # No minimum/maximum: a number outside the image is moved inside it
                            # (and the box shows where), not refused. Hidden while no image is
                            # shown: gradio shows 0 in an empty number box, placeholder or not.
                            centre_x = gr.Number(label="Crop centre x", precision=0, step=8, min_width=100,
                                                 visible=False, elem_id="centre-x")
                            centre_y = gr.Number(label="Crop centre y", precision=0, step=8, min_width=100,
                                                 visible=False, elem_id="centre-y")
                        show_errors = gr.Checkbox(False, label="Show error maps |output − ground truth|",
                                                  info="one colour scale for every map", elem_id="errors")
                        error_bar = gr.Image(label="Error scale", show_label=False, format="png", interactive=False,
                                             visible=False, elem_id="error-bar", buttons=[])
                        # ``link`` holds the query string (written by ``render``); the page turns it
                        # into the address bar's URL and the full link shown here, so the copy
                        # button copies something a browser can open.
                        link = gr.Textbox(visible=False, elem_id="link-query")
                        link_url = gr.Textbox(label="Link to this view (also in the address bar)",
                                              interactive=False, elem_id="link", buttons=["copy"])
                scores = gr.Dataframe(headers=handlers.SCORE_COLUMNS, label=SCORES_LABEL, interactive=False,
                                      visible=False, elem_id="scores")
                gr.Markdown("### Full views (the green box is the crop; click to move it)")
                fulls = _grid(n_slots, "full", "panel", height=300)
                gr.Markdown("### Zoomed crops")
                # A fixed height: crops below the fold load lazily, and the page must not jump as they do.
                crop_views = _grid(n_slots, "crop", "crop", height=400, per_row=3)
                with gr.Accordion("A/B slider (lossless)", open=False):
                    with gr.Row():
                        ab_a = gr.Dropdown(label="Left", choices=[], elem_id="ab-a")
                        ab_b = gr.Dropdown(label="Right", choices=[], elem_id="ab-b")
                        ab_region = gr.Radio([("Whole image", "full"), ("Zoomed crop", "crop")], value="full",
                                             label="Show", elem_id="ab-region",
                                             info="the images (not error maps); the crop follows the crop box and zoom")
                    slider = gr.ImageSlider(label="A/B", format="png", type="numpy", max_height=800, elem_id="slider")
                    # the divider can be dragged, or set here (also from the keyboard)
                    ab_position = LenientSlider(0, 100, value=50, step=1, label="Move the divider to (%)",
                                                elem_id="ab-position")
                with gr.Row():
                    fig_btn = gr.Button("Export paper-style figure (PNG)", size="sm")
                    zip_btn = gr.Button("Export all outputs + CSV (zip)", size="sm")
                with gr.Row():
                    # Shown once there is a file: two empty drop zones took 400 px of the page.
                    fig_file = gr.File(label="Figure", interactive=False, height=80, visible=False)
                    zip_file = gr.File(label="Outputs", interactive=False, height=80, visible=False)

            with gr.Tab("Benchmark", id="benchmark"):
                bench_set = gr.Dropdown(list(benchmark.DATASETS), value="kodak24", label="Test set")
                bench_notes = gr.Markdown()
                bench_table = gr.Dataframe(label="Mean PSNR (dB): ours beside the paper's Table 1 and the FFDNet "
                                                 "paper's table (see the notes above)", interactive=False)
                bench_plot = gr.Plot(label="PSNR against σ")
                with gr.Row():
                    bench_detail = gr.Dataframe(label="Detail: the outputs' high-frequency energy over the clean "
                                                      "images' (1 = as much fine texture as the ground truth, "
                                                      "below 1 = smoothed away, above 1 = noise left in or "
                                                      "texture invented)", interactive=False,
                                                elem_id="bench-detail")
                    bench_tradeoff = gr.Plot(label="PSNR against detail")
                bench_paired = gr.Dataframe(label="Paired against the best mean at each σ (same images, same "
                                                  "noise): is the lead consistent?", interactive=False,
                                            elem_id="bench-paired")
                with gr.Row():
                    bench_sigma = gr.Dropdown(list(benchmark.TABLE_SIGMAS), value=25, label="σ for per-image PSNR")
                per_image = gr.Dataframe(label="Per-image PSNR, largest spread between methods first "
                                               "(click a Kodak image name to open it)", interactive=False,
                                         elem_id="per-image")

        # Hidden components behind the /compare API endpoint.
        with gr.Row(visible=False):
            api_image = gr.File(label="image", type="filepath")
            api_sigma = gr.Number(25, label="sigma")
            api_seed = gr.Number(0, label="seed")  # no rounding: 1.5 is refused, not taken as 2
            api_methods = gr.Dropdown(choices=names, multiselect=True, value=[], label="methods")
            api_json = gr.JSON(label="result")
            api_files = gr.Files(label="outputs")
            api_btn = gr.Button("compare")

        # ---- handlers (thin: each calls the pure functions) ---------------------------
        def stale_hint(comp, sg, sd, flags) -> str:
            """"" while the panels show the chosen σ, seed and methods, else a hint to press Compare."""
            try:
                same = float(sg) == comp.sigma and (comp.seed is None or float(sd) == comp.seed)
            except (TypeError, ValueError):
                same = False
            ran = set(comp.methods) | set(comp.stopped)
            if comp.seed is None and not ran:  # an input that came noisy, not yet run: σ changes nothing shown
                return ""
            ticked = {n for n, f in zip(names, flags) if f}
            if same and (not ran or ticked == ran):  # a preview has run no methods yet
                return ""
            shown = f"σ {comp.sigma:g}" + ("" if comp.seed is None else f", seed {comp.seed}")
            if ran:
                shown += ", " + ", ".join(engine.label(m) for m in names if m in ran)
            return f"Settings changed: press Compare to run them (the panels show {shown})."

        def status_line(comp, hint: str = "") -> str:
            """What the status line says about ``comp``: a preview's loading message, the progress,
            or the summary once done; followed by ``hint`` when the settings have changed since."""
            if not comp.methods and not comp.stopped:
                return hint or comp.note
            if comp.elapsed is None:
                text = f"{len(comp.results)} of {len(comp.methods)} done…"
            else:
                text = session.summary(comp, comp.elapsed)
            return f"{text} {hint}" if hint else text

        def render(comp, ctr, size, zm, errs, last=None, sg=None, sd=None, *flags):
            """Every panel for ``comp``, and the status line for it and the current settings
            (``sg``, ``sd``, the method ``flags``; None: no hint). ``last``: what renders wrote
            before (``shown``); the centre boxes are written only when the centre changes, so
            that no render writes over a number being typed."""
            last = last or {}
            hidden = gr.update(value=None, visible=False)
            if comp is None:
                # no input (a refused upload, say): no link either, rather than the last input's
                return [hidden] * (2 * n_slots) + [gr.update(visible=False), "", "", gr.skip(),
                                                   gr.update(visible=False), hidden, hidden, gr.skip(), {}]
            box = crops.crop_box(ctr, crops.clamp_size(size), comp.shape)
            zm = crops.clamp_zoom(zm)
            maps, vmax = handlers.error_views(comp) if errs else ({}, 1.0)
            full_out, crop_out = [], []
            panels = handlers.panels(comp)
            # Each panel goes out as a PNG file written here, fast to encode (gradio's own encoder
            # took 0.1 s per smooth 768x512 image) and named for what it shows, for its download.
            folder = exports.views.new()
            stem = export.view_stem(comp)
            for i in range(n_slots):
                if i >= len(panels):
                    full_out.append(hidden)
                    crop_out.append(hidden)
                    continue
                p = panels[i]
                shown = maps.get(p.key, p.image) if errs else p.image
                mapped = " · error map" if errs and p.key in maps else ""
                name = f"{stem}_{p.key}" + ("_errors" if mapped else "")
                # the full view carries the green crop box: its name says so (the zip holds the bare images)
                full = export.png_file(folder, f"{name}_with_crop_box.png", handlers.full_view(shown, box))
                crop = export.png_file(folder, f"{name}_crop_x{box.x0}_y{box.y0}_{box.width}px_{zm}x.png",
                                       handlers.crop_view(shown, box, zm))
                full_out.append(gr.update(value=full, label=p.short + mapped, visible=True))
                crop_out.append(gr.update(value=crop, label=p.label + mapped, visible=True))
            bar = gr.update(value=errormap.legend(vmax) if maps else None, visible=bool(maps))
            cx, cy = crops.clamp_centre(ctr, comp.shape) if ctr is not None else box.centre
            text = (f"centre x={cx}, y={cy}; box x {box.x0}-{box.x1 - 1}, y {box.y0}-{box.y1 - 1} "
                    f"({box.width}x{box.height}; files at {zm}x)")
            linkable = comp.source in kodak_names and comp.has_truth  # "already noisy": a link cannot say so
            view = ViewState(image=comp.source if linkable else None, sigma=comp.sigma,
                             seed=comp.seed or 0, x=cx, y=cy, crop=crops.clamp_size(size), zoom=zm,
                             methods=tuple(comp.methods), errors=bool(errs and maps))
            # "Done" is written only here, so it appears once the final panels are on screen.
            progress = status_line(comp, "" if sg is None else stale_hint(comp, sg, sd, flags))
            frame = pd.DataFrame(handlers.scores_table(comp), columns=handlers.SCORE_COLUMNS)
            table = gr.update(value=tables.fixed(frame, handlers.SCORE_FORMATS), visible=bool(comp.methods),
                              label=SCORES_LABEL if comp.has_truth else SCORES_LABEL_NO_TRUTH)
            scale = f": 0 to {vmax:g} grey levels, dark to bright" if maps else ""  # the bar's numbers, as text
            errors_box = gr.update(interactive=comp.has_truth,
                                   info=f"one colour scale for every map{scale}" if comp.has_truth
                                   else "no ground truth here, so no error maps")
            boxes_out = ((gr.update(value=cx, visible=True), gr.update(value=cy, visible=True))
                         if last.get("centre") != (cx, cy) else (gr.skip(), gr.skip()))
            return full_out + crop_out + [bar, text, to_query(view), progress or gr.skip(), table, *boxes_out,
                                          errors_box, {"centre": (cx, cy)}]

        render_inputs = [comparison, centre, crop_size, zoom, show_errors, shown, sigma, seed, *boxes]
        render_outputs = fulls + crop_views + [error_bar, centre_text, link, status, scores, centre_x, centre_y,
                                               show_errors, shown]

        def preview(src, sg, sd, noisy_mode, note=""):
            """A comparison without methods (ground truth and noisy) for a freshly picked input;
            ``note``: the status line its render writes (after any render of an earlier input)."""
            if src is None:
                return None
            try:
                comp, _ = session.new_comparison(engine, src, sg, sd, noisy_mode, [])
            except InputError as exc:  # a sigma or seed typed out of range: say why nothing shows
                gr.Warning(f"No preview: {exc}")
                return None
            comp.note = note
            return comp

        def pick_kodak(sg, sd, tk, evt: gr.SelectData):
            name = kodak_names[evt.index] if isinstance(evt.index, int) and evt.index < len(kodak_names) else None
            if name is None:
                raise gr.Error("unknown Kodak24 image")
            # A Kodak image is clean, with ground truth: never treat it as already noisy.
            out = _load_source(lambda: session.source_from_kodak(name), sg, sd, False, tk)
            return (*out, False)

        def _load_source(make, sg, sd, noisy_mode, tk):
            try:
                src = make()
            except InputError as exc:
                # Said in the status line and a toast; the previous input is dropped, so that
                # Compare cannot silently run an image other than the one just chosen.
                gr.Warning(str(exc))
                return None, None, None, tk + 1, gr.skip(), f"**Could not load the image:** {exc}"
            note = f"Loaded {src.name} ({src.image.shape[1]}x{src.image.shape[0]})"
            if src.note:
                note += f", {src.note}"
            sigma_update = gr.skip()
            if noisy_mode:
                sg, est = session.suggested_sigma(src)
                sigma_update = sg
                note += f"; {est}"
            note += ". Press Compare."
            return src, None, preview(src, sg, sd, noisy_mode, note), tk + 1, sigma_update, note

        load_outputs = [source, centre, comparison, tick, sigma, status]
        gallery.select(pick_kodak, [sigma, seed, tick], load_outputs + [already_noisy],
                       api_visibility="private")

        def on_upload(path, down, sg, sd, noisy_mode, tk):
            out = _load_source(lambda: session.source_from_upload(path, settings.max_pixels, down),
                               sg, sd, noisy_mode, tk)
            return (*out, gr.skip() if out[0] is not None else gr.update(value=None))  # a refused file goes

        upload.upload(on_upload, [upload, downscale, sigma, seed, already_noisy, tick], load_outputs + [upload],
                      api_visibility="private")

        def on_upload_cleared(src, tk):
            if src is None or not src.name.startswith("upload"):  # a Kodak image picked since stays
                return [gr.skip()] * len(load_outputs)
            return None, None, None, tk + 1, gr.skip(), "Upload removed. Pick a Kodak24 image or upload one."

        upload.clear(on_upload_cleared, [source, tick], load_outputs, api_visibility="private")

        def on_noisy_switch(src, noisy_mode, sg, sd, tk):
            """Either way, the preview is rebuilt for the current input (the input as it is,
            or with synthetic noise)."""
            if src is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            if noisy_mode:
                sg, note = session.suggested_sigma(src)
                note += ". Press Compare."
                return sg, note, preview(src, sg, sd, True, note), tk + 1
            try:
                sg = check_sigma(sg)  # a box left empty or out of range: say so, not a TypeError
            except InputError as exc:
                raise _err(exc) from exc
            note = f"Noise of σ {sg:g} is added to {src.name}. Press Compare."
            return gr.skip(), note, preview(src, sg, sd, False, note), tk + 1

        # .input, not .change: only the user's own clicks. Loading an image unticks the box
        # itself and builds the matching preview.
        already_noisy.input(on_noisy_switch, [source, already_noisy, sigma, seed, tick],
                            [sigma, status, comparison, tick], api_visibility="private")

        def fetch_kodak():
            try:
                kodak.paths(download=True)
            except InputError as exc:
                raise _err(exc) from exc
            return gr.update(value=kodak.thumbnails(), visible=True), "", gr.update(visible=False)

        get_kodak.click(fetch_kodak, None, [gallery, kodak_note, get_kodak], api_visibility="private")

        def run_comparison(src, sg, sd, noisy_mode, tk, *flags):
            if src is None:
                raise gr.Error("Pick a Kodak24 image or upload one first. (If the page shows one, the server "
                               "has dropped this view after a long pause or when busy: reload the page.)",
                               print_exception=False)
            methods = [n for n, f in zip(names, flags) if f]
            if not methods:
                raise gr.Error("Tick at least one method.", print_exception=False)
            start = time.perf_counter()
            try:
                comp, noisy = session.new_comparison(engine, src, sg, sd, noisy_mode, methods)
            except InputError as exc:
                raise _err(exc) from exc
            tk += 1
            yield comp, tk, f"Running {', '.join(engine.label(m) for m in methods)}…"
            for update in session.run(engine, comp, noisy, heartbeat=HEARTBEAT):
                if update is None:  # nothing new: a yield that changes nothing, where a Stop can end it
                    yield gr.skip(), gr.skip(), gr.skip()
                    continue
                tk += 1
                yield update, tk, gr.skip()  # the render triggered by tick shows the progress
            # A new object: renders still queued for earlier ticks hold the old one, so they
            # cannot write "Done" before the final render (a click after "Done" is then safe).
            comp = dataclasses.replace(comp, results=dict(comp.results), elapsed=time.perf_counter() - start)
            yield comp, tk + 1, gr.skip()

        compare_inputs = [source, sigma, seed, already_noisy, tick] + boxes
        # always_last: Compare pressed during a run (new settings, say) runs once that one ends,
        # instead of being dropped without a word.
        run_event = run_btn.click(run_comparison, compare_inputs, [comparison, tick, status], concurrency_id="heavy",
                                  concurrency_limit=settings.heavy_limit, show_progress="hidden",
                                  api_visibility="private", trigger_mode="always_last")

        def settings_changed(comp, sg, sd, *flags):
            """After σ, the seed or the methods change, the panels still show the old ones: say so
            (and once they match again, say what the panels show)."""
            return gr.skip() if comp is None else (status_line(comp, stale_hint(comp, sg, sd, flags)) or gr.skip())

        # σ and the seed on .change, so that values set by a load (a link's) are compared too.
        for control in (sigma, seed):
            control.change(settings_changed, [comparison, sigma, seed, *boxes], [status], api_visibility="private",
                           show_progress="hidden")
        for control in boxes:
            control.input(settings_changed, [comparison, sigma, seed, *boxes], [status], api_visibility="private",
                          show_progress="hidden")

        # One render at a time per page, the latest last: a slow render of an input left behind,
        # or of a result, cannot land after the render of a later input or crop move.
        gr.on([tick.change, moved.change], render, render_inputs, render_outputs, api_visibility="private",
              show_progress="hidden", trigger_mode="always_last")

        def ab_update(comp, a, b, region="full", ctr=None, size=None, zm=None, automatic=False, left=None):
            """(left dropdown, right dropdown, the slider's pair, what that pair is: ``ab_shown``).
            ``left``: the left side the user chose, taken again once this input has it."""
            if comp is None:
                return gr.update(choices=[], value=None), gr.update(choices=[], value=None), None, None
            choices = handlers.slider_choices(comp)
            keys = [k for _, k in choices]
            a = left if left in keys else a if a in keys else (keys[0] if keys else None)
            # The right side's default: the best method, or without ground truth the first result.
            done = [k for k in keys if k in comp.methods]
            default = handlers.best_method(comp) or (done[0] if done else None)
            if automatic and default:  # follows the results as they arrive (unless the user chose)
                b = default
            b = b if b in keys else (default or (keys[-1] if keys else None))
            box, zm = ab_box(comp, region, ctr, size, zm)
            pair = handlers.slider_pair(comp, a, b, box, zm) if a and b else None
            key = (comp.image_id, comp.sigma, comp.seed, a, b, tuple(m for m in comp.methods if m in comp.results),
                   (box, zm))
            return gr.update(choices=choices, value=a), gr.update(choices=choices, value=b), pair, key

        def ab_box(comp, region, ctr, size, zm):
            """(the crop box, its zoom) when the slider shows the zoomed crop, else (None, 1)."""
            if region != "crop" or comp is None:
                return None, 1
            return crops.crop_box(ctr, crops.clamp_size(size), comp.shape), crops.clamp_zoom(zm)

        def identity(comp):
            return None if comp is None else (comp.image_id, comp.sigma, comp.seed)

        def ab_follow(comp, a, b, shown, pinned, region="full", ctr=None, size=None, zm=None, chosen_left=None):
            """``ab_update`` on every new result and crop move; the slider's images are sent only
            when they change (re-sending the same pair made the page fire this event again, for
            ever). A right side the user chose for this input and noise stays, and a left side
            the user chose comes back on every input that has it."""
            left, right, pair, key = ab_update(comp, a, b, region, ctr, size, zm,
                                               automatic=pinned is None or pinned != identity(comp), left=chosen_left)
            if key is not None and key == shown:
                return left, right, gr.skip(), gr.skip()
            return left, right, pair, key

        ab_view = [ab_region, centre, crop_size, zoom]
        gr.on([tick.change, moved.change], ab_follow,
              [comparison, ab_a, ab_b, ab_shown, ab_pinned, *ab_view, ab_left],
              [ab_a, ab_b, slider, ab_shown], api_visibility="private", show_progress="hidden")
        ab_region.input(ab_update, [comparison, ab_a, ab_b, *ab_view], [ab_a, ab_b, slider, ab_shown],
                        api_visibility="private", trigger_mode="always_last")

        def ab_pick_left(comp, a, b, *view):
            return (*ab_update(comp, a, b, *view), a)

        ab_a.input(ab_pick_left, [comparison, ab_a, ab_b, *ab_view], [ab_a, ab_b, slider, ab_shown, ab_left],
                   api_visibility="private", trigger_mode="always_last")

        def ab_pick_right(comp, a, b, *view):
            # A pick among a preview's two images is not a choice against the methods to come.
            return (*ab_update(comp, a, b, *view), identity(comp) if comp is not None and comp.results else None)

        def place_divider(position):
            try:
                return gr.update(slider_position=min(100.0, max(0.0, float(position))))
            except (TypeError, ValueError):  # the box emptied while typing
                return gr.skip()

        ab_position.change(place_divider, [ab_position], [slider], api_visibility="private", show_progress="hidden")
        ab_b.input(ab_pick_right, [comparison, ab_a, ab_b, *ab_view], [ab_a, ab_b, slider, ab_shown, ab_pinned],
                   api_visibility="private", trigger_mode="always_last")

        # Crop moves set the centre and bump ``moved``; the render they trigger is the same
        # listener as the results' (below), so one page's renders never overtake each other.
        def on_click(comp, mv, evt: gr.SelectData):
            ctr = None if comp is None else crops.parse_click(evt.index, comp.shape)
            if ctr is None:
                return gr.skip(), gr.skip()
            return ctr, mv + 1

        for full in fulls:
            full.select(on_click, [comparison, moved], [centre, moved], api_visibility="private",
                        show_progress="hidden")
        def on_centre_typed(comp, ctr_now, x, y, size, mv):
            """A centre typed (or stepped with the arrow keys) into the x / y boxes, applied on
            Enter or on leaving the box: an event per keystroke would write the box back while
            it is being typed in ("517" ended as "5")."""
            if comp is None or x is None or y is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            ctr = crops.clamp_centre((round(x), round(y)), comp.shape)
            now = crops.clamp_centre(ctr_now, comp.shape) if ctr_now is not None else crops.crop_box(
                None, crops.clamp_size(size), comp.shape).centre
            # A number outside the image is put back inside (the box then shows where).
            boxes_out = [gr.skip() if ctr[0] == x else ctr[0], gr.skip() if ctr[1] == y else ctr[1]]
            if ctr == now:  # leaving the box unchanged: nothing to redraw
                return gr.skip(), gr.skip(), *boxes_out
            return ctr, mv + 1, *boxes_out

        for box_input in (centre_x, centre_y):
            for trigger in (box_input.submit, box_input.blur):
                trigger(on_centre_typed, [comparison, centre, centre_x, centre_y, crop_size, moved],
                        [centre, moved, centre_x, centre_y], api_visibility="private", show_progress="hidden")

        for control in (crop_size, zoom, show_errors):
            control.change(lambda mv: mv + 1, [moved], [moved], api_visibility="private", show_progress="hidden")
        link.change(None, [link], [link_url], js=LINK_JS)

        def export_figure(comp, ctr, size):
            if comp is None or not comp.finished():
                raise gr.Error("Run a comparison first.", print_exception=False)
            box = crops.crop_box(ctr, crops.clamp_size(size), comp.shape)
            path = exports.new() / f"figure_{export.view_stem(comp)}.png"
            path.write_bytes(export.png_bytes(export.figure(comp, box)))
            return gr.update(value=str(path), visible=True)

        def export_zip(comp):
            if comp is None or not comp.finished():
                raise gr.Error("Run a comparison first.", print_exception=False)
            path = exports.new() / f"outputs_{export.view_stem(comp)}.zip"
            path.write_bytes(export.zip_bytes(comp))
            return gr.update(value=str(path), visible=True)

        fig_btn.click(export_figure, [comparison, centre, crop_size], fig_file, api_visibility="private")
        zip_btn.click(export_zip, [comparison], zip_file, api_visibility="private")

        # ---- benchmark tab ------------------------------------------------------------
        named = benchmark.labelled_table  # methods named as in the Compare tab

        def show_benchmark(dataset, sg):
            df, notes = benchmark.load(settings.results_root, dataset)
            table = benchmark.summary_table(df, dataset, expected=benchmark.EXPECTED_IMAGES.get(dataset))
            notes = notes or ["All expected results are present."]
            reference = benchmark.reference_note(dataset)
            label = ("Mean PSNR (dB): ours beside the published values (see the notes above)" if reference
                     else f"Mean PSNR (dB) on {dataset} (no published values on this set to set beside them)")
            return ("\n".join(f"- {n}" for n in notes + ([reference] if reference else [])),
                    gr.update(value=tables.fixed(named(table)), label=label),
                    benchmark.labelled_figure(benchmark.psnr_chart(df, dataset)),
                    tables.fixed(named(benchmark.detail_table(df))),
                    benchmark.labelled_figure(benchmark.tradeoff_chart(df, dataset)),
                    tables.fixed(named(benchmark.paired_table(df)), {"ΔPSNR (dB)": "+.2f"}),
                    tables.fixed(named(benchmark.per_image(df, sg))))

        bench_outputs = [bench_notes, bench_table, bench_plot, bench_detail, bench_tradeoff, bench_paired, per_image]
        bench_set.change(show_benchmark, [bench_set, bench_sigma], bench_outputs, api_visibility="private")
        bench_sigma.change(show_benchmark, [bench_set, bench_sigma], bench_outputs, api_visibility="private")

        def open_from_table(dataset, sg, sd, tk, comp, evt: gr.SelectData):
            name = str(evt.row_value[0]) if evt.row_value else ""
            stem = name.rsplit(".", 1)[0]
            if dataset != "kodak24" or stem not in kodak_names:
                raise gr.Error("Only Kodak24 images can be opened in the Compare tab.", print_exception=False)
            if comp is not None and comp.methods and comp.elapsed is None:
                # Its results would land on this image; this tab does not stop it behind the user's back.
                raise gr.Error("A comparison is still running in the Compare tab: press Stop there first, "
                               "or wait for it to finish.", print_exception=False)
            try:
                sg = float(sg)
            except (TypeError, ValueError):
                sg = 25.0
            out = _load_source(lambda: session.source_from_kodak(stem), sg, sd, False, tk)
            # The image has ground truth: untick "already noisy" so Compare adds the noise.
            return (*out[:4], sg, out[5], False, gr.Tabs(selected="compare"))

        per_image.select(open_from_table, [bench_set, bench_sigma, seed, tick, comparison],
                         load_outputs + [already_noisy, tabs], api_visibility="private").success(
            None, js="() => { const b = document.querySelector('#run'); if (b) b.focus(); }")  # not lost on the page

        # ---- API ----------------------------------------------------------------------
        def compare_api(image, sigma, seed, methods):
            """Denoise ``image`` with synthetic noise (sigma on 0-255, seed) by every method
            in ``methods``. Returns the JSON record and the PNG files (noisy first, then the
            methods in the record's order)."""
            try:
                record, comp = session.api_compare(engine, image, sigma, seed, methods, settings.max_pixels)
            except InputError as exc:
                raise _err(exc) from exc
            folder = exports.new()
            files = []
            for key, img in [("noisy", comp.noisy.output)] + [(m, comp.results[m].output) for m in comp.methods]:
                if img is not None:
                    path = folder / f"{key}.png"
                    path.write_bytes(export.png_bytes(img))
                    files.append(str(path))
            record["files"] = [Path(f).name for f in files]
            return record, files

        api_btn.click(compare_api, [api_image, api_sigma, api_seed, api_methods], [api_json, api_files],
                      api_name="compare", concurrency_id="heavy", concurrency_limit=settings.heavy_limit)

        # ---- URL state on load ----------------------------------------------------------
        load_outputs_on_open = [source, comparison, centre, tick, sigma, seed, crop_size, zoom, autorun, status,
                                show_errors]

        def on_load(tk, request: gr.Request):
            query = dict(request.query_params) if request is not None else {}
            if not any(k in query for k in QUERY_KEYS):
                # A plain visit: the page already shows the defaults. Leave every output alone, so
                # that an image picked before this event returns is not reset to "nothing loaded".
                return [gr.skip()] * (len(load_outputs_on_open) + len(boxes))
            view, problems = from_query(query, kodak_names, names, [n for n in names if readiness[n].ready])
            box_updates = [gr.update(value=(n in view.methods and readiness[n].ready)) for n in names]
            src, comp, note = None, None, ""
            if view.image:
                try:
                    src = session.source_from_kodak(view.image)
                    comp = preview(src, view.sigma, view.seed, False)
                    note = f"Loaded {view.image} from the link" + ("." if query.get("methods") else ". Press Compare.")
                except InputError as exc:
                    problems.append(str(exc))
            if problems:
                if src and query.get("methods"):
                    note = f"Loaded {view.image} from the link. Press Compare."
                note = (note + " " if note else "") + "Ignored in the link: " + "; ".join(problems)
                gr.Warning("Ignored in the link: " + "; ".join(problems), duration=30)
            if comp is not None:
                comp.note = note
            # A link with methods reproduces a comparison and runs it; one without (a preview's)
            # opens the image and waits, so reloading it does not start every method.
            # A link with problems waits too: it would run settings it did not ask for.
            run_now = bool(src) and bool(query.get("methods")) and not problems
            return ([src, comp, view.centre, tk + 1, view.sigma, view.seed, view.crop, view.zoom, run_now,
                     note or "Pick a Kodak24 image or upload one, then press Compare.", view.errors] + box_updates)

        def auto_compare(go, src, sg, sd, noisy_mode, tk, *flags):
            if not go:
                yield gr.skip(), gr.skip(), gr.skip()
                return
            yield from run_comparison(src, sg, sd, noisy_mode, tk, *flags)

        # The benchmark tab fills in on its own, so that restoring a link does not wait for it.
        demo.load(show_benchmark, [bench_set, bench_sigma], bench_outputs, api_visibility="private")
        auto_event = demo.load(on_load, [tick], load_outputs_on_open + boxes, api_visibility="private").then(
            auto_compare, [autorun] + compare_inputs, [comparison, tick, status], concurrency_id="heavy",
            concurrency_limit=settings.heavy_limit, show_progress="hidden", api_visibility="private")

        # Choosing another input stops a comparison still running: its results would otherwise
        # land on top of the new input (panels, "Done" and the link of the old one).
        for trigger in (gallery.select, upload.upload, upload.clear):
            trigger(None, None, None, cancels=[run_event, auto_event], api_visibility="private")

        def stop(comp, tk):
            """The comparison as it stands, without the methods still running; written through
            ``tick`` like every result, so that the summary is the last thing on screen."""
            if comp is None or comp.elapsed is not None or not comp.methods:
                gr.Info("Nothing is running.")  # a toast: the line keeps the summary of what ran
                return gr.skip(), gr.skip(), gr.skip()
            unfinished = tuple(m for m in comp.methods if m not in comp.results)
            comp = dataclasses.replace(comp, methods=[m for m in comp.methods if m in comp.results],
                                       results=dict(comp.results), elapsed=0.0, stopped=unfinished)
            return comp, tk + 1, gr.skip()

        stop_btn.click(stop, [comparison, tick], [comparison, tick, status], cancels=[run_event, auto_event],
                       api_visibility="private")
    return demo, exports


def _grid(n: int, prefix: str, css_class: str, height: int | None, per_row: int = 4) -> list[gr.Image]:
    items = []
    for start in range(0, n, per_row):
        with gr.Row(equal_height=True, elem_classes=["panel-row"]):
            for i in range(start, min(n, start + per_row)):
                items.append(gr.Image(format="png", interactive=False, visible=False, height=height,
                                      elem_id=f"{prefix}-{i}", elem_classes=[css_class], show_label=True,
                                      buttons=["download", "fullscreen"], min_width=200))
    return items
