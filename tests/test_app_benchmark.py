import pandas as pd
import pytest

from app import benchmark
from denoisers.reference import PAPER_TABLE1


def write(root, dataset, rows):
    folder = root / dataset
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=benchmark.COLUMNS).to_csv(folder / "results.csv", index=False)


def rows(methods=("dncnn", "ffdnet"), sigmas=(25, 50), images=24):
    out = []
    for m_i, m in enumerate(methods):
        for s in sigmas:
            for i in range(1, images + 1):
                p = 40 - s / 5 + m_i * 0.1 + (i % 3) * (0.5 if m == "ffdnet" and i == 7 else 0.01)
                out.append([f"kodim{i:02d}.png", m, s, 0, p, 0.9, 1.0, "sha", 90.0 - s, 120.0])
    return out


def test_missing_results_are_explained(tmp_path):
    df, notes = benchmark.load(tmp_path, "kodak24")
    assert df is None and "denoisers.evaluate" in notes[0]
    assert str(tmp_path / "kodak24" / "results.csv") in notes[0]  # the folder the app reads, not the default
    empty = benchmark.tradeoff_chart(df)
    assert not empty.data and "no detail measured" in empty.layout.annotations[0].text
    table = benchmark.summary_table(df)
    # Still shows the paper's numbers for reference.
    assert table.set_index("method").loc["dncnn", "σ=25 paper"] == PAPER_TABLE1["dncnn"][25]
    assert benchmark.per_image(df, 25).empty
    assert len(benchmark.psnr_chart(df).data) == len(PAPER_TABLE1)


def test_the_published_columns_say_what_they_were_measured_on():
    assert "centre crops" in benchmark.reference_note("kodak24") and "Table 1" in benchmark.reference_note("kodak24")
    assert benchmark.reference_note("cbsd68") == ""  # no published column there


def test_table_means_beside_the_paper(tmp_path):
    data = rows()
    write(tmp_path, "kodak24", data)
    df, notes = benchmark.load(tmp_path, "kodak24")
    assert notes == [f"kodak24: {m} at σ=35 has 0 of 24 images (missing)." for m in ("dncnn", "ffdnet")]
    table = benchmark.summary_table(df).set_index("method")
    expected = pd.DataFrame(data, columns=benchmark.COLUMNS)
    mean = expected[(expected.method == "dncnn") & (expected.sigma == 25)].psnr.mean()
    assert table.loc["dncnn", "σ=25 ours"] == pytest.approx(round(mean, 2))
    assert table.loc["dncnn", "σ=35 paper"] == PAPER_TABLE1["dncnn"][35]
    assert pd.isna(table.loc["ffdnet", "σ=35 ours"]) and table.loc["ffdnet", "images"] == 24
    assert list(table.index[:2]) == ["idresnet", "idgan"]  # display order


def test_partial_results_are_reported(tmp_path):
    write(tmp_path, "kodak24", rows(images=10))
    df, notes = benchmark.load(tmp_path, "kodak24")
    assert "kodak24: dncnn at σ=25 has 10 of 24 images (partial)." in notes
    assert "kodak24: dncnn at σ=35 has 0 of 24 images (missing)." in notes
    table = benchmark.summary_table(df, expected=24).set_index("method")
    assert table.loc["dncnn", "σ=25 ours"].endswith("(10/24)")  # a partial mean says so


def test_per_image_sorts_by_spread(tmp_path):
    write(tmp_path, "kodak24", rows())
    df, _ = benchmark.load(tmp_path, "kodak24")
    table = benchmark.per_image(df, 25)
    assert list(table.columns) == ["image", "dncnn", "ffdnet", "spread"]
    assert table.iloc[0]["image"] == "kodim07.png"  # the image where the methods differ most
    assert table["spread"].is_monotonic_decreasing


def test_chart_has_ours_and_paper(tmp_path):
    write(tmp_path, "kodak24", rows())
    df, _ = benchmark.load(tmp_path, "kodak24")
    traces = {t.name: t for t in benchmark.psnr_chart(df).data}
    assert "dncnn (ours)" in traces and "dncnn (paper)" in traces
    # A method's measured and published lines share its colour; no two methods share one.
    assert traces["dncnn (ours)"].line.color == traces["dncnn (paper)"].line.color
    assert traces["dncnn (paper)"].line.color == benchmark.psnr_chart(None).data[2].line.color  # with or without ours
    assert len({t.line.color for n, t in traces.items() if n.endswith("(paper)")}) == 4


def test_unreadable_csv(tmp_path):
    (tmp_path / "kodak24").mkdir()
    (tmp_path / "kodak24" / "results.csv").write_text("a,b\n1,2\n")
    df, notes = benchmark.load(tmp_path, "kodak24")
    assert df is None and "lacks columns" in notes[0]


def test_means_never_mix_noise_seeds(tmp_path):
    seed0 = rows(images=24)
    seed1 = [[r[0], r[1], r[2], 1, r[4] - 5.0, *r[5:]] for r in seed0]  # a much worse second draw
    write(tmp_path, "kodak24", seed0 + seed1)
    df, _ = benchmark.load(tmp_path, "kodak24")
    assert set(df["seed"]) == {0}
    expected = sum(r[4] for r in seed0 if r[1] == "dncnn" and r[2] == 25) / 24
    assert benchmark.summary_table(df).set_index("method").loc["dncnn", "σ=25 ours"] == pytest.approx(expected, abs=0.01)


def test_kodak24_references_stay_off_other_sets(tmp_path):
    write(tmp_path, "cbsd68", rows(images=68))
    df, _ = benchmark.load(tmp_path, "cbsd68")
    table = benchmark.summary_table(df, "cbsd68", expected=68)
    assert list(table["method"]) == ["dncnn", "ffdnet"]  # no paper-only rows
    assert not [c for c in table.columns if c.endswith(("paper", "published"))]
    names = [t.name for t in benchmark.psnr_chart(df, "cbsd68").data]
    assert names == ["dncnn (ours)", "ffdnet (ours)"]


def test_detail_table_is_the_ratio_of_mean_energies(tmp_path):
    data = rows()  # hf = 90 - sigma, hf_clean = 120 for every row
    data[0] = data[0][:8] + [None, 120.0]  # dncnn, sigma 25: one row from before the measure
    write(tmp_path, "kodak24", data)
    df, _ = benchmark.load(tmp_path, "kodak24")
    table = benchmark.detail_table(df).set_index("method")
    assert list(table.columns) == ["σ=25", "σ=35", "σ=50"]
    assert table.loc["ffdnet", "σ=25"] == pytest.approx(round(65 / 120, 2))
    assert table.loc["ffdnet", "σ=50"] == pytest.approx(round(40 / 120, 2))
    assert pd.isna(table.loc["dncnn", "σ=25"])  # never a mean over part of the set
    assert pd.isna(table.loc["ffdnet", "σ=35"])  # no results at all
    assert benchmark.detail_table(None).empty


def test_tradeoff_chart_places_each_method_by_detail_and_psnr(tmp_path):
    write(tmp_path, "kodak24", rows())
    df, _ = benchmark.load(tmp_path, "kodak24")
    traces = {t.name: t for t in benchmark.tradeoff_chart(df).data}
    assert list(traces) == ["dncnn", "ffdnet"]
    dncnn = df[(df.method == "dncnn")].groupby("sigma")["psnr"].mean()
    assert list(traces["dncnn"].x) == pytest.approx([65 / 120, 40 / 120])  # sigma 25, 50
    assert list(traces["dncnn"].y) == pytest.approx(list(dncnn))
    assert list(traces["dncnn"].text) == ["σ=25", "σ=50"]
    assert "dncnn σ=%{text}" not in traces["dncnn"].hovertemplate  # the text already says "σ="
    # no text beside the points (it piled up): the sigma is the marker's shape, said once
    assert "text" not in traces["dncnn"].mode
    assert list(traces["dncnn"].marker.symbol) == ["circle", "square"]
    assert list(traces["ffdnet"].marker.symbol) == ["circle", "square"]
    [key] = benchmark.tradeoff_chart(df).layout.annotations[:1]
    assert "● σ=25" in key.text and "■ σ=50" in key.text
    old = df.drop(columns=["hf", "hf_clean"])  # results from before the measure: nothing to place
    assert benchmark.tradeoff_chart(old).data == () and benchmark.tradeoff_chart(None).data == ()


def test_a_file_with_only_the_essential_columns_still_shows(tmp_path):
    (tmp_path / "kodak24").mkdir()
    (tmp_path / "kodak24" / "results.csv").write_text(
        "image,method,sigma,psnr\nkodim01.png,dncnn,25,30.0\nkodim02.png,dncnn,25,31.0\n")
    df, _ = benchmark.load(tmp_path, "kodak24")
    assert benchmark.summary_table(df).set_index("method").loc["dncnn", "σ=25 ours"] == 30.5
    assert pd.isna(benchmark.detail_table(df).set_index("method").loc["dncnn", "σ=25"])
    assert benchmark.tradeoff_chart(df).data == ()


def test_paired_table_names_the_reference_and_counts_wins(tmp_path):
    write(tmp_path, "kodak24", rows())
    df, _ = benchmark.load(tmp_path, "kodak24")
    table = benchmark.paired_table(df)
    assert list(table.columns) == ["σ", "method", "against", "ΔPSNR (dB)", "95% interval", "better on"]
    first = table.iloc[0]
    assert (first["σ"], first["method"], first["against"]) == ("25", "dncnn", "ffdnet")
    assert first["better on"] == "0 of 24" and first["ΔPSNR (dB)"] < 0
    low, high = (float(v) for v in first["95% interval"].split(" to "))
    assert low < first["ΔPSNR (dB)"] < high < 0
    assert benchmark.paired_table(None).empty


def test_the_tab_names_methods_as_the_compare_tab_does(tmp_path):
    write(tmp_path, "kodak24", rows())
    df, _ = benchmark.load(tmp_path, "kodak24")
    table = benchmark.labelled_table(benchmark.summary_table(df))
    assert list(table["method"][:5]) == ["IDResNet", "IDGAN", "DnCNN", "FFDNet", "CBM3D"]
    assert list(benchmark.labelled_table(benchmark.per_image(df, 25)).columns) == ["image", "DnCNN", "FFDNet",
                                                                                   "spread"]
    paired = benchmark.labelled_table(benchmark.paired_table(df))
    assert set(paired["method"]) | set(paired["against"]) <= {"DnCNN", "FFDNet"}
    names = [t.name for t in benchmark.labelled_figure(benchmark.psnr_chart(df)).data]
    assert "DnCNN (ours)" in names and "IDResNet (paper)" in names
    [trace, _] = benchmark.labelled_figure(benchmark.tradeoff_chart(df)).data
    assert trace.name == "DnCNN" and trace.hovertemplate.startswith("DnCNN %{text}")


def test_the_plane_chart_draws_the_dial_and_the_baselines_or_says_how_to_make_it(tmp_path):
    import pandas as pd

    from app import benchmark

    missing = benchmark.plane_chart(tmp_path).layout.annotations[0].text
    assert "scripts/perception_distortion.py" in missing and "Kodak24, whole images" in missing
    rows = []
    for sigma in (25.0, 50.0):
        for family, methods in (("network blend (dial)", ["idresnet", "idgan@0.5", "idgan"]),
                                ("pixel blend", ["pixel@0.5"]), ("baseline", ["dncnn", "cbm3d"])):
            for i, m in enumerate(methods):
                alpha = {"idresnet": 0.0, "idgan": 1.0}.get(m, 0.5 if "@" in m else float("nan"))
                rows.append({"sigma": sigma, "method": m, "psnr": 30 - i, "lpips": 0.1 + i / 100, "family": family,
                             "alpha": alpha})
    whole, centres = benchmark.PLANES
    (tmp_path / benchmark.PLANES[centres]).mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / benchmark.PLANES[centres] / "plane.csv", index=False)
    assert benchmark.plane_chart(tmp_path, whole).layout.annotations  # that one is still missing
    figure = benchmark.plane_chart(tmp_path, centres)
    assert "256x256 centres" in figure.layout.title.text
    names = {t.name for t in figure.data}
    assert names == {"network blend (dial)", "pixel blend", "baselines"}
    dial = [t for t in figure.data if t.name == "network blend (dial)"]
    assert len(dial) == 2 and list(dial[0].x) == pytest.approx([0.1, 0.11, 0.12])  # one panel per sigma, in A order
    assert [t for t in figure.data if t.name == "baselines"][0].text.tolist() == ["dncnn", "cbm3d"]
