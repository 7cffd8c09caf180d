"""The gradio Blocks: the components of ``layout`` wired to the handlers of ``events`` (and the
A/B slider's, ``abslider``). Handlers return values by component name; ``reply`` turns those
into gradio's updates and toasts. Every image goes out as PNG."""
from __future__ import annotations

import functools
import inspect
from pathlib import Path

import gradio as gr

from . import abslider, crop_api, kodak
from .convert import InputError
from .engine import Engine
from .events import INFO, WARNING, Events, Settings
from .views import Props
from .layout import Page, place, static_text
from .outputs import ExportDir
from .text import plain

# The address bar follows the view. Another input (image, sigma or seed) is a new history entry,
# so the browser's Back returns to the previous one; crop, zoom and methods only rewrite the
# current entry, and so does an upload (its address cannot hold the image). An address the app
# has not written yet (a link as opened: "sigma=25.0", no seed, a value out of range) is
# rewritten in place, never pushed, so Back does not land on it and push it again for ever.
# The page reloads itself on Back/Forward (``PAGE_JS``), reading the view from the address.
LINK_JS = static_text("link.js")
# Also, for screen readers: the status line is a live region (read out when it changes), and
# every panel image has its caption as its text alternative (gradio leaves alt empty).
PAGE_JS = static_text("page.js")
CSS = static_text("app.css")
#: Uploads and the files gradio serves are removed from its cache after an hour (checked hourly),
#: whether or not a comparison ever ran on them.
CACHE_CLEANUP = (3600, 3600)
# Compare pressed while an upload is on its way would read the input as it was before it (none,
# or the last image): the server learns of an upload only once the file has arrived and been
# read. So the page notes when a file is chosen or dropped (UPLOAD_WATCH_JS, run once on load),
# the upload's handler chain clears the note when it ends (UPLOAD_DONE_JS), and Compare waits
# for that before it sends (COMPARE_WAITS_JS): while the upload box shows a file, at most
# UPLOAD_WAIT_S seconds. A file the browser refuses (over the size limit) leaves the box empty
# and never reaches the handler: Compare then goes on after a second.
UPLOAD_WAIT_S = 120
UPLOAD_WATCH_JS = """() => {
  const inUpload = (e) => e.target instanceof Element && e.target.closest('#upload');
  const mark = () => { window.dcUploadSince = Date.now(); };
  const chosen = (e) => inUpload(e) && e.target.files && e.target.files.length > 0;
  document.addEventListener('change', (e) => { if (chosen(e)) mark(); }, true);
  document.addEventListener('drop', (e) => { if (inUpload(e)) mark(); }, true);
}"""
UPLOAD_DONE_JS = "() => { window.dcUploadSince = 0; }"
COMPARE_WAITS_JS = """async (...args) => {
  const waiting = () => {
    const since = window.dcUploadSince ? Date.now() - window.dcUploadSince : Infinity;
    const shown = document.querySelector('#upload .uploading, #upload .file-preview') !== null;
    return since < %d && (shown || since < 1000);
  };
  while (waiting()) {
    await new Promise((done) => setTimeout(done, 100));
  }
  return args;
}""" % (UPLOAD_WAIT_S * 1000)
PRIVATE = {"api_visibility": "private"}
QUIET = {"api_visibility": "private", "show_progress": "hidden"}

__all__ = ["CSS", "PAGE_JS", "LINK_JS", "Settings", "ExportDir", "build"]


def reply(page: Page, values: dict) -> dict:
    """A handler's values by name, as gradio's by component; ``WARNING`` and ``INFO`` as toasts."""
    values = dict(values)
    if WARNING in values:
        text, seconds = values.pop(WARNING)
        gr.Warning(text, **({} if seconds is None else {"duration": seconds}))
    if INFO in values:
        gr.Info(values.pop(INFO))
    # Nothing to change: gradio takes one skip for every output (an empty mapping it would not).
    return {page[name]: gr.update(**value) if isinstance(value, Props) else value
            for name, value in values.items()} or gr.skip()


def handler(page: Page, fn):
    """``fn`` as a gradio handler: its reply by component, an ``InputError`` as an error toast
    (shown as text: it may quote the address or a file name)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args):
            try:
                for values in fn(*args):
                    yield reply(page, values)
            except InputError as exc:
                raise gr.Error(plain(exc), print_exception=False) from exc
        return stream

    @functools.wraps(fn)
    def call(*args):
        try:
            return reply(page, fn(*args))
        except InputError as exc:
            raise gr.Error(plain(exc), print_exception=False) from exc
    return call


def build(engine: Engine, settings: Settings) -> tuple[gr.Blocks, ExportDir]:
    exports = ExportDir()
    events = Events(engine, settings, exports)
    page = Page()
    with gr.Blocks(title="Denoiser comparison", delete_cache=CACHE_CLEANUP, fill_width=True) as demo:
        place(page, engine, settings, kodak.thumbnails())
        _wire_inputs(page, events)
        view = _wire_view(page, events)
        _wire_ab_slider(page)
        show_benchmark = _wire_exports_and_benchmark(page, events)
        _wire_compare(demo, page, events, settings, show_benchmark, view)
        _wire_api(page, events, settings)
    return demo, exports


def names(page: Page, *keys: str) -> list:
    return [page[k] for k in keys]


LOADED = ("source", "centre", "comparison", "results_changed", "sigma", "status")


def _wire_inputs(page: Page, events: Events) -> None:
    def pick_kodak(sigma, seed, results_changed, turn, evt: gr.SelectData):
        return events.pick_kodak(evt.index, sigma, seed, results_changed, turn)

    page.gallery.select(handler(page, pick_kodak), names(page, "sigma", "seed", "results_changed", "turn"),
                        names(page, *LOADED, "already_noisy"), **PRIVATE)
    page.upload.upload(handler(page, events.upload),
                       names(page, "upload", "downscale", "sigma", "seed", "already_noisy", "results_changed", "turn"),
                       names(page, *LOADED, "upload"), **PRIVATE).then(None, js=UPLOAD_DONE_JS, **QUIET)
    page.upload.clear(handler(page, events.clear_upload), names(page, "source", "results_changed", "turn"),
                      names(page, *LOADED), **PRIVATE).then(None, js=UPLOAD_DONE_JS, **QUIET)
    # .input, not .change: only the user's own clicks. Loading an image unticks the box
    # itself and builds the matching preview.
    page.already_noisy.input(handler(page, events.switch_noisy),
                             names(page, "source", "already_noisy", "sigma", "seed", "results_changed"),
                             names(page, "sigma", "status", "comparison", "results_changed"), **PRIVATE)
    page.get_kodak.click(handler(page, events.fetch_kodak), None, names(page, "gallery", "kodak_note", "get_kodak"),
                         **PRIVATE)


def _hint(page: Page, events: Events) -> tuple:
    """The settings-changed hint's handler and inputs (it writes the status line)."""
    def settings_changed(comparison, sigma, seed, dial, *flags):
        return events.settings_changed(comparison, sigma, seed, flags, dial)

    return handler(page, settings_changed), names(page, "comparison", "sigma", "seed", "dial") + page.boxes


def _wire_compare(demo: gr.Blocks, page: Page, events: Events, settings: Settings, show_benchmark, view) -> None:
    """Compare (pressed, or asked for by the link the page opened), Stop, another input ending
    a comparison, and the settings-changed hint."""
    def run_comparison(source, sigma, seed, noisy_mode, results_changed, dial, centre, size, turn, *flags):
        yield from events.compare(source, sigma, seed, noisy_mode, flags, results_changed, dial, centre, size, turn)

    compare = handler(page, run_comparison)  # not named "compare": that is the API endpoint's name
    compare_inputs = names(page, "source", "sigma", "seed", "already_noisy", "results_changed", "dial", "centre",
                           "crop_size", "turn") + page.boxes
    compare_outputs = names(page, "comparison", "results_changed", "status")
    heavy = {"concurrency_id": "heavy", "concurrency_limit": settings.heavy_limit, **QUIET}
    # always_last: Compare pressed during a run (new settings, say) runs once that one ends,
    # instead of being dropped without a word.
    demo.load(None, js=UPLOAD_WATCH_JS, **QUIET)
    # Compare waits for an upload under way (see COMPARE_WAITS_JS), then runs on it.
    running = [page.run.click(compare, compare_inputs, compare_outputs, trigger_mode="always_last",
                              js=COMPARE_WAITS_JS, **heavy),
               _wire_link(demo, page, events, show_benchmark).success(compare, compare_inputs, compare_outputs,
                                                                      **heavy)]

    # The dial: the IDGAN panel follows at once (a preview, rendered in the same chain, before
    # the network starts taking the CPU), then the network's output. A run for an older setting
    # ends itself (events.dial_run); Stop or another input ends it too.
    dialled = (page.dial.change(handler(page, events.dial_preview), names(page, "comparison", "dial"),
                                [page.comparison], trigger_mode="always_last", **QUIET)
               .then(*view, **QUIET))
    dial_run = dialled.then(handler(page, events.dial_run), names(page, "comparison", "dial", "dial_count"),
                            names(page, "dial_found", "dial_count"), **heavy)
    page.dial_count.change(handler(page, events.dial_apply),
                           names(page, "comparison", "dial", "dial_found", "results_changed"),
                           names(page, "comparison", "results_changed"), **QUIET)
    running.append(dial_run)
    # A crop moved during a run: its new crop previews first (an older move's are dropped).
    moved = page.view_changed.change(handler(page, events.crop_moved),
                                     names(page, "comparison", "centre", "crop_size", "results_changed"),
                                     [page.results_changed], concurrency_id="previews", concurrency_limit=4,
                                     trigger_mode="multiple", **QUIET)
    running.append(moved)
    hint, hint_inputs = _hint(page, events)
    # σ, the seed and the dial on .change, so that values set by a load (a link's) are compared too.
    for control in (page.sigma, page.seed, page.dial):
        control.change(hint, hint_inputs, [page.status], **QUIET)
    for control in page.boxes:
        control.input(hint, hint_inputs, [page.status], **QUIET)
    page.stop.click(handler(page, events.stop), names(page, "comparison", "results_changed"),
                    names(page, "comparison", "results_changed"), cancels=running, **PRIVATE)
    # Choosing another input stops a comparison still running: its results would otherwise
    # land on top of the new input (panels, "Done" and the link of the old one). A result
    # already on its way is held back by the run itself (session.Turn).
    for trigger in (page.gallery.select, page.upload.upload, page.upload.clear):
        trigger(None, None, None, cancels=running, **PRIVATE)


def _wire_view(page: Page, events: Events) -> tuple:
    """The render (on new results, inputs and crop moves) and the crop's controls; returns the
    render's (handler, inputs, outputs), for a chain that renders as one of its steps."""
    def render(comparison, centre, size, zoom, errors, shown, sigma, seed, dial, *flags):
        return events.render(comparison, centre, size, zoom, errors, shown, sigma, seed, flags, dial)

    outputs = (page.fulls + page.crops
               + names(page, "locator", "error_bar", "centre_text", "link", "status", "scores", "centre_x", "centre_y",
                       "show_errors", "shown"))
    # One render at a time per page, the latest last: a slow render of an input left behind,
    # or of a result, cannot land after the render of a later input or crop move.
    inputs = names(page, "comparison", "centre", "crop_size", "zoom", "show_errors", "shown", "sigma", "seed",
                   "dial") + page.boxes
    rendered = gr.on([page.results_changed.change, page.view_changed.change], handler(page, render), inputs, outputs,
                     trigger_mode="always_last", **QUIET)
    # The render read σ, the seed and the ticks when it started; a change made while it ran
    # wrote its hint, which the render's status line then covered. Say it again from the
    # settings as they are now.
    rendered.then(*_hint(page, events), [page.status], **QUIET)

    def click_crop(comparison, view_changed, evt: gr.SelectData):
        return events.click_crop(comparison, evt.index, view_changed)

    for full in [page.locator, *page.fulls]:
        full.select(handler(page, click_crop), names(page, "comparison", "view_changed"),
                    names(page, "centre", "view_changed"), **QUIET)
    typed = handler(page, events.type_centre)
    for box in (page.centre_x, page.centre_y):
        for trigger in (box.submit, box.blur):
            trigger(typed, names(page, "comparison", "centre", "centre_x", "centre_y", "crop_size", "view_changed"),
                    names(page, "centre", "view_changed", "centre_x", "centre_y"), **QUIET)
    for control in (page.crop_size, page.zoom, page.show_errors):
        control.change(lambda count: count + 1, [page.view_changed], [page.view_changed], **QUIET)
    page.link.change(None, [page.link], [page.link_url], js=LINK_JS)
    return handler(page, render), inputs, outputs


def _wire_ab_slider(page: Page) -> None:
    view = names(page, "ab_region", "centre", "crop_size", "zoom")
    shown = names(page, "ab_a", "ab_b", "slider", "ab_shown")
    gr.on([page.results_changed.change, page.view_changed.change], handler(page, abslider.follow),
          names(page, "comparison", "ab_a", "ab_b", "ab_shown", "ab_pinned") + view + [page.ab_left],
          shown, **QUIET)
    page.ab_region.input(handler(page, abslider.update), names(page, "comparison", "ab_a", "ab_b") + view, shown,
                         trigger_mode="always_last", **PRIVATE)
    page.ab_a.input(handler(page, abslider.pick_left), names(page, "comparison", "ab_a", "ab_b") + view,
                    shown + [page.ab_left], trigger_mode="always_last", **PRIVATE)
    page.ab_b.input(handler(page, abslider.pick_right), names(page, "comparison", "ab_a", "ab_b") + view,
                    shown + [page.ab_pinned], trigger_mode="always_last", **PRIVATE)
    page.ab_position.change(handler(page, abslider.place_divider), [page.ab_position], [page.slider], **QUIET)


def _wire_exports_and_benchmark(page: Page, events: Events):
    """The export buttons and the Benchmark tab; returns the tab's filling event (for the load)."""
    page.fig_btn.click(handler(page, events.export_figure), names(page, "comparison", "centre", "crop_size"),
                       [page.fig_file], **PRIVATE)
    page.zip_btn.click(handler(page, events.export_zip), [page.comparison], [page.zip_file], **PRIVATE)
    bench_inputs = names(page, "bench_set", "bench_sigma", "bench_plane_on")
    bench_outputs = names(page, "bench_notes", "bench_table", "bench_plot", "bench_detail", "bench_tradeoff",
                          "bench_paired", "per_image", "bench_plane")
    show = handler(page, events.show_benchmark)
    page.bench_set.change(show, bench_inputs, bench_outputs, **PRIVATE)
    page.bench_sigma.change(show, bench_inputs, bench_outputs, **PRIVATE)
    page.bench_plane_on.change(handler(page, lambda plane: {"bench_plane": events.show_plane(plane)}),
                               [page.bench_plane_on], [page.bench_plane], **PRIVATE)

    def open_from_table(dataset, sigma, seed, comparison, results_changed, dial, evt: gr.SelectData, *flags):
        return events.open_from_table(dataset, sigma, seed, comparison, evt.row_value, results_changed, flags, dial)

    page.per_image.select(handler(page, open_from_table),
                          names(page, "bench_set", "bench_sigma", "seed", "comparison", "results_changed", "dial")
                          + page.boxes,
                          names(page, *LOADED, "already_noisy", "tabs"), **PRIVATE).success(
        None, js="() => { const b = document.querySelector('#run'); if (b) b.focus(); }")  # not lost on the page
    return show, bench_inputs, bench_outputs


def _wire_link(demo: gr.Blocks, page: Page, events: Events, show_benchmark):
    """On load: the Benchmark tab, and the view the address names; returns the chain's last
    step, which ends quietly unless the link names methods (then the comparison follows it)."""
    show, bench_inputs, bench_outputs = show_benchmark

    def open_link(results_changed, request: gr.Request):
        return events.open_link(dict(request.query_params) if request is not None else {}, results_changed)

    def only_if_linked(autorun):
        """Ends the chain quietly unless the link asked for a comparison."""
        if not autorun:
            raise gr.Error("the link names no comparison to run", visible=False, print_exception=False)

    # The benchmark tab fills in on its own, so that restoring a link does not wait for it.
    demo.load(show, bench_inputs, bench_outputs, **PRIVATE)
    opened = names(page, "source", "comparison", "centre", "results_changed", "sigma", "seed", "crop_size", "zoom",
                   "autorun", "status", "show_errors", "dial") + page.boxes
    return (demo.load(handler(page, open_link), [page.results_changed], opened, **PRIVATE)
            .then(only_if_linked, [page.autorun], None, **QUIET))


def _wire_api(page: Page, events: Events, settings: Settings) -> None:
    def compare_api(image, sigma, seed, methods):
        """Denoise ``image`` with synthetic noise (sigma on 0-255, seed) by every method in
        ``methods`` (a list of names). Returns the JSON record and the PNG files (noisy first,
        then the methods in the record's order)."""
        try:
            return events.api_compare(image, sigma, seed, methods)
        except InputError as exc:  # for API clients: the message as written, no page to escape it for
            raise gr.Error(str(exc), print_exception=False) from exc

    page.api_btn.click(compare_api, names(page, "api_image", "api_sigma", "api_seed", "api_methods"),
                       names(page, "api_json", "api_files"), api_name="compare", concurrency_id="heavy",
                       concurrency_limit=settings.heavy_limit)

    def compare_crop_api(image, sigma, seed, methods, box):
        """Every method's crop of ``box`` ("top,left,height,width") of ``image`` with synthetic
        noise, computed crop first (``crop_api``). Returns the JSON record and the crops as PNG
        files (noisy first, then the methods in the record's order)."""
        try:
            record, crops = crop_api.compare_crop(events.engine, image, sigma, seed, methods, box,
                                                  settings.max_pixels)
        except InputError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        files = crop_api.write_crops(crops, events.exports.new())
        record["files"] = [Path(f).name for f in files]
        return record, files

    with gr.Row(visible=False):  # its own hidden components, as layout._api's for /compare
        crop_in = [gr.File(label="image", type="filepath"), gr.Number(25, label="sigma"), gr.Number(0, label="seed"),
                   gr.Dropdown(choices=events.engine.names(), multiselect=True, value=[], label="methods"),
                   gr.Textbox(label="box", placeholder="top,left,height,width")]
        crop_out = [gr.JSON(label="result"), gr.Files(label="crops")]
        crop_btn = gr.Button("compare_crop")
    # Not behind whole comparisons ("heavy"): a crop takes seconds, and that is its point.
    crop_btn.click(compare_crop_api, crop_in, crop_out, api_name="compare_crop", concurrency_id="crop",
                   concurrency_limit=settings.heavy_limit)
