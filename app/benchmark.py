"""The benchmark tab's data: ``docs/results/<set>/results.csv`` written by
``python -m denoisers.evaluate``, summarised beside the paper's numbers.

Missing or partial files are reported in plain words, never an exception.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from denoisers import registry, report

DATASETS = ("kodak24", "cbsd68", "mcmaster")
EXPECTED_IMAGES = {"kodak24": 24, "cbsd68": 68, "mcmaster": 18}
TABLE_SIGMAS = (25, 35, 50)
COLUMNS = report.COLUMNS


def default_root() -> Path:
    return Path(__file__).resolve().parent.parent / "docs" / "results"


def load(root: Path, dataset: str) -> tuple[pd.DataFrame | None, list[str]]:
    """The rows of ``root/dataset/results.csv`` (or None) and notes on what is missing."""
    path = Path(root) / dataset / "results.csv"
    if not path.exists():
        return None, [f"No results for {dataset} yet ({path} missing): run "
                      f"`python -m denoisers.evaluate --data {dataset} ... --out {path.parent}` to produce it."]
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return None, [f"{dataset}/results.csv could not be read: {exc}"]
    missing_cols = [c for c in ("image", "method", "sigma", "psnr") if c not in df.columns]
    if missing_cols:
        return None, [f"{dataset}/results.csv lacks columns: {', '.join(missing_cols)}"]
    df = df.dropna(subset=["image", "method", "sigma", "psnr"])
    df["sigma"] = pd.to_numeric(df["sigma"], errors="coerce")
    df["psnr"] = pd.to_numeric(df["psnr"], errors="coerce")
    df = df.dropna(subset=["sigma", "psnr"])
    if "seed" in df.columns and df["seed"].nunique() > 1:
        df = report.one_seed(df)  # a mean over two noise draws of one image is no published mean
    notes = []
    expected = EXPECTED_IMAGES.get(dataset)
    if expected:
        counts = df.groupby(["method", "sigma"])["image"].nunique()
        sigmas = sorted(set(TABLE_SIGMAS) | set(df["sigma"].unique()))
        for method in report.display_order(df["method"].unique()):
            for sigma in sigmas:
                n = int(counts.get((method, sigma), 0))
                if n < expected:
                    state = "missing" if n == 0 else "partial"
                    notes.append(f"{dataset}: {method} at σ={sigma:g} has {n} of {expected} images ({state}).")
    return df, notes


def reference_note(dataset: str) -> str:
    """What the published columns beside ``dataset``'s means were measured on ('' for none)."""
    paper, published = report.references(dataset)
    parts = []
    if paper:
        parts.append("“paper” is the IDGAN paper's Table 1, on the full images as ours; our IDResNet and "
                     "IDGAN are this project's own training of that paper's networks, far shorter so far than "
                     "its 400k steps (docs/training.md), which is why they trail its column")
    if published and dataset == "kodak24":
        parts.append(f"“published” is the FFDNet paper's table, measured on {report.PUBLISHED_ON}, where our "
                     "DnCNN, FFDNet and CBM3D land within 0.052 dB of it (0.11-0.22 dB below our "
                     "full-image means; docs/results.md)")
    return "; ".join(parts) + "." if parts else ""


def summary_table(df: pd.DataFrame | None, dataset: str = "kodak24", sigmas=TABLE_SIGMAS,
                  expected: int | None = None) -> pd.DataFrame:
    """Mean PSNR per method and sigma (ours), with the published numbers that apply to
    ``dataset`` beside it (``report.references``: the paper's Table 1 and the FFDNet paper's
    publications, Kodak24 only). Rows: methods in display order; on Kodak24 the paper's
    methods have a row even before they have results. With ``expected`` (images in the set),
    a mean over fewer images is shown as text with the count, e.g. "31.83 (15/24)", so that a
    partial mean is never read as the full one."""
    paper, published = report.references(dataset)
    means = report.summary(df).set_index(["method", "sigma"]) if df is not None and not df.empty else None
    ours = set(df["method"].unique()) if df is not None else set()
    rows = []
    for method in report.display_order(ours | set(paper)):
        row: dict[str, object] = {"method": method}
        for s in sigmas:
            mean = None
            if means is not None and (method, s) in means.index:
                mean = round(float(means.loc[(method, s), "psnr"]), 2)
                n = int(means.loc[(method, s), "images"])
                if expected and n < expected:
                    mean = f"{mean:.2f} ({n}/{expected})"
            row[f"σ={s} ours"] = mean
            if paper:
                row[f"σ={s} paper"] = paper.get(method, {}).get(s)
            if published:
                row[f"σ={s} published"] = published.get(method, {}).get(s)
        if df is not None:
            row["images"] = int(df[df["method"] == method]["image"].nunique())
        rows.append(row)
    table = pd.DataFrame(rows, columns=["method"]) if not rows else pd.DataFrame(rows)
    # Drop "published" columns with no number at all (nobody published sigma 35); an empty
    # "ours" column stays, so that a missing result shows as missing.
    empty = [c for c in table.columns if c.endswith("published") and table[c].isna().all()]
    return table.drop(columns=empty)


def detail_table(df: pd.DataFrame | None, sigmas=TABLE_SIGMAS) -> pd.DataFrame:
    """Per method and sigma, the outputs' mean high-frequency energy over the clean images'
    (``report.summary``'s ``detail``: 1 = as much fine texture as the ground truth, below 1 =
    smoothed). Blank where a result lacks the measure (files from before it existed)."""
    columns = ["method", *(f"σ={s}" for s in sigmas)]
    if df is None or df.empty:
        return pd.DataFrame(columns=columns)
    means = report.summary(df)
    rows = []
    for method in report.display_order(means["method"]):
        row: dict[str, object] = {"method": method}
        for s in sigmas:
            sel = means[(means["method"] == method) & (means["sigma"] == s)]["detail"].dropna()
            row[f"σ={s}"] = round(float(sel.iloc[0]), 2) if len(sel) else None
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def paired_table(df: pd.DataFrame | None) -> pd.DataFrame:
    """``report.paired`` for the tab: per sigma, each method against the best mean, image by
    image (mean ΔPSNR, its 95% interval, images where the method did better)."""
    from denoisers.registry import names

    columns = ["σ", "method", "against", "ΔPSNR (dB)", "95% interval", "better on"]
    table = report.paired(df, names()) if df is not None and not df.empty else pd.DataFrame()
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = [[f"{r.sigma:g}", r.method, r.reference, round(r.diff, 2),
             "" if pd.isna(r.low) else f"{r.low:+.2f} to {r.high:+.2f}", f"{r.better} of {r.images}"]
            for r in table.itertuples()]
    return pd.DataFrame(rows, columns=columns)


SIGMA_SHAPES = ("circle", "square", "diamond", "triangle-up")
SHAPE_GLYPHS = {"circle": "●", "square": "■", "diamond": "◆", "triangle-up": "▲"}


def tradeoff_chart(df: pd.DataFrame | None, dataset: str = "kodak24") -> go.Figure:
    """Mean PSNR against detail, one line per method through its sigmas: smoothing moves a
    method left (less texture than the clean images, which sit at detail 1), noise moves it
    down. Where a GAN and an MSE network part ways. Points without the measure are left out."""
    figure = go.Figure()
    means = report.summary(df).dropna(subset=["detail"]) if df is not None and not df.empty else None
    if means is not None and not means.empty:
        # The methods' points lie close together: text beside each point piled up into an
        # unreadable heap, so the sigma is the marker's shape (said once, in the subtitle).
        sigmas = sorted(means["sigma"].unique())
        shapes = dict(zip(sigmas, SIGMA_SHAPES * (len(sigmas) // len(SIGMA_SHAPES) + 1)))
        for method in report.display_order(means["method"]):
            rows = means[means["method"] == method].sort_values("sigma")
            figure.add_trace(go.Scatter(
                x=rows["detail"], y=rows["psnr"], mode="lines+markers", name=method,
                marker={"symbol": [shapes[s] for s in rows["sigma"]], "size": 9},
                text=[f"σ={s:g}" for s in rows["sigma"]],
                hovertemplate=method + " %{text}: detail %{x:.2f}, %{y:.2f} dB<extra></extra>"))
        figure.add_annotation(text="markers: " + ", ".join(f"{SHAPE_GLYPHS[shapes[s]]} σ={s:g}" for s in sigmas),
                              showarrow=False, xref="paper", yref="paper", x=0, y=1.07, xanchor="left")
    if not figure.data:  # empty axes would look like a chart of nothing
        figure.add_annotation(text=f"no detail measured for {dataset} yet", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
    figure.add_vline(x=1.0, line_dash="dot", annotation_text="clean image", annotation_position="top left")
    figure.update_layout(title=f"{dataset}: PSNR against detail", xaxis_title="detail (high-frequency energy / clean)",
                         yaxis_title="mean PSNR (dB)", template="plotly_white", height=420,
                         margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return figure


def psnr_chart(df: pd.DataFrame | None, dataset: str = "kodak24", title: str | None = None) -> go.Figure:
    """Mean PSNR against sigma per method (ours: solid; the paper's Table 1 on Kodak24: dashed)."""
    figure = report.psnr_figure(df, dataset, title or f"{dataset}: mean PSNR against σ")
    figure.update_layout(height=420, margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return figure


def per_image(df: pd.DataFrame | None, sigma: float) -> pd.DataFrame:
    """PSNR per image (rows) and method (columns) at ``sigma``, with the spread between the
    best and worst method; sorted so the images where methods differ most come first."""
    if df is None:
        return pd.DataFrame(columns=["image"])
    sel = df[df["sigma"] == float(sigma)]
    if sel.empty:
        return pd.DataFrame(columns=["image"])
    wide = sel.pivot_table(index="image", columns="method", values="psnr", aggfunc="mean")
    wide = wide[report.display_order(wide.columns)]
    wide["spread"] = wide.max(axis=1) - wide.min(axis=1)
    wide = wide.sort_values("spread", ascending=False).round(2).reset_index()
    wide.columns.name = None
    return wide


#: The perception-distortion planes (folders of scripts/perception_distortion.py's plane.csv),
#: named by what they were measured on; the first is shown first.
PLANES = {"Kodak24, whole images": "kodak24-dial",
          "Kodak24, 256x256 centres (LPIPS and DISTS)": "kodak24-c256-dial"}


def plane_chart(root: Path, which: str | None = None) -> go.Figure:
    """The perception-distortion plane of the idgan@A dial against the baselines, from the
    plane.csv of ``PLANES[which]`` (the first plane when ``which`` is not one of them) under
    ``root``; a figure that says how to make it where the file is missing."""
    which = which if which in PLANES else next(iter(PLANES))
    path = Path(root) / PLANES[which] / "plane.csv"
    try:
        table = pd.read_csv(path)
        figure = report.plane_figure(table)
    except (OSError, ValueError, KeyError) as exc:
        figure = go.Figure()
        figure.add_annotation(text=f"no perception-distortion plane on {which} yet ({path.parent.name}/{path.name}: "
                                   f"{type(exc).__name__}); scripts/perception_distortion.py makes it",
                              showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return figure
    figure.update_layout(width=None, autosize=True, height=460,
                         title=f"Perception-distortion plane, {which}: the idgan@A dial "
                               "(network and pixel blend) against the baselines")
    return figure


def labelled_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with methods named as the Compare tab names them (DnCNN, not dncnn): in the
    method and against columns, and as column names (the per-image table's)."""
    out = table.copy()
    for column in ("method", "against"):
        if column in out.columns:
            out[column] = out[column].map(lambda m: registry.label(str(m)))
    return out.rename(columns=lambda c: registry.label(str(c)))  # other names stay as they are


def labelled_figure(figure: go.Figure) -> go.Figure:
    """``figure`` with its traces named as the Compare tab names the methods ("DnCNN (ours)")."""
    for trace in figure.data:
        method, _, rest = (trace.name or "").partition(" ")
        if method in registry.names():
            label = registry.label(method)
            trace.name = f"{label} {rest}".strip()
            if trace.hovertemplate and trace.hovertemplate.startswith(method + " "):
                trace.hovertemplate = label + trace.hovertemplate[len(method):]
    return figure
