"""Tables and charts from ``results.csv`` files written by ``denoisers.evaluate``.

``python -m denoisers.report DIR [DIR ...] --out docs/results.md`` gathers the tables of
several evaluation folders into one markdown document.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import sys
from pathlib import Path

import pandas as pd

from .metrics import PERCEPTUAL
from .reference import KODAK24_IMAGES, PAPER_TABLE1, PUBLISHED, PUBLISHED_ON  # noqa: F401 (re-exported)

# ``hf``/``hf_clean``: the high-frequency energy (``metrics.high_frequency_energy``) of the
# output and of the clean image; files written before they existed lack them.
MEASURES = ("hf", "hf_clean")
COLUMNS = ["image", "method", "sigma", "seed", "psnr", "ssim", "seconds", "weights", *MEASURES]
# ``clean_sha256``: the clean image's decoded pixels (``io.pixels_sha256``), so that a row is
# known to belong to that image and not merely to a file of that name; older files lack it.
# ``lpips`` (AlexNet) and ``dists``: perceptual distances to the clean image (lower is closer),
# recorded when the evaluation's ``--metrics`` asks for them (LPIPS by default); empty otherwise.
FILE_COLUMNS = [*COLUMNS, "clean_sha256", *PERCEPTUAL]


def read_results(path: Path) -> pd.DataFrame:
    if not Path(path).exists():
        return pd.DataFrame(columns=COLUMNS)
    results = pd.read_csv(path, dtype={"weights": str, "clean_sha256": str})
    if "weights" in results.columns:  # a method without weights writes "", which reads back as NaN
        results["weights"] = results["weights"].fillna("")
    return results


PERCEPTUAL_HEADS = {"lpips": "LPIPS ↓", "dists": "DISTS ↓"}


def _fmt(value: float | None) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2f}"


def one_seed(results: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """The rows of one noise seed (``seed``, or the smallest present): means never mix seeds."""
    if results.empty:
        return results
    chosen = int(results["seed"].min()) if seed is None else int(seed)
    return results[results["seed"] == chosen]


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR/SSIM/seconds and image count per (sigma, method), and ``detail``: the outputs'
    mean high-frequency energy over the clean images' (1 = as much fine detail as the clean
    images; below 1 = smoothed; NaN where a row lacks the measure). Columns a file lacks give NaN."""
    results = results.reindex(columns=list(dict.fromkeys([*results.columns, *COLUMNS, *PERCEPTUAL])))  # older files
    grouped = results.groupby(["sigma", "method"], sort=False)
    table = grouped.agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), seconds=("seconds", "mean"),
                        images=("image", "nunique")).reset_index()
    detail = grouped.apply(_detail_ratio, include_groups=False).rename("detail").reset_index()
    table = table.merge(detail, on=["sigma", "method"], how="left")
    for column in PERCEPTUAL:  # a mean over every image of the group, or none (never over a subset)
        means = grouped[column].agg(lambda v: float("nan") if pd.to_numeric(v, errors="coerce").isna().any()
                                    else float(pd.to_numeric(v).mean())).rename(column).reset_index()
        table = table.merge(means, on=["sigma", "method"], how="left")
    return table


def _detail_ratio(rows: pd.DataFrame) -> float:
    hf, clean = pd.to_numeric(rows["hf"], errors="coerce"), pd.to_numeric(rows["hf_clean"], errors="coerce")
    if hf.isna().any() or clean.isna().any() or clean.sum() <= 0:
        return float("nan")
    return float(hf.mean() / clean.mean())


def display_order(methods) -> list[str]:
    """``methods`` in the registry's order (unknown names last, by name)."""
    from .registry import names

    known = names()
    return sorted(set(methods), key=lambda m: (known.index(m) if m in known else len(known), m))


def references(dataset: str) -> tuple[dict, dict]:
    """The published numbers that may stand beside ours on ``dataset``: (the IDGAN paper's
    Table 1, the FFDNet paper's Kodak24 table). Table 1 was measured on the full Kodak24 images,
    the FFDNet paper's values on its 500x500 centre crops (``reference.PUBLISHED_ON``): our
    full-image means sit 0.11-0.22 dB above them, our crop means within 0.052 dB. Other sets get
    none, so that no number is read against a different test set."""
    paper = PAPER_TABLE1 if dataset == "kodak24" else {}
    # Only the full images and the crops those values were measured on: other cuts of Kodak24
    # (the 256x256 centres of the dial's study) are other test sets.
    published = PUBLISHED if dataset in ("kodak24", "kodak24-crop500") else {}
    return paper, published


def table_markdown(results: pd.DataFrame, method_order: list[str], dataset: str = "kodak24") -> str:
    """A table laid out like the paper's Table 1: per sigma, one row per method.

    The paper's and the FFDNet paper's published numbers are shown beside ours for Kodak24 only.
    """
    if results.empty:
        return "_no results yet_\n"
    table = summary(results)
    paper, published = references(dataset)
    kodak = bool(published)
    detail = bool(table["detail"].notna().any())
    perceptual = [c for c in PERCEPTUAL if table[c].notna().any()]
    head = ("| sigma | method | images | PSNR (dB) | SSIM |" + (" detail |" if detail else "")
            + "".join(f" {PERCEPTUAL_HEADS[c]} |" for c in perceptual) + " s / image |")
    rule = "|---|---|---:|---:|---:|" + ("---:|" if detail else "") + "---:|" * len(perceptual) + "---:|"
    if kodak:
        head += " paper Table 1 | published |"
        rule += "---:|---:|"
    lines = [head, rule]
    order = {m: i for i, m in enumerate(method_order)}
    table = table.assign(_o=table["method"].map(lambda m: order.get(m, len(order))))
    for sigma, rows in table.sort_values(["sigma", "_o"]).groupby("sigma", sort=True):
        # Bold goes to the best of the methods run on the most images, as in ``paired``: a
        # mean over a few images is not comparable with one over all of them.
        best = rows.loc[rows["images"] == rows["images"].max(), "psnr"].max()
        for row in rows.itertuples():
            psnr = _fmt(row.psnr)
            psnr = f"**{psnr}**" if row.psnr == best else psnr
            line = f"| {sigma:g} | {row.method} | {row.images} | {psnr} | {row.ssim:.4f} |"
            if detail:
                line += f" {_fmt(row.detail)} |"
            for column in perceptual:
                value = getattr(row, column)
                line += f" {'' if pd.isna(value) else f'{value:.4f}'} |"
            line += f" {row.seconds:.2f} |"
            if kodak:
                s = int(sigma) if float(sigma).is_integer() else sigma
                line += f" {_fmt(paper.get(row.method, {}).get(s))} | {_fmt(published.get(row.method, {}).get(s))} |"
            lines.append(line)
    notes = []
    if perceptual:
        notes.append(" and ".join(PERCEPTUAL_HEADS[c] for c in perceptual)
                     + ": perceptual distance to the clean image, lower is better (empty where a row lacks it)")
    if kodak and dataset == "kodak24":
        notes.append(f"published: the FFDNet paper's table, measured on {PUBLISHED_ON}; ours on the full images")
    if kodak and int(table["images"].min()) < KODAK24_IMAGES:
        notes.append(f"some means here are over fewer than the {KODAK24_IMAGES} images that the "
                     "published values average")
    uneven = table.groupby("sigma")["images"].nunique()
    if (uneven > 1).any():
        notes.append("at sigma " + ", ".join(f"{s:g}" for s in uneven[uneven > 1].index)
                     + " the methods were run on different numbers of images: their means are not "
                     "comparable, and bold marks the best of those run on the most")
    return "\n".join(lines) + "\n" + "".join(f"\n_{n}._\n" for n in notes)


def paired(results: pd.DataFrame, method_order: list[str]) -> pd.DataFrame:
    """Per sigma, every method against the one with the best mean PSNR (among those run on the
    most images), image by image on the images both have (same noise): mean PSNR difference
    (method minus best) with its 95% t-interval, and on how many images the method did
    better. A lead that a few images make shows here as a wide interval and a split count."""
    from scipy import stats

    columns = ["sigma", "method", "reference", "images", "diff", "low", "high", "better"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    order = {m: i for i, m in enumerate(method_order)}
    rows = []
    for sigma, at in results.groupby("sigma", sort=True):
        wide = at.pivot_table(index="image", columns="method", values="psnr", aggfunc="mean")
        if wide.shape[1] < 2:
            continue
        # The reference is the best of the methods run on the most images, judged on the images
        # they share: a partial run on a few easy images must not become the yardstick.
        counts = wide.notna().sum()
        complete = wide[counts[counts == counts.max()].index]
        reference = (complete.dropna() if complete.notna().all(axis=1).any() else complete).mean().idxmax()
        for method in sorted(wide.columns, key=lambda m: (order.get(m, len(order)), m)):
            if method == reference:
                continue
            diff = (wide[method] - wide[reference]).dropna()
            n = len(diff)
            if n == 0:  # no image in common: nothing to pair
                continue
            half = (stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / n**0.5) if n > 1 else float("nan")
            rows.append([sigma, method, reference, n, diff.mean(), diff.mean() - half, diff.mean() + half,
                         int((diff > 0).sum())])
    return pd.DataFrame(rows, columns=columns)


def paired_markdown(results: pd.DataFrame, method_order: list[str]) -> str:
    table = paired(results, method_order)
    if table.empty:
        return ""
    lines = ["Paired against the best mean at each sigma (same images, same noise): mean PSNR",
             "difference with its 95% t-interval, and the images on which the method did better.", "",
             "| sigma | method | against | images | ΔPSNR (dB) | 95% interval | better on |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in table.itertuples():
        interval = "" if pd.isna(r.low) else f"{r.low:+.2f} to {r.high:+.2f}"
        lines.append(f"| {r.sigma:g} | {r.method} | {r.reference} | {r.images} | {r.diff:+.2f} | {interval} "
                     f"| {r.better} of {r.images} |")
    return "\n".join(lines) + "\n"


def count(n: int, noun: str) -> str:
    """``3 images``, ``1 image``: a number and its noun (plural by an added s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def psnr_figure(results: pd.DataFrame | None, dataset: str, title: str):
    """Mean PSNR against sigma per method (ours: solid), with the IDGAN paper's Table 1 dashed
    where it applies to ``dataset`` (all its methods, so that the targets show before results)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = go.Figure()
    palette = go.layout.Template(pio.templates["plotly_white"]).layout.colorway
    from .registry import names

    shown = set(results["method"]) if results is not None and not results.empty else set()
    methods = display_order(shown | set(references(dataset)[0]) | set(names()))
    colour = {m: palette[i % len(palette)] for i, m in enumerate(methods)}  # one per method, the same in every chart
    if results is not None and not results.empty:
        aggregates = {"psnr": ("psnr", "mean"), "images": ("image", "nunique")}
        if "ssim" in results.columns:
            aggregates["ssim"] = ("ssim", "mean")
        means = results.groupby(["method", "sigma"]).agg(**aggregates).reset_index()
        extra = ", SSIM %{customdata[1]:.4f}" if "ssim" in means.columns else ""
        for method in display_order(means["method"]):
            rows = means[means["method"] == method].sort_values("sigma")
            fig.add_trace(go.Scatter(x=rows["sigma"], y=rows["psnr"], mode="lines+markers", name=f"{method} (ours)",
                                     line={"color": colour[method]}, marker={"color": colour[method]},
                                     customdata=rows[[c for c in ("images", "ssim") if c in rows.columns]],
                                     hovertemplate="sigma %{x}: %{y:.2f} dB" + extra
                                                   + " (%{customdata[0]} images)<extra></extra>"))
    paper, _ = references(dataset)
    for method in display_order(paper):
        xs = sorted(paper[method])
        fig.add_trace(go.Scatter(x=xs, y=[paper[method][x] for x in xs], mode="lines+markers",
                                 name=f"{method} (paper)", line={"dash": "dash", "color": colour[method]},
                                 marker={"symbol": "x", "color": colour[method]}))
    fig.update_layout(title=title, xaxis_title="noise sigma (0-255)", yaxis_title="mean PSNR (dB)",
                      template="plotly_white")
    return fig


def plane_figure(table: pd.DataFrame):
    """The perception-distortion plane (``scripts/perception_distortion.py``'s ``plane.csv``):
    PSNR against LPIPS, one panel per sigma, the idgan@A dial as a curve (network blend, and the
    pixel blend of its two ends dotted), the baselines as points."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sigmas = sorted(table["sigma"].unique())
    fig = make_subplots(rows=1, cols=len(sigmas), subplot_titles=[f"sigma {s:g}" for s in sigmas],
                        horizontal_spacing=0.06)
    styles = {"network blend (dial)": dict(mode="lines+markers", line=dict(color="#c0392b")),
              "pixel blend": dict(mode="lines+markers", line=dict(color="#7f8c8d", dash="dot"))}
    for col, sigma in enumerate(sigmas, start=1):
        at = table[table["sigma"] == sigma]
        for name, style in styles.items():
            part = at[at["family"] == name].sort_values("alpha")
            fig.add_trace(go.Scatter(x=part["lpips"], y=part["psnr"], name=name, legendgroup=name,
                                     showlegend=col == 1, text=[f"A={a:g}" for a in part["alpha"]],
                                     hovertemplate="%{text}<br>LPIPS %{x:.4f}<br>PSNR %{y:.2f} dB", **style),
                          row=1, col=col)
        base = at[at["family"] == "baseline"]
        fig.add_trace(go.Scatter(x=base["lpips"], y=base["psnr"], mode="markers+text", text=base["method"],
                                 textposition="top center", name="baselines", legendgroup="baselines",
                                 showlegend=col == 1, marker=dict(size=9, color="#2c3e50")), row=1, col=col)
        fig.update_xaxes(title_text="LPIPS (alex), lower is better", row=1, col=col)
    fig.update_yaxes(title_text="PSNR (dB)", row=1, col=1)
    fig.update_layout(width=max(640, 420 * len(sigmas)), height=460, template="plotly_white",  # the title fits
                      title="Perception-distortion plane: the idgan@A dial and the baselines",
                      legend=dict(orientation="h", y=-0.2))
    return fig


CHART_OFFLINE = ("This chart draws with plotly.js from cdn.plot.ly, which could not be loaded "
                 "(offline?). The same numbers are in table.md and results.csv beside this file.")


def chart_html(results: pd.DataFrame, dataset: str, title: str) -> str:
    """The PSNR chart of ``psnr_figure`` as a standalone interactive page. plotly.js comes from
    its CDN (embedding it would add 3.5 MB per chart); offline the page says so instead of
    staying blank. The chart's element id is fixed, so that a rerun with the same numbers
    writes the same file."""
    chart = psnr_figure(results, dataset, title).to_html(include_plotlyjs="cdn", full_html=False,
                                                        div_id="psnr-chart")
    offline = json.dumps(f'<p style="font-family:sans-serif;margin:1em">{html.escape(CHART_OFFLINE)}</p>')
    return (f'<!doctype html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>html, body {{height: 100%; margin: 0;}}</style>\n</head>\n<body>\n{chart}\n"
            f"<script>if (!window.Plotly) document.body.insertAdjacentHTML('afterbegin', {offline});</script>\n"
            "</body>\n</html>\n")


def document(folders: list[Path], method_order: list[str], at: Path | None = None) -> str:
    """The results page for ``folders``: each one's table, paired differences and notes, and
    its perception-distortion plane where it has one (what ``plane.md`` says, and
    ``plane.png`` linked relative to the folder ``at`` that the page is written in, the working
    folder when None)."""
    parts = [
        "# Results",
        "",
        "Generated by `python -m denoisers.report` from the `results.csv` files that",
        "`python -m denoisers.evaluate` wrote (the notes under a set come from its `NOTES.md`); do not",
        "edit by hand. Protocol: docs/evaluation.md",
        "(unclipped AWGN from `default_rng(seed)`, output clipped and rounded to uint8, PSNR over",
        "the whole RGB image). Best PSNR per sigma in bold. `s / image` is the wall time of one",
        "call on the machine that ran the evaluation, often beside other work: for speed, see",
        "`scripts/benchmark_denoisers.py`.",
        "",
        "`detail` is the outputs' mean high-frequency energy (the mean squared Laplacian of the",
        "luminance) over that of the clean images: 1 means as much fine detail as the ground",
        "truth, below 1 detail smoothed away, above 1 noise left in or texture invented. PSNR",
        "rewards smoothing; this column shows what it cost.",
        "",
    ]
    for folder in folders:
        results = one_seed(read_results(Path(folder) / "results.csv"))
        name = Path(folder).name
        seed = int(results["seed"].iloc[0]) if not results.empty else "-"
        parts += [f"## {name}", "", f"Noise seed {seed}. Folder: `{folder}`.", "",
                  table_markdown(results, method_order, name)]
        pairs = paired_markdown(results, method_order)
        if pairs:
            parts += [pairs]
        notes = Path(folder) / "NOTES.md"
        if notes.exists():
            parts += [notes.read_text().strip(), ""]
        findings = Path(folder) / "plane.md"
        if findings.exists():
            parts += ["What the perception-distortion plane shows (`plane.md`, computed by "
                      "`scripts/perception_distortion.py` from `plane.csv`):", "", findings.read_text().strip(), ""]
        plane = Path(folder) / "plane.png"
        if plane.exists():
            link = Path(os.path.relpath(plane.resolve(), Path(at or ".").resolve())).as_posix()
            parts += [f"![The perception-distortion plane of {name}: PSNR against LPIPS]({link})", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    from .registry import names

    parser = argparse.ArgumentParser(prog="python -m denoisers.report", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="evaluation output folders")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: print)")
    args = parser.parse_args(argv)
    text = document(args.folders, names(), args.out.parent if args.out else None)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
