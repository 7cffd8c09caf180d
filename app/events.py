"""The compare view's event handlers, as methods of ``Events`` (which holds the engine and the
settings). Each takes plain values and returns a mapping of component names (those of
``layout``) to new values or ``Props``; a name left out is left as it is. Bad input raises
``InputError``; ``WARNING`` and ``INFO`` name toasts to show. No gradio here: ``ui`` wires these
to the components, and the tests call them directly."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import benchmark, crops, dialview, export, kodak, session, speeds, tables
from .convert import GREY_NOISE, GREYSCALE, MAX_PIXELS, MAX_UPLOAD_MB, InputError, check_sigma
from .engine import Engine
from .outputs import ExportDir
from .render import Renderer, status_line, stale_hint
from .state import QUERY_KEYS, from_query
from .text import plain
from .views import Comparison, Props

WARNING, INFO = "warning", "info"  # toasts: (text, seconds shown) and text
NO_INPUT = "Pick a Kodak24 image or upload one, then press Compare."
#: A running comparison yields at least this often (seconds), so that Stop, or choosing another
#: image, ends it at once rather than when its slowest method finishes.
HEARTBEAT = 0.5


@dataclass
class Settings:
    results_root: Path
    max_pixels: int = MAX_PIXELS
    heavy_limit: int = 2  # comparisons running at once, UI and API together
    max_upload_mb: int = MAX_UPLOAD_MB  # the server refuses larger files (``server.launch_kwargs``)


def region(box: crops.Box) -> tuple[int, int, int, int]:
    """``box`` as the engine's crop box: (top, left, height, width)."""
    return box.y0, box.x0, box.height, box.width


class Events:
    """The handlers of one app: every visitor's events go through the one engine."""

    def __init__(self, engine: Engine, settings: Settings, exports: ExportDir,
                 kodak_names: Sequence[str] | None = None) -> None:
        self.engine, self.settings, self.exports = engine, settings, exports
        self.names = engine.names()
        self.readiness = engine.readiness()  # not ready: why; generators: the sigmas they were trained for
        self.kodak_names = list(kodak.names() if kodak_names is None else kodak_names)
        # The latest crop move and dial setting asked for each comparison: work for an older one
        # ends itself (``_remember``).
        self._moves: dict[int, tuple] = {}
        self._dials: dict[int, tuple] = {}
        self._latest_lock = threading.Lock()
        self.renderer = Renderer(2 + len(self.names), engine.label, self.kodak_names, exports)

    def ticked(self, flags: Sequence[bool]) -> set[str]:
        """The methods whose boxes are ticked (``flags`` in the order of ``names``)."""
        return {n for n, f in zip(self.names, flags) if f}

    def chosen(self, flags: Sequence[bool], dial: float | None = None) -> list[str]:
        """The methods to run, in display order: the ticked ones, IDGAN at the dial's A."""
        ticked = self.ticked(flags)
        return [dialview.member(dial) if n == dialview.FAMILY else n for n in self.names if n in ticked]

    # ---- the input ------------------------------------------------------------------
    def preview(self, source: session.Source | None, sigma, seed, noisy_mode: bool, note: str = "",
                warnings: list | None = None) -> Comparison | None:
        """A comparison without methods (ground truth and noisy) for a freshly picked input;
        ``note``: the status line its render writes (after any render of an earlier input). A
        σ or seed out of range gives no preview, and a warning in ``warnings`` saying why."""
        if source is None:
            return None
        try:
            comp, _ = session.new_comparison(self.engine, source, sigma, seed, noisy_mode, [])
        except InputError as exc:
            if warnings is not None:
                warnings.append(f"No preview: {plain(exc)}")
            return None
        comp.note = note
        return comp

    def load(self, make: Callable[[], session.Source], sigma, seed, noisy_mode: bool, results_changed: int,
             turn: session.Turn | None = None) -> dict:
        """A new input from ``make()``: its preview, or why it was refused. The previous input is
        dropped either way, so that Compare cannot silently run another image than the one chosen
        (and a comparison still running on it yields nothing more: ``turn``)."""
        if turn is not None:
            turn.next()
        try:
            source = make()
        except InputError as exc:
            return {"source": None, "centre": None, "comparison": None, "results_changed": results_changed + 1,
                    "status": f"**Could not load the image:** {plain(exc)}", WARNING: (plain(exc), None)}
        note = f"Loaded {plain(source.name)} ({source.image.shape[1]}x{source.image.shape[0]})"
        # What the upload's conversion changed; a grey image's noise is grey unless it came noisy.
        said = [GREY_NOISE if n == GREYSCALE and not noisy_mode else n for n in source.notes]
        if said:
            note += ", " + ", ".join(said)  # the tool's own words: no user text in them
        out = {}
        if noisy_mode:
            sigma, estimate = session.suggested_sigma(source)
            out["sigma"] = sigma
            note += f"; {estimate}"
        note += ". Press Compare."
        warnings: list[str] = []
        comp = self.preview(source, sigma, seed, noisy_mode, note, warnings)
        out |= {"source": source, "centre": None, "comparison": comp, "results_changed": results_changed + 1,
                "status": note}
        if warnings:
            out[WARNING] = (warnings[0], None)
        return out

    def pick_kodak(self, index, sigma, seed, results_changed: int, turn: session.Turn | None = None) -> dict:
        """A Kodak24 thumbnail clicked: it is clean, with ground truth, so never 'already noisy'."""
        if not isinstance(index, int) or not 0 <= index < len(self.kodak_names):
            raise InputError(f"unknown Kodak24 image {plain(index)}: pick one of the {len(self.kodak_names)} shown")
        name = self.kodak_names[index]
        return self.load(lambda: session.source_from_kodak(name), sigma, seed, False, results_changed, turn) | {
            "already_noisy": False}

    def upload(self, path, downscale: bool, sigma, seed, noisy_mode: bool, results_changed: int,
               turn: session.Turn | None = None) -> dict:
        out = self.load(lambda: session.source_from_upload(path, self.settings.max_pixels, downscale),
                        sigma, seed, noisy_mode, results_changed, turn)
        if out["source"] is None:
            out["upload"] = None  # a refused file goes
        return out

    def clear_upload(self, source: session.Source | None, results_changed: int,
                     turn: session.Turn | None = None) -> dict:
        if source is None or not source.name.startswith("upload"):  # a Kodak image picked since stays
            return {}
        if turn is not None:
            turn.next()
        return {"source": None, "centre": None, "comparison": None, "results_changed": results_changed + 1,
                "status": "Upload removed. Pick a Kodak24 image or upload one."}

    def switch_noisy(self, source: session.Source | None, noisy_mode: bool, sigma, seed, results_changed: int) -> dict:
        """'Already noisy' ticked or unticked: the preview is rebuilt for the current input (the
        input as it is, or with synthetic noise)."""
        if source is None:
            return {}
        out = {}
        if noisy_mode:
            sigma, note = session.suggested_sigma(source)
            out["sigma"] = sigma
            note += ". Press Compare."
        else:
            sigma = check_sigma(sigma)  # a box left empty or out of range: said plainly
            note = f"Noise of σ {sigma:g} is added to {plain(source.name)}. Press Compare."
        comp = self.preview(source, sigma, seed, noisy_mode, note)
        return out | {"status": note, "comparison": comp, "results_changed": results_changed + 1}

    def open_from_table(self, dataset: str, sigma, seed, comp: Comparison | None, row: Sequence | None,
                        results_changed: int, flags: Sequence[bool] = (), dial: float | None = None) -> dict:
        """A row of the per-image table clicked: that Kodak24 image opens in the Compare tab at
        the table's σ, with ground truth. The ticked methods stay ticked, and those whose result
        for this view is cached show at once (nothing is computed: Compare runs the rest)."""
        stem = (str(row[0]) if row else "").rsplit(".", 1)[0]
        if dataset != "kodak24" or stem not in self.kodak_names:
            raise InputError("Only Kodak24 images can be opened in the Compare tab.")
        if comp is not None and comp.methods and not comp.done:
            # Its results would land on this image; this tab does not stop it behind the user's back.
            raise InputError("A comparison is still running in the Compare tab: press Stop there first, "
                             "or wait for it to finish.")
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            sigma = 25.0
        out = self.load(lambda: session.source_from_kodak(stem), sigma, seed, False, results_changed)
        preview, ticked = out.get("comparison"), self.chosen(flags, dial)
        found = [] if preview is None or not ticked else session.cached_results(
            self.engine, dataclasses.replace(preview, methods=ticked))
        if found:
            shown = dataclasses.replace(preview, methods=[r.name for r in found], results={r.name: r for r in found},
                                        done=True, elapsed=0.0, note="")
            hint = stale_hint(shown, sigma, seed, set(ticked), self.engine.label)
            out |= {"comparison": shown, "status": status_line(shown, hint)}
        return out | {"sigma": sigma, "already_noisy": False, "tabs": Props(selected="compare")}

    def open_link(self, query: dict, results_changed: int) -> dict:
        """The page opened: the view its address names. A plain visit changes nothing (an image
        picked before this event returns must not be reset). A link with methods reproduces a
        comparison and runs it (``autorun``); one without (a preview's), or with problems, opens
        the image and waits, so that reloading it does not start every method."""
        if not any(k in query for k in QUERY_KEYS):
            return {}
        ready = [n for n in self.names if self.readiness[n].ready]
        view, problems = from_query(query, self.kodak_names, self.names, ready)
        problems = [plain(p) for p in problems]
        out = {f"method_{n}": (n in view.methods and n in ready) for n in self.names}
        source, comp, note = None, None, ""
        if view.image:
            try:
                source = session.source_from_kodak(view.image)
            except InputError as exc:
                problems.append(plain(exc))
            else:
                comp = self.preview(source, view.sigma, view.seed, False, warnings=problems)
                note = f"Loaded {plain(view.image)} from the link" + ("." if query.get("methods") else ". Press Compare.")
        if problems:
            if source is not None and query.get("methods"):
                note = f"Loaded {plain(view.image)} from the link. Press Compare."
            ignored = "Ignored in the link: " + "; ".join(problems)
            note = (note + " " if note else "") + ignored
            out[WARNING] = (ignored, 30)
        if comp is not None:
            comp.note = note
        return out | {"source": source, "comparison": comp, "centre": view.centre,
                      "results_changed": results_changed + 1, "sigma": view.sigma, "seed": view.seed,
                      "crop_size": view.crop, "zoom": view.zoom, "show_errors": view.errors,
                      "autorun": source is not None and bool(query.get("methods")) and not problems,
                      "status": note or NO_INPUT}

    # ---- a comparison ---------------------------------------------------------------
    def compare(self, source: session.Source | None, sigma, seed, noisy_mode: bool, flags: Sequence[bool],
                results_changed: int, dial: float | None = None, centre=None, size=None,
                turn: session.Turn | None = None) -> Iterator[dict]:
        """Run the ticked methods on ``source``, yielding the comparison as each one finishes
        (and an empty update every ``HEARTBEAT`` seconds, where a Stop can end it). Each new
        result bumps ``results_changed``, whose change renders it. Once another input is chosen
        (``turn`` moved on), it ends without another word."""
        if source is None:
            raise InputError("Pick a Kodak24 image or upload one first. (If the page shows one, the server "
                             "has dropped this view after a long pause or when busy: reload the page.)")
        methods = self.chosen(flags, dial)
        if not methods:
            raise InputError("Tick at least one method.")
        started = None if turn is None else turn.count

        def moved_on() -> bool:
            return turn is not None and turn.count != started

        start = time.perf_counter()
        comp, noisy = session.new_comparison(self.engine, source, sigma, seed, noisy_mode, methods)
        comp.note = f"estimate: {self.estimate(comp)}; the crops come first"
        if moved_on():
            return
        results_changed += 1
        yield {"comparison": comp, "results_changed": results_changed,
               "status": f"Running {', '.join(self.engine.label(m) for m in methods)}… ({comp.note})"}
        # The crop on screen comes first: each method's crop preview, then the whole images.
        box = crops.crop_box(centre, crops.clamp_size(size), comp.shape)
        updates = session.run(self.engine, comp, noisy, heartbeat=HEARTBEAT, box=region(box), previews=comp.previews)
        for update in updates:
            if moved_on():
                updates.close()  # the engine drops this run's work
                return
            if update is None:
                yield {}
                continue
            results_changed += 1
            yield {"comparison": update, "results_changed": results_changed}
        if moved_on():
            return
        # A new object: renders still queued for earlier results hold the old one, so they
        # cannot write "Done" before the final render (a click after "Done" is then safe).
        comp = dataclasses.replace(comp, results=dict(comp.results), done=True, elapsed=time.perf_counter() - start)
        yield {"comparison": comp, "results_changed": results_changed + 1}

    def _remember(self, latest: dict, comp: Comparison, value) -> None:
        """Record ``value`` as the latest asked for ``comp`` in ``latest``, keyed by the id of the
        comparison's previews dict, which every copy of it shares (kept alive with the value, so
        that the id is not reused while it is remembered)."""
        key = id(comp.previews)
        with self._latest_lock:
            latest.pop(key, None)
            latest[key] = (value, comp.previews)
            while len(latest) > 64:
                latest.pop(next(iter(latest)))

    @staticmethod
    def _still_latest(latest: dict, comp: Comparison, value) -> bool:
        """Whether ``value`` is still the latest asked for ``comp`` (or nothing was asked)."""
        entry = latest.get(id(comp.previews))
        return entry is None or entry[0] == value

    def estimate(self, comp: Comparison) -> str:
        """The run-time estimate of ``comp``'s methods on its input (cached ones count 0)."""
        figures = self.engine.estimate(comp.methods, comp.shape, comp.image_id, comp.sigma, comp.seed)
        return speeds.estimate_text(figures, self.engine.label)

    def crop_moved(self, comp: Comparison | None, centre, size, results_changed: int) -> Iterator[dict]:
        """The crop moved while whole images are still running: the new crop's previews of
        those methods come first (each bump of ``results_changed`` shows one)."""
        if comp is None or comp.done or not comp.methods:
            return
        box = crops.crop_box(centre, crops.clamp_size(size), comp.shape)
        want = region(box)
        if all(m in comp.results or (m in comp.previews and comp.previews[m].box == want) for m in comp.methods):
            return
        # A newer move of this comparison's crop ends this one (its queued previews are dropped).
        self._remember(self._moves, comp, want)
        for update in session.moved_crop(self.engine, comp, session.noisy_input(comp), want, comp.previews,
                                         heartbeat=HEARTBEAT):
            if not self._still_latest(self._moves, comp, want):
                return
            if update is None:
                yield {}
                continue
            results_changed += 1
            yield {"results_changed": results_changed}

    # ---- the fidelity <-> detail dial ------------------------------------------------
    def dial_preview(self, comp: Comparison | None, dial) -> dict:
        """The dial moved: the IDGAN panel shows idgan@A at once, as the pixel blend of the dial's
        two ends where both are at hand (else as running; the caller renders it); ``dial_run``
        follows with the network's. While a comparison runs, the dial waits for Compare (the hint says so)."""
        if comp is None or not comp.done or dial is None:
            return {}
        alpha = float(dial)

        def lookup(name: str):
            hit = self.engine.cached(name, comp.clean, comp.image_id, comp.sigma, comp.seed, comp.shape)
            return None if hit is None else hit.output

        ends = dialview.ends(comp, lookup)
        self._remember(self._dials, comp, dialview.member(alpha))
        moved = dialview.preview(comp, alpha, ends)
        return {} if moved is None else {"comparison": moved}

    def dial_run(self, comp: Comparison | None, dial, count: int) -> Iterator[dict]:
        """The network's output for the dial's setting (from the cache at once when computed
        before), handed to ``dial_apply`` as ``dial_found`` with the input it is for: by the time
        it is ready the dial may have moved on, or another input come."""
        if comp is None or not comp.done or dial is None or dialview.slot(comp) is None:
            return
        name = dialview.member(float(dial))
        current = comp.results.get(name)
        if current is not None and not dialview.is_preview(current):
            return
        self.engine.resolve([name])
        for result in self.engine.run(comp.clean, session.noisy_input(comp), comp.image_id, comp.sigma, comp.seed,
                                      [name], heartbeat=HEARTBEAT):
            if not self._still_latest(self._dials, comp, name):  # the dial moved on: stop this run
                return
            if result is None:
                yield {}
                continue
            count += 1
            yield {"dial_found": (comp.image_id, comp.sigma, comp.seed, result), "dial_count": count}

    def dial_apply(self, comp: Comparison | None, dial, found, results_changed: int) -> dict:
        """The IDGAN panel takes the network's output that ``dial_run`` found, if it is still for
        the input shown and the dial's setting (else it is dropped: a newer one follows)."""
        if comp is None or found is None or dial is None:
            return {}
        image_id, sigma, seed, result = found
        if ((image_id, sigma, seed) != (comp.image_id, comp.sigma, comp.seed) or not comp.done
                or result.name != dialview.member(float(dial)) or dialview.slot(comp) != result.name):
            return {}
        return {"comparison": dialview.swap(comp, result.name, result, result.name),
                "results_changed": results_changed + 1}

    def stop(self, comp: Comparison | None, results_changed: int) -> dict:
        """The comparison as it stands, without the methods still running; rendered like every
        result, so that the summary is the last thing on screen."""
        if comp is None or comp.done or not comp.methods:
            return {INFO: "Nothing is running."}  # a toast: the line keeps the summary of what ran
        unfinished = tuple(m for m in comp.methods if m not in comp.results)
        comp = dataclasses.replace(comp, methods=[m for m in comp.methods if m in comp.results],
                                   results=dict(comp.results), done=True, elapsed=0.0, stopped=unfinished)
        return {"comparison": comp, "results_changed": results_changed + 1}

    def settings_changed(self, comp: Comparison | None, sigma, seed, flags: Sequence[bool],
                         dial: float | None = None) -> dict:
        """After σ, the seed or the methods change, the panels still show the old ones: say so
        (and once they match again, say what the panels show)."""
        if comp is None:
            return {}
        text = status_line(comp, stale_hint(comp, sigma, seed, set(self.chosen(flags, dial)), self.engine.label))
        return {"status": text} if text else {}

    def render(self, comp, centre, size, zoom, errors, last=None, sigma=None, seed=None, flags=(),
               dial: float | None = None) -> dict:
        return self.renderer.render(comp, centre, size, zoom, errors, last, sigma, seed, set(self.chosen(flags, dial)))

    # ---- the crop -------------------------------------------------------------------
    def click_crop(self, comp: Comparison | None, index, view_changed: int) -> dict:
        """A full view clicked at ``index`` (x, y): every crop moves there."""
        centre = None if comp is None else crops.parse_click(index, comp.shape)
        return {} if centre is None else {"centre": centre, "view_changed": view_changed + 1}

    def type_centre(self, comp: Comparison | None, centre_now, x, y, size, view_changed: int) -> dict:
        """A centre typed (or stepped with the arrow keys) into the x / y boxes, applied on Enter
        or on leaving the box: an event per keystroke would write the box back while it is being
        typed in ("517" ended as "5"). A number outside the image is put back inside it."""
        if comp is None or x is None or y is None:
            return {}
        centre = crops.clamp_centre((round(x), round(y)), comp.shape)
        now = crops.clamp_centre(centre_now, comp.shape) if centre_now is not None else crops.crop_box(
            None, crops.clamp_size(size), comp.shape).centre
        out = {}
        if centre[0] != x:
            out["centre_x"] = centre[0]
        if centre[1] != y:
            out["centre_y"] = centre[1]
        if centre != now:  # leaving the box unchanged: nothing to redraw
            out |= {"centre": centre, "view_changed": view_changed + 1}
        return out

    # ---- exports, Kodak24, the benchmark tab, the API ----------------------------------
    def export_figure(self, comp: Comparison | None, centre, size) -> dict:
        if comp is None or not comp.finished():
            raise InputError("Run a comparison first.")
        box = crops.crop_box(centre, crops.clamp_size(size), comp.shape)
        path = self.exports.new() / f"figure_{export.view_stem(comp)}.png"
        path.write_bytes(export.png_bytes(export.figure(comp, box)))
        return {"fig_file": Props(value=str(path), visible=True)}

    def export_zip(self, comp: Comparison | None) -> dict:
        if comp is None or not comp.finished():
            raise InputError("Run a comparison first.")
        path = self.exports.new() / f"outputs_{export.view_stem(comp)}.zip"
        path.write_bytes(export.zip_bytes(comp))
        return {"zip_file": Props(value=str(path), visible=True)}

    def fetch_kodak(self) -> dict:
        """Download Kodak24 (sha256-checked) and show its thumbnails."""
        kodak.paths(download=True)
        self.kodak_names = list(kodak.names())
        self.renderer.kodak_names = set(self.kodak_names)
        return {"gallery": Props(value=kodak.thumbnails(), visible=True), "kodak_note": "",
                "get_kodak": Props(visible=False)}

    def show_benchmark(self, dataset: str, sigma, plane: str | None = None) -> dict:
        """The Benchmark tab for ``dataset`` (per-image PSNR at ``sigma``; the perception-distortion
        ``plane`` chosen, one of ``benchmark.PLANES``), methods named as in Compare."""
        named = benchmark.labelled_table
        df, notes = benchmark.load(self.settings.results_root, dataset)
        table = benchmark.summary_table(df, dataset, expected=benchmark.EXPECTED_IMAGES.get(dataset))
        notes = notes or ["All expected results are present."]
        reference = benchmark.reference_note(dataset)
        label = ("Mean PSNR (dB): ours beside the published values (see the notes above)" if reference
                 else f"Mean PSNR (dB) on {dataset} (no published values on this set to set beside them)")
        return {"bench_notes": "\n".join(f"- {n}" for n in notes + ([reference] if reference else [])),
                "bench_table": Props(value=tables.fixed(named(table)), label=label),
                "bench_plot": benchmark.labelled_figure(benchmark.psnr_chart(df, dataset)),
                "bench_detail": tables.fixed(named(benchmark.detail_table(df))),
                "bench_tradeoff": benchmark.labelled_figure(benchmark.tradeoff_chart(df, dataset)),
                "bench_paired": tables.fixed(named(benchmark.paired_table(df)), {"ΔPSNR (dB)": "+.2f"}),
                "per_image": tables.fixed(named(benchmark.per_image(df, sigma))),
                "bench_plane": self.show_plane(plane)}

    def show_plane(self, plane: str | None):
        """The perception-distortion plane chosen (one of ``benchmark.PLANES``)."""
        return benchmark.plane_chart(self.settings.results_root, plane)

    def api_compare(self, image, sigma, seed, methods) -> tuple[dict, list[str]]:
        """Denoise ``image`` with synthetic noise (sigma on 0-255, seed) by every method in
        ``methods``. Returns the JSON record and the PNG files (noisy first, then the methods
        in the record's order)."""
        record, comp = session.api_compare(self.engine, image, sigma, seed, methods, self.settings.max_pixels)
        folder = self.exports.new()
        files = []
        for key, img in [("noisy", comp.noisy.output)] + [(m, comp.results[m].output) for m in comp.methods]:
            if img is not None:
                path = folder / f"{key}.png"
                path.write_bytes(export.png_bytes(img))
                files.append(str(path))
        record["files"] = [Path(f).name for f in files]
        return record, files
