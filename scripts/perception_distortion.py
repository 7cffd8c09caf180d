"""The perception-distortion plane of the idgan@A dial against every baseline.

Reads an evaluation folder written by ``python -m denoisers.evaluate ... --save-images DIR``
that holds ``idresnet``, ``idgan``, ``idgan@A`` for several A, and any baselines, then:

1. scores every saved output with LPIPS (AlexNet) and DISTS (``perceptual.csv``; a rerun
   scores only what is missing);
2. builds the pixel-space blend ``(1 - A) * IDResNet(x) + A * IDGAN(x)`` of the two saved end
   outputs at every A of the dial, and scores it the same way (``pixel_blend.csv``);
3. writes the means per sigma and method (``plane.csv``), the plane as an interactive chart
   (``plane.html``) and, where Playwright and chromium are installed, as ``plane.png``, and
   what the numbers say (``plane.md``), computed here, never typed.

    python scripts/perception_distortion.py RESULTS_DIR --images DIR --data CLEAN_DIR [--baselines FOLDER]

``--baselines`` takes the other methods' rows from an evaluation already made on the same
images and noise (``docs/results/kodak24``, say) instead of running them again.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoisers import datasets, metrics, scoring  # noqa: E402
from denoisers.files import write_text  # noqa: E402
from denoisers.io import read_image  # noqa: E402
from denoisers.report import plane_figure, read_results, summary  # noqa: E402

DIAL = re.compile(r"^idgan@([0-9.]+)$")
KEY = ["image", "method", "sigma", "seed"]
ENDS = {"idresnet": 0.0, "idgan": 1.0}


def dial_alpha(method: str) -> float | None:
    """A of a dial setting, 0 and 1 for its ends, None for any other method."""
    if method in ENDS:
        return ENDS[method]
    found = DIAL.match(method)
    return float(found.group(1)) if found else None


def output_path(images: Path, row) -> Path:
    return images / f"sigma{row.sigma:g}_seed{int(row.seed)}" / row.method / row.image


def clean_path(data: Path, image: str) -> Path:
    """The clean ``image``: in the folder ``data``, or of the test set named ``data`` (kodak24,
    cbsd68, mcmaster: from the data mirror or downloaded, sha256-checked)."""
    if not data.is_dir() and str(data) in datasets.DATASETS:
        return datasets.file(str(data), image)
    return data / image


def score_outputs(results: pd.DataFrame, images: Path, data: Path, done: pd.DataFrame,
                  names: tuple[str, ...], save=None) -> pd.DataFrame:
    """The perceptual metrics ``names`` of every row of ``results``: as its evaluation recorded
    them, else as scored before (``done``), else scored now from the saved output, image by
    image (each clean image's DISTS features once); after each image ``save`` gets the table.
    The table keeps ``done``'s other rows and columns (other sigmas, metrics not asked now)."""
    done = done.reindex(columns=list(dict.fromkeys([*KEY, *done.columns, *names])))
    done = done.astype({"image": str, "method": str, "sigma": float, "seed": int}).drop_duplicates(KEY, keep="last")
    marked = done.merge(results[KEY], on=KEY, how="left", indicator=True)
    outside = marked[marked["_merge"] == "left_only"].drop(columns="_merge")
    table = results[KEY].merge(done, on=KEY, how="left")
    for name in names:
        if name in results.columns:  # the evaluation's own score, where it recorded one
            recorded = results[name].to_numpy(dtype=float)
            table[name] = np.where(np.isnan(recorded), table[name].to_numpy(dtype=float), recorded)
    lacking = table.index[table[list(names)].isna().any(axis=1)]
    after_image = (lambda scored: save(pd.concat([outside, scored], ignore_index=True))) if save else None
    scoring.score_missing(table, lacking, names, lambda image: clean_path(data, image),
                          lambda row: output_path(images, row), after_image)
    return pd.concat([outside, table], ignore_index=True)


def pixel_blends(results: pd.DataFrame, images: Path, data: Path, done: pd.DataFrame,
                 names: tuple[str, ...], save=None) -> pd.DataFrame:
    """The pixel-space blend of the saved IDResNet and IDGAN outputs at every A of the dial,
    scored like the networks' outputs (method ``pixel@A``); rows of ``done`` that hold every
    metric are kept, not scored again, and so are its rows outside ``results`` (other sigmas,
    whatever they hold). After each image ``save`` gets the rows so far."""
    ends = results[results["method"].isin(ENDS)]
    whole = done.reindex(columns=list(dict.fromkeys([*done.columns, *names])))[list(names)].notna().all(axis=1)
    ready = done[~on_runs(done, ends) | whole]
    have = set(map(tuple, ready[KEY].astype(str).values))
    alphas = sorted({a for m in results["method"].unique() if (a := dial_alpha(m)) is not None and 0 < a < 1})
    rows = []
    for image, pairs in ends.groupby("image", sort=False):
        clean = against = None  # read and built for the first blend this image still lacks
        for (sigma, seed), pair in pairs.groupby(["sigma", "seed"]):
            todo = [a for a in alphas if (str(image), f"pixel@{a:g}", str(sigma), str(seed)) not in have]
            if set(pair["method"]) != set(ENDS) or not todo:
                continue
            first = pair.iloc[0]
            base = images / f"sigma{sigma:g}_seed{int(seed)}"
            low = read_image(base / "idresnet" / image).astype(np.float64)
            high = read_image(base / "idgan" / image).astype(np.float64)
            if against is None:
                clean = read_image(clean_path(data, image))
                against = scoring.scorers(clean, names)
            for alpha in todo:
                out = np.clip(np.rint((1 - alpha) * low + alpha * high), 0, 255).astype(np.uint8)
                rows.append({"image": image, "method": f"pixel@{alpha:g}", "sigma": sigma, "seed": seed,
                             "psnr": metrics.psnr(clean, out), "ssim": metrics.ssim(clean, out),
                             "hf": metrics.high_frequency_energy(out), "hf_clean": first["hf_clean"],
                             **{name: score(out) for name, score in against.items()}})
        if save is not None and against is not None:
            save(pd.concat([ready, pd.DataFrame(rows)], ignore_index=True))
    return pd.concat([ready, pd.DataFrame(rows)], ignore_index=True) if rows else ready.reset_index(drop=True)


def on_runs(rows: pd.DataFrame, results: pd.DataFrame) -> pd.Series:
    """Whether each of ``rows`` is on an image, sigma and seed of ``results``."""
    def keys(table: pd.DataFrame):
        return zip(table["image"].astype(str), table["sigma"].astype(float), table["seed"].astype(int))

    runs = set(keys(results))
    return pd.Series([key in runs for key in keys(rows)], index=rows.index, dtype=bool)


def baseline_rows(folder: Path, results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the methods outside the dial in ``folder``'s evaluation that match
    ``results``' images, sigmas and seeds, with the perceptual scores that evaluation recorded:
    a baseline evaluated once serves every plane on the same images and noise. A (sigma,
    method) that ``results`` holds itself is left to it (a baseline run again there with DISTS,
    say); a method there on only some of the images is left out (and named), as in ``results``."""
    path = folder / "results.csv"
    if not path.exists():
        raise SystemExit(f"--baselines: {path} does not exist")
    other = read_results(path)
    own = set(zip(results["sigma"], results["method"]))
    other = other[other["method"].map(lambda m: dial_alpha(m) is None and not m.startswith("pixel@"))
                  & ~pd.Series(list(zip(other["sigma"], other["method"])), index=other.index).isin(own)]
    other = other[on_runs(other, results)]
    images = results.groupby("sigma")["image"].nunique()
    return complete(other, other["sigma"].map(images), "--baselines: ").reset_index(drop=True)


def complete(rows: pd.DataFrame, images: pd.Series | int, where: str = "") -> pd.DataFrame:
    """The rows of the (sigma, method)s that cover ``images`` images (per row, or one count);
    the others are named on stderr as left out."""
    whole = rows.groupby(["sigma", "method"])["image"].transform("nunique") == images
    if not whole.all():
        left = sorted({f"{m} at {s:g}" for m, s in zip(rows.loc[~whole, "method"], rows.loc[~whole, "sigma"])})
        print(f"{where}left out, not run on every image: {', '.join(left)}", file=sys.stderr)
    return rows[whole]


def means(results: pd.DataFrame, perceptual: pd.DataFrame, blends: pd.DataFrame, names: tuple[str, ...],
          baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Means per sigma and method of the scored ``results`` (the scores their evaluation
    recorded, else ``perceptual``'s), the pixel ``blends`` on their images and noise, and the
    ``baselines`` taken from another evaluation (their recorded scores as they are)."""
    recorded = [c for c in perceptual.columns if c in results.columns and c not in KEY]
    scored = results.merge(perceptual.astype({"sigma": float, "seed": int}), on=KEY, how="left",
                           suffixes=("@recorded", ""))
    for column in recorded:
        scored[column] = scored.pop(f"{column}@recorded").fillna(scored[column])
    blends = blends[on_runs(blends, results)]
    everything = pd.concat([scored, baselines, blends] if baselines is not None else [scored, blends],
                           ignore_index=True)
    table = summary(everything)  # means of PSNR, SSIM, detail, LPIPS and DISTS per (sigma, method)
    table["family"] = [family(m) for m in table["method"]]
    table["alpha"] = [a if (a := dial_alpha(m)) is not None else
                      (float(m.split("@")[1]) if m.startswith("pixel@") else np.nan) for m in table["method"]]
    return table.sort_values(["sigma", "family", "alpha", "method"]).reset_index(drop=True)


def family(method: str) -> str:
    if method.startswith("pixel@"):
        return "pixel blend"
    return "network blend (dial)" if dial_alpha(method) is not None else "baseline"


def findings(table: pd.DataFrame) -> list[str]:
    """What the plane shows, per sigma, from the numbers."""
    lines = []
    for sigma, at in table.groupby("sigma"):
        dial = at[at["family"] == "network blend (dial)"].sort_values("alpha")
        pixel = at[at["family"] == "pixel blend"].set_index("alpha")
        resnet = dial[dial["method"] == "idresnet"].iloc[0]
        baselines = at[(at["family"] == "baseline")]
        best_base = baselines.loc[baselines["lpips"].idxmin()] if not baselines.empty else None
        keeps = dial.iloc[(dial["detail"] - 1).abs().argsort()[:1]].iloc[0]
        lines.append(f"- sigma {sigma:g}: detail is nearest 1 at A = {keeps['alpha']:g} (detail {keeps['detail']:.2f}, "
                     f"LPIPS {keeps['lpips']:.4f}, PSNR {keeps['psnr']:.2f} dB, {resnet['psnr'] - keeps['psnr']:.2f} dB "
                     "below IDResNet).")
        if best_base is not None:
            lines.append("  " + win_text(dial, resnet, baselines, "lpips"))
        inner = [r for r in dial.itertuples() if 0 < r.alpha < 1 and r.alpha in pixel.index]
        if best_base is not None and "dists" in at and at["dists"].notna().all():
            lines.append("  " + dists_finding(dial, resnet, baselines, pixel, inner))
        if inner:
            dpsnr = np.mean([r.psnr - pixel.loc[r.alpha, "psnr"] for r in inner])
            dlpips = np.mean([r.lpips - pixel.loc[r.alpha, "lpips"] for r in inner])
            # On the plane: the pixel blend's LPIPS at each dial point's PSNR (between its own points).
            curve = pixel.sort_values("psnr")
            at_same = [r.lpips - np.interp(r.psnr, curve["psnr"], curve["lpips"]) for r in inner
                       if curve["psnr"].min() <= r.psnr <= curve["psnr"].max()]
            lines.append(f"  Network minus pixel blend at the same A, mean over A in (0, 1): {dpsnr:+.3f} dB PSNR, "
                         f"{dlpips:+.4f} LPIPS.")
            if at_same:
                gap = float(np.mean(at_same))
                better = "pixel blending" if gap > 0 else "network interpolation"
                lines.append(f"  At equal PSNR the network blend's LPIPS is {gap:+.4f} against the pixel blend's "
                             f"(mean over {len(at_same)} settings): {better} gives the better trade-off here.")
    return lines


def wins(dial: pd.DataFrame, resnet: pd.Series, baselines: pd.DataFrame,
         metric: str) -> tuple[pd.Series | None, pd.Series | None, pd.Series]:
    """Among the dial settings that beat every baseline in ``metric`` at a PSNR cost under 0.5 dB
    against IDResNet: the first (smallest A) and the best (lowest ``metric``), None if none does;
    and the best baseline."""
    best = baselines.loc[baselines[metric].idxmin()]
    cheap = dial[(resnet["psnr"] - dial["psnr"] < 0.5) & (dial[metric] < best[metric])]
    if cheap.empty:
        return None, None, best
    return cheap.loc[cheap["alpha"].idxmin()], cheap.loc[cheap[metric].idxmin()], best


def win_text(dial: pd.DataFrame, resnet: pd.Series, baselines: pd.DataFrame, metric: str) -> str:
    """Whether some A beats every baseline in ``metric`` at a PSNR cost under 0.5 dB: the first
    such A and, where another, the lowest ``metric`` within that cost."""
    name = metric.upper()
    first, top, best = wins(dial, resnet, baselines, metric)
    if first is None:
        return (f"No A beats the best baseline's {name} ({best['method']}, {best[metric]:.4f}) at a PSNR cost under "
                "0.5 dB against IDResNet.")

    def cost(row: pd.Series) -> str:
        return f"{resnet['psnr'] - row['psnr']:.3f} dB"

    text = (f"A = {first['alpha']:g} beats every baseline in {name} ({first[metric]:.4f} against {best['method']}'s "
            f"{best[metric]:.4f}) for {cost(first)} against IDResNet.")
    if top["alpha"] != first["alpha"]:
        text += f" Within 0.5 dB the lowest {name} is at A = {top['alpha']:g} ({top[metric]:.4f}, for {cost(top)})."
    return text


def dists_finding(dial: pd.DataFrame, resnet: pd.Series, baselines: pd.DataFrame, pixel: pd.DataFrame,
                  inner: list) -> str:
    """The LPIPS comparison with the baselines, checked with DISTS (and the pixel blend's gap)."""
    text = win_text(dial, resnet, baselines, "dists")
    if inner and pixel["dists"].notna().all():
        gap = np.mean([r.dists - pixel.loc[r.alpha, "dists"] for r in inner])
        text += f" Network minus pixel blend at the same A: {gap:+.4f} DISTS."
    return text


def write_png(fig, png_path: Path) -> bool:
    """Render ``fig`` with chromium (Playwright), plotly.js embedded so that no network is
    needed, to ``png_path``; False where Playwright or chromium is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return False
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return False
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "plane.html"
        page_path.write_text(fig.to_html(include_plotlyjs=True, config={"staticPlot": True}))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": int(fig.layout.width) + 20, "height": int(fig.layout.height) + 20})
            page.goto(page_path.as_uri())
            page.wait_for_selector(".main-svg", timeout=30000)
            page.locator(".plotly-graph-div").first.screenshot(path=str(png_path))
            browser.close()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/perception_distortion.py", description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="an evaluation folder (its results.csv)")
    parser.add_argument("--images", type=Path, required=True, help="the --save-images folder of that evaluation")
    parser.add_argument("--data", type=Path, required=True,
                        help="the clean images it was run on: a folder, or a test set's name (kodak24, ...)")
    parser.add_argument("--sigma", type=float, action="append",
                        help="score only these sigmas (default: all); the plane still shows the others with the "
                             "scores found for them")
    parser.add_argument("--no-dists", action="store_true", help="LPIPS only (DISTS is about 10x slower)")
    parser.add_argument("--baselines", type=Path, metavar="FOLDER",
                        help="take the methods outside the dial from this evaluation folder (same images and "
                             "seed; its recorded LPIPS and DISTS) instead of evaluating them again")
    args = parser.parse_args(argv)
    names = ("lpips",) if args.no_dists else ("lpips", "dists")
    results = read_results(args.results / "results.csv")
    if results.empty or not (set(ENDS) <= set(results["method"])):
        parser.error(f"{args.results / 'results.csv'} has no idresnet and idgan rows: run the evaluation first")
    results = results[results["method"].map(lambda m: not m.startswith("pixel@"))]
    # A method run on part of the images (a run still going, say) would not be comparable:
    # every (sigma, method) must cover every image the folder holds.
    results = complete(results, results["image"].nunique())
    ends = results[results["method"].isin(ENDS)].groupby("sigma")["method"].nunique() == len(ENDS)
    if not ends.all():  # a plane without both ends of its dial has no curve to compare
        print(f"left out, no idresnet and idgan on every image: sigma {', '.join(f'{s:g}' for s in ends.index[~ends])}",
              file=sys.stderr)
        results = results[results["sigma"].isin(ends.index[ends])]
    if results.empty:
        parser.error("no sigma has idresnet and idgan on every image")
    scope = results[results["sigma"].isin(args.sigma)] if args.sigma else results
    if scope.empty:
        parser.error(f"--sigma {', '.join(f'{s:g}' for s in args.sigma)}: no dial on every image there "
                     f"(the folder's: {', '.join(f'{s:g}' for s in sorted(results['sigma'].unique()))})")
    done_path = args.results / "perceptual.csv"
    done = pd.read_csv(done_path) if done_path.exists() else pd.DataFrame(columns=[*KEY, *names])

    def save_scores(table: pd.DataFrame) -> None:
        write_text(done_path, table.to_csv(index=False))

    perceptual = score_outputs(scope, args.images, args.data, done, names, save_scores)
    save_scores(perceptual)
    blend_path = args.results / "pixel_blend.csv"
    earlier = pd.read_csv(blend_path) if blend_path.exists() else pd.DataFrame(columns=KEY)

    def save_blends(table: pd.DataFrame) -> None:
        write_text(blend_path, table.to_csv(index=False))

    blends = pixel_blends(scope, args.images, args.data, earlier, names, save_blends)
    save_blends(blends)
    table = means(results, perceptual, blends, names,
                  baseline_rows(args.baselines, results) if args.baselines else None)
    unscored = table.groupby("sigma")["lpips"].apply(lambda column: column.isna().any())
    if unscored.any():  # a sigma outside --sigma that was never scored
        print(f"left out, not scored: sigma {', '.join(f'{s:g}' for s in unscored.index[unscored])} "
              "(run without --sigma)", file=sys.stderr)
        table = table[~table["sigma"].isin(unscored.index[unscored])].reset_index(drop=True)
    write_text(args.results / "plane.csv", table.to_csv(index=False, float_format="%.4f"))
    fig = plane_figure(table)
    html_path = args.results / "plane.html"
    write_text(html_path, fig.to_html(include_plotlyjs="cdn", div_id="plane"))
    png = write_png(fig, args.results / "plane.png")
    text = "\n".join(findings(table))
    write_text(args.results / "plane.md", text + "\n")
    print(text)
    print(f"wrote {done_path}, pixel_blend.csv, plane.csv, plane.html{', plane.png' if png else ''} in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
