"""Report and compare on the result folder of a chunked run (chunked.nc instead of stocks.nc)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from uncertainty import cli
from uncertainty.agreement import Reference, chunked_quantity

ROOT = Path(__file__).resolve().parents[1]
METALS = "Fe,PGM,Au"
#: Three chunks of 1,024 draws: the first one fixes the histogram bins.
RUN_ARGUMENTS = ["--metals", METALS, "--draws", "3072", "--seed", "1", "--no-progress"]

#: References compared with every draw: NIMS states no year, so the run's reference year 2005 is used.
DRAW_ROWS = ["nims2008_Fe", "nims2008_PGM", "nims2008_Au"]
#: Iron stocks at other years (2003 as a calendar year, the others as fiscal years) inside the grid 1900-2019.
HISTOGRAM_ROWS = ["nims2008_Fe_2003", "tetsugen_fy2003", "tetsugen_fy2012", "tetsugen_fy2013", "tetsugen_fy2017"]
#: PGM net imports inside the grid: they need every draw's flows.
NET_IMPORT_ROWS = [f"jm_ptpd_{year}" for year in (1999, 2000)] + [
    f"jm_pt_{year}" for year in (1989, 2001, 2002, 2003, 2004, 2005)
] + [f"wpic_pt_{year}" for year in range(2014, 2020)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A chunked run and a run held in memory of the shipped data, same metals, draws and seed."""
    root = tmp_path_factory.mktemp("chunked_results")
    chunked, in_memory = root / "chunked", root / "in_memory"
    assert cli.main(["run", *RUN_ARGUMENTS, "--chunk", "1024", "--out", str(chunked)]) == 0
    assert cli.main(["run", *RUN_ARGUMENTS, "--out", str(in_memory)]) == 0
    return chunked, in_memory


@pytest.fixture(scope="module")
def comparisons(runs, tmp_path_factory):
    """agreement/ folders of both runs, written by 'urbanmine compare' without --update."""
    chunked, in_memory = runs
    root = tmp_path_factory.mktemp("comparisons")
    assert cli.main(["compare", str(chunked), "--out", str(root / "chunked")]) == 0
    assert cli.main(["compare", str(in_memory), "--out", str(root / "in_memory")]) == 0
    return root / "chunked", root / "in_memory"


def folder_listing(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ---------------------------------------------------------------------------
# urbanmine report


def test_report_rewrites_identical_tables(runs, tmp_path, capsys):
    chunked, _ = runs
    folder = tmp_path / "result"
    shutil.copytree(chunked, folder)
    original = {name: (folder / name).read_bytes() for name in ("summary.csv", "comparison.csv", "chunked.nc")}
    # Remove what report must write again, so that a skipped file cannot pass.
    (folder / "summary.csv").unlink()
    (folder / "comparison.csv").unlink()
    shutil.rmtree(folder / "figures")

    assert cli.main(["report", str(folder)]) == 0
    assert f"rewrote tables and figures in {folder}" in capsys.readouterr().out
    for name, content in original.items():
        assert (folder / name).read_bytes() == content, name
    for metal in METALS.split(","):
        for suffix in (".svg", ".png"):
            assert (folder / "figures" / f"stock_{metal}{suffix}").is_file(), metal + suffix
    assert not (folder / "stocks.nc").exists()
    assert not list(tmp_path.glob(".result.*")), "a staging folder was left behind"


def test_report_unreadable_file_exits_2(tmp_path, capsys):
    folder = tmp_path / "result"
    folder.mkdir()
    (folder / "chunked.nc").write_text("not a netCDF file")
    assert cli.main(["report", str(folder)]) == 2
    error = capsys.readouterr().err
    assert f"{folder / 'chunked.nc'}: file: expected a netCDF file written by 'urbanmine run --chunk'" in error
    assert sorted(path.name for path in folder.iterdir()) == ["chunked.nc"]


@pytest.mark.parametrize("command", ["report", "compare"])
def test_truncated_stocks_file_exits_2(runs, tmp_path, capsys, command):
    _, in_memory = runs
    folder = tmp_path / "result"
    folder.mkdir()
    whole = (in_memory / "stocks.nc").read_bytes()
    (folder / "stocks.nc").write_bytes(whole[: len(whole) - 4096])
    assert cli.main([command, str(folder)]) == 2
    error = capsys.readouterr().err
    assert f"{folder / 'stocks.nc'}: file: expected a netCDF file written by 'urbanmine run'" in error
    assert sorted(path.name for path in folder.iterdir()) == ["stocks.nc"]


def test_report_missing_variable_exits_2(runs, tmp_path, capsys):
    chunked, _ = runs
    folder = tmp_path / "result"
    folder.mkdir()
    with xr.open_dataset(chunked / "chunked.nc") as dataset:
        dataset.load().drop_vars("stock_quantile").to_netcdf(folder / "chunked.nc")
    assert cli.main(["report", str(folder)]) == 2
    error = capsys.readouterr().err
    expected = "variable 'stock_quantile': expected dimensions ('metal', 'year', 'quantile'), found no such variable"
    assert f"{folder / 'chunked.nc'}: {expected}" in error
    assert sorted(path.name for path in folder.iterdir()) == ["chunked.nc"]


def test_report_folder_without_result_exits_2(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert f"{tmp_path} contains no result: stocks.nc not found, nor chunked.nc of a chunked run" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# urbanmine compare


def test_compare_writes_chunked_tables(comparisons):
    chunked, _ = comparisons
    for name in ("agreement.csv", "verdict.csv", "reserves.csv", "figures/forest.svg", "figures/forest.png"):
        assert (chunked / name).is_file(), name
    # A net-import figure draws every draw's increments, which a chunked run does not keep.
    assert not list((chunked / "figures").glob("net_import_*"))
    assert not (chunked / "update.csv").exists()


def test_quantiles_from_per_row(comparisons):
    chunked, _ = comparisons
    table = pd.read_csv(chunked / "agreement.csv", keep_default_na=False).set_index("id")
    assert list(table.columns).index("quantiles_from") == list(table.columns).index("status") + 1
    for ident in DRAW_ROWS:
        assert table.loc[ident, "quantiles_from"] == "draws", ident
    for ident in HISTOGRAM_ROWS:
        assert table.loc[ident, "quantiles_from"] == "histogram", ident
        assert table.loc[ident, "status"].startswith("compared"), ident
    for ident in NET_IMPORT_ROWS:
        assert table.loc[ident, "quantiles_from"] == "", ident
        assert table.loc[ident, "status"].startswith("not compared: a net import needs every draw's flows"), ident
        assert "without --chunk" in table.loc[ident, "status"], ident
        assert table.loc[ident, "median"] == "", ident
        assert table.loc[ident, "eti95_lower"] == "", ident
        assert table.loc[ident, "inside"] == "", ident
    assert table.loc["tetsugen_fy2022", "status"] == "year outside run (1900-2019)"
    assert table.loc["tetsugen_fy2022", "quantiles_from"] == ""
    assert table.loc["nims2008_Cu", "status"] == "metal not in run"
    assert "interpolated" in table.loc["tetsugen_fy2012", "status"]
    assert table.loc["nims2008_Fe_2003", "status"] == "compared"


def test_reference_year_rows_match_in_memory(comparisons):
    chunked, in_memory = comparisons
    # Read as text, so that equal means the same digits in the file.
    exact = pd.read_csv(in_memory / "agreement.csv", dtype=str, keep_default_na=False).set_index("id")
    approximate = pd.read_csv(chunked / "agreement.csv", dtype=str, keep_default_na=False).set_index("id")
    assert list(approximate.columns.drop("quantiles_from")) == list(exact.columns)
    for ident in DRAW_ROWS:
        for column in exact.columns:
            assert approximate.loc[ident, column] == exact.loc[ident, column], (ident, column)
    for name in ("verdict.csv", "reserves.csv"):
        assert (chunked / name).read_bytes() == (in_memory / name).read_bytes(), name


def test_histogram_rows_near_exact_quantiles(comparisons):
    # The histograms have 2,048 bins fixed by the first 1,024 draws. A
    # fiscal-year stock is read as 0.75 x the year-end quantile plus 0.25 x
    # the next one. Each bound lies within 1 % of the 95 % interval's width
    # of the quantile computed from every draw.
    chunked, in_memory = comparisons
    exact = pd.read_csv(in_memory / "agreement.csv").set_index("id")
    approximate = pd.read_csv(chunked / "agreement.csv").set_index("id")
    for ident in HISTOGRAM_ROWS:
        width = exact.loc[ident, "eti95_upper"] - exact.loc[ident, "eti95_lower"]
        for column in ("median", "eti95_lower", "eti95_upper"):
            error = abs(approximate.loc[ident, column] - exact.loc[ident, column]) / width
            assert error < 0.01, (ident, column, error)
        assert approximate.loc[ident, "inside"] == exact.loc[ident, "inside"], ident
        assert approximate.loc[ident, "distance_half_widths"] == pytest.approx(
            exact.loc[ident, "distance_half_widths"], abs=0.02
        ), ident
    # The share of negative draws is kept exactly per calendar year, not for a fiscal year.
    calendar_year = "nims2008_Fe_2003"
    assert approximate.loc[calendar_year, "negative_draw_fraction"] == exact.loc[calendar_year, "negative_draw_fraction"]
    assert math.isnan(approximate.loc["tetsugen_fy2012", "negative_draw_fraction"])


def test_update_matches_in_memory(runs, tmp_path):
    chunked, in_memory = runs
    outputs = {}
    for name, run in (("chunked", chunked), ("in_memory", in_memory)):
        outputs[name] = tmp_path / name
        assert cli.main(["compare", str(run), "--update", "nims2008_Fe", "--out", str(outputs[name])]) == 0
    assert (outputs["chunked"] / "update.csv").read_bytes() == (outputs["in_memory"] / "update.csv").read_bytes()
    assert (outputs["chunked"] / "verdict.csv").read_bytes() == (outputs["in_memory"] / "verdict.csv").read_bytes()
    exact = pd.read_csv(outputs["in_memory"] / "agreement.csv", dtype=str, keep_default_na=False).set_index("id")
    approximate = pd.read_csv(outputs["chunked"] / "agreement.csv", dtype=str, keep_default_na=False).set_index("id")
    for column in ("role", "posterior_median", "posterior_eti95_lower", "posterior_eti95_upper", "posterior_inside"):
        assert approximate.loc["nims2008_Fe", column] == exact.loc["nims2008_Fe", column], column
    # The weights belong to the draws of 2005, which a chunked run has for no other year.
    assert approximate.loc["tetsugen_fy2012", "posterior_median"] == ""
    assert exact.loc["tetsugen_fy2012", "posterior_median"] != ""


@pytest.mark.parametrize(
    ("ident", "reason"),
    [
        ("tetsugen_fy2012", "the stock at the end of fiscal year 2012"),
        ("nims2008_Fe_2003", "the stock at the end of calendar year 2003"),
        ("jm_pt_2001", "a net import needs every draw's flows of 2001"),
    ],
)
def test_update_other_year_exits_2(runs, tmp_path, capsys, ident, reason):
    chunked, _ = runs
    before = folder_listing(chunked)
    out = tmp_path / "agreement"
    assert cli.main(["compare", str(chunked), "--update", f"nims2008_Fe,{ident}", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"'{ident}': {reason}" in error
    assert "a chunked run keeps per-draw stocks at the end of its reference year 2005 only" in error
    assert "run 'urbanmine run' without --chunk" in error
    assert "'nims2008_Fe'" not in error
    assert not out.exists()
    assert not list(tmp_path.glob(".agreement.*"))
    assert folder_listing(chunked) == before


def test_update_error_leaves_run_unchanged(runs, tmp_path):
    chunked, _ = runs
    folder = tmp_path / "result"
    shutil.copytree(chunked, folder)
    assert cli.main(["compare", str(folder), "--update", "tetsugen_fy2012"]) == 2
    assert not (folder / "agreement").exists()
    assert not list(folder.glob(".agreement.*"))


def test_fiscal_year_at_grid_end_extrapolates(runs):
    chunked, _ = runs
    with xr.open_dataset(chunked / "chunked.nc") as opened:
        dataset = opened.load()
    reference = Reference(
        id="fy_end", metal="Fe", quantity="stock", year=2019, period="FY", tonnes=1e9, basis="test",
        conversion_text="1", conversion=None, factor=1.0, error_sd_log=0.1, source="test", citation="", note="",
    )
    quantity = chunked_quantity(dataset, reference)
    assert quantity.draws is None
    assert quantity.status.startswith("compared; the quarter past the grid's last year is extrapolated")
    # Stock at the end of 2019 plus a quarter of 2019's increment: 1.25 x 2019 - 0.25 x 2018.
    quantile = dataset["stock_quantile"].sel(metal="Fe")
    expected = 1.25 * quantile.sel(year=2019) - 0.25 * quantile.sel(year=2018)
    median, lower, upper = quantity.quantiles
    assert median == pytest.approx(float(expected.sel(quantile=0.5)), rel=1e-12)
    assert lower == pytest.approx(float(expected.sel(quantile=0.025)), rel=1e-12)
    assert upper == pytest.approx(float(expected.sel(quantile=0.975)), rel=1e-12)


def test_histogram_overflow_is_not_compared(runs):
    chunked, _ = runs
    with xr.open_dataset(chunked / "chunked.nc") as opened:
        dataset = opened.load()
    dataset["stock_quantile"].loc[{"metal": "Fe", "year": 2003, "quantile": 0.975}] = np.nan
    reference = Reference(
        id="overflow", metal="Fe", quantity="stock", year=2003, period="CY", tonnes=1e9, basis="test",
        conversion_text="1", conversion=None, factor=1.0, error_sd_log=0.1, source="test", citation="", note="",
    )
    quantity = chunked_quantity(dataset, reference)
    assert quantity.quantiles is None
    assert quantity.draws is None
    assert quantity.status.startswith("not compared: a quantile fell outside the histogram range")


def test_chunked_run_records_boundary_and_keys(runs):
    chunked, _ = runs
    with xr.open_dataset(chunked / "chunked.nc") as dataset:
        assert dataset.attrs["boundary_key"] == "jp"
        assert list(dataset["comparison_key"].values) == ["Fe", "PGM", "Au"]


def test_us_chunked_run_has_no_nims_value(tmp_path):
    out = tmp_path / "us"
    status = cli.main(
        ["run", "--boundary", "us", "--models", str(ROOT / "models" / "us"), "--metals", "Cu",
         "--draws", "1024", "--chunk", "1024", "--out", str(out), "--no-progress"]
    )
    assert status == 0
    comparison = pd.read_csv(out / "comparison.csv")
    assert comparison["metal"].tolist() == ["Cu"]
    assert comparison["nims_stock"].isna().all()


def test_summary_reference_year_rows_exact(runs):
    chunked, in_memory = runs
    small = pd.read_csv(chunked / "summary.csv")
    whole = pd.read_csv(in_memory / "summary.csv")
    # Both start with the same columns, up to the share of negative draws.
    shared = list(whole.columns[: list(whole.columns).index("negative_draw_fraction") + 1])
    assert list(small.columns[: len(shared)]) == shared
    year = 2005
    small = small[small["year"] == year].set_index("metal")
    whole = whole[whole["year"] == year].set_index("metal")
    assert (small["quantiles_from"] == "draws").all()
    for column in ("median", "eti50_lower", "eti95_upper", "hdi95_lower", "hdi95_upper"):
        np.testing.assert_allclose(small[column], whole.loc[small.index, column], rtol=1e-12)


def test_all_zero_years_exact_quantiles(tmp_path):
    # Indium's world production starts in 1972, so every draw's stock is 0 before.
    out = tmp_path / "indium"
    arguments = ["run", "--metals", "In", "--draws", "2048", "--chunk", "1000", "--out", str(out), "--no-progress"]
    assert cli.main(arguments) == 0
    summary = pd.read_csv(out / "summary.csv")
    early = summary[summary["year"] < 1972]
    for column in ("median", "eti50_lower", "eti95_lower", "eti95_upper"):
        assert (early[column] == 0.0).all(), column


def test_comparison_keys_match_in_memory(runs):
    chunked, in_memory = runs
    small = pd.read_csv(chunked / "comparison.csv", keep_default_na=False).set_index("metal")
    whole = pd.read_csv(in_memory / "comparison.csv", keep_default_na=False).set_index("metal")
    for column in ("nims_key", "flows_not_counted"):
        assert small[column].to_dict() == whole.loc[small.index, column].to_dict(), column
