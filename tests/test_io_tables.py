"""Tests of the export ratios computed from input-output tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uncertainty import io_tables

# Two-sector table with a balanced row identity X = Z 1 + f + e - m:
#   row 1: 100 = (10 + 20) + 20 + 75 - 25
#   row 2: 200 = (30 + 5) + 50 + 132 - 17
INTERMEDIATE = np.array([[10.0, 20.0], [30.0, 5.0]])
OUTPUT = np.array([100.0, 200.0])
FINAL = np.array([20.0, 50.0])
EXPORTS = np.array([75.0, 132.0])
IMPORTS = np.array([25.0, 17.0])

# By hand: A = [[0.1, 0.1], [0.3, 0.025]], det(I - A) = 0.8475,
# (I - A)^-1 = [[0.975, 0.1], [0.3, 0.9]] / 0.8475.
PLAIN_INDUCED = np.array([0.975 * 75 + 0.1 * 132, 0.3 * 75 + 0.9 * 132]) / 0.8475
# M = diag(25 / 50, 17 / 85) = diag(0.5, 0.2), (I - M) A = [[0.05, 0.05], [0.24, 0.02]],
# det = 0.95 * 0.98 - 0.05 * 0.24 = 0.919, inverse = [[0.98, 0.05], [0.24, 0.95]] / 0.919.
DOMESTIC_INDUCED = np.array([0.98 * 75 + 0.05 * 132, 0.24 * 75 + 0.95 * 132]) / 0.919

# Hand arithmetic is exact to float precision, so the tolerance only covers rounding.
RTOL = 1e-12
ATOL = 1e-12

PUBLISHED_CODES = [
    "221101", "207909", "2623021", "2721011", "2722011", "2722021", "2722099", "2811011",
    "2812011", "289903", "2899021", "289", "301", "321", "3341021", "3359021", "3359099",
    "340", "351", "36", "37", "3711011", "39",
]


def write_small_table(folder: Path, table: str = "jp2005_13") -> None:
    """Write the two-sector example in the CSV layout of data/jp/io/ under a valid table name."""
    sectors = pd.DataFrame({
        "year": 2005,
        "sector": ["01", "02"],
        "sector_name": ["first", "second"],
        "output": OUTPUT,
        "exports": EXPORTS,
        "imports": IMPORTS,
        "domestic_final_demand": FINAL,
        "intermediate_sales": INTERMEDIATE.sum(axis=1),
        "balance_residual": 0.0,
    })
    sectors.to_csv(folder / f"{table}_sectors.csv", index=False)
    matrix = pd.DataFrame({
        "year": 2005,
        "row": ["01", "01", "02", "02"],
        "col": ["01", "02", "01", "02"],
        "value": INTERMEDIATE.ravel(),
    })
    matrix.to_csv(folder / f"{table}_intermediate.csv", index=False)


def test_coefficients_small_example():
    expected = np.array([[0.1, 0.1], [0.3, 0.025]])
    np.testing.assert_allclose(io_tables.input_coefficients(INTERMEDIATE, OUTPUT), expected, rtol=RTOL, atol=ATOL)


def test_coefficients_zero_output_column():
    coefficients = io_tables.input_coefficients(np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([10.0, 0.0]))
    np.testing.assert_array_equal(coefficients[:, 1], [0.0, 0.0])


def test_import_shares_small_example():
    shares = io_tables.import_shares(INTERMEDIATE, FINAL, IMPORTS)
    np.testing.assert_allclose(shares, [0.5, 0.2], rtol=RTOL, atol=ATOL)


def test_import_shares_undefined_demand():
    with pytest.raises(ValueError, match="import share undefined"):
        io_tables.import_shares(np.zeros((2, 2)), np.array([0.0, 1.0]), np.array([3.0, 0.0]))


def test_plain_inverse_by_hand():
    coefficients = io_tables.input_coefficients(INTERMEDIATE, OUTPUT)
    induced = io_tables.induced_output(coefficients, EXPORTS)
    np.testing.assert_allclose(induced, PLAIN_INDUCED, rtol=RTOL, atol=ATOL)


def test_domestic_inverse_by_hand():
    coefficients = io_tables.input_coefficients(INTERMEDIATE, OUTPUT)
    induced = io_tables.induced_output(coefficients, EXPORTS, np.array([0.5, 0.2]))
    np.testing.assert_allclose(induced, DOMESTIC_INDUCED, rtol=RTOL, atol=ATOL)


def test_export_ratios_by_hand():
    ratios = io_tables.export_ratios(INTERMEDIATE, OUTPUT, EXPORTS, FINAL, IMPORTS)
    np.testing.assert_allclose(ratios["direct"], [0.75, 0.66], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ratios["induced_plain"], PLAIN_INDUCED / OUTPUT, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ratios["induced_domestic"], DOMESTIC_INDUCED / OUTPUT, rtol=RTOL, atol=ATOL)


def test_round_trip_small_example():
    coefficients = io_tables.input_coefficients(INTERMEDIATE, OUTPUT)
    total = io_tables.induced_output(coefficients, FINAL + EXPORTS - IMPORTS)
    np.testing.assert_allclose(total, OUTPUT, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("inverse", io_tables.INVERSES)
def test_round_trip_jp2005_188(inverse):
    # Plain form: X = (I - A)^-1 (f + e - m). Domestic form: X = (I - (I - M) A)^-1 ((I - M) f + e).
    # The CSV keeps the source's three decimals, so the identity holds to float precision;
    # measured max error 2.2e-11 billion yen. Tolerance: 1e-6 billion yen (1,000 yen).
    table = io_tables.load_table("jp2005_188").isel(year=0)
    intermediate = table["intermediate"].values
    output = table["output"].values
    final = table["domestic_final_demand"].values
    exports = table["exports"].values
    imports = table["imports"].values
    coefficients = io_tables.input_coefficients(intermediate, output)
    if inverse == "plain":
        total = io_tables.induced_output(coefficients, final + exports - imports)
    else:
        shares = io_tables.import_shares(intermediate, final, imports)
        total = io_tables.induced_output(coefficients, (1 - shares) * final + exports, shares)
    assert table.sizes["sector"] == 188
    np.testing.assert_allclose(total, output, rtol=0, atol=1e-6)


def test_round_trip_wiod_2000():
    # WIOD entries are whole millions of USD with their sum short of the reported
    # output by up to 83 million USD per industry, so the tolerance is 1 % of output.
    table = io_tables.load_table("wiod2013_jpn").sel(year=2000)
    output = table["output"].values
    coefficients = io_tables.input_coefficients(table["intermediate"].values, output)
    demand = table["domestic_final_demand"].values + table["exports"].values - table["imports"].values
    total = io_tables.induced_output(coefficients, demand)
    np.testing.assert_allclose(total, output, rtol=0.01, atol=1.0)


def test_wiod_2000_total_output():
    output = io_tables.load_table("wiod2013_jpn").sel(year=2000)["output"].sum()
    assert float(output) == pytest.approx(8.69e6, rel=0.001)


def test_plain_ratio_above_one_warns(tmp_path):
    write_small_table(tmp_path)
    with pytest.warns(RuntimeWarning, match="induced_ratio above 1"):
        ratios = io_tables.export_ratio_dataset("jp2005_13", data_dir=tmp_path)
    plain = ratios["induced_ratio"].sel(inverse="plain", year=2005)
    assert float(plain.sel(sector="01")) == pytest.approx(PLAIN_INDUCED[0] / 100, rel=RTOL)
    assert float(plain.sel(sector="01")) > 1
    assert bool(ratios["induced_ratio_above_one"].sel(sector="01", year=2005, inverse="plain"))
    assert not bool(ratios["induced_ratio_above_one"].sel(sector="01", year=2005, inverse="domestic"))
    assert not bool(ratios["direct_ratio_above_one"].any())


def test_frame_above_one_warns(tmp_path):
    write_small_table(tmp_path)
    with pytest.warns(RuntimeWarning, match="values are kept"):
        frame = io_tables.export_ratios_frame("jp2005_13", inverse="plain", data_dir=tmp_path)
    first = frame[frame["sector"] == "01"].iloc[0]
    assert first["induced_ratio"] > 1
    assert bool(first["above_one"])


def test_dataset_layout(tmp_path):
    write_small_table(tmp_path)
    with pytest.warns(RuntimeWarning):
        ratios = io_tables.export_ratio_dataset("jp2005_13", data_dir=tmp_path)
    assert ratios["induced_ratio"].dims == ("sector", "year", "inverse")
    assert list(ratios["inverse"].values) == ["plain", "domestic"]
    assert ratios["direct_ratio"].dims == ("sector", "year")
    assert ratios["output"].attrs["units"] == "billion JPY"
    assert ratios["induced_ratio"].attrs["units"] == "1"


def test_frame_without_flagged_ratio(tmp_path):
    write_small_table(tmp_path)
    frame = io_tables.export_ratios_frame("jp2005_13", inverse="domestic", data_dir=tmp_path)
    assert list(frame["inverse"].unique()) == ["domestic"]
    assert not frame["above_one"].any()


def test_frame_columns_real_table():
    # The real 2005 table has plain-form ratios above 1 (imported ores and crude oil).
    with pytest.warns(RuntimeWarning, match="jp2005_188"):
        frame = io_tables.export_ratios_frame()
    for column in ["sector", "sector_name", "year", "inverse", "direct_ratio", "induced_ratio"]:
        assert column in frame.columns
    assert len(frame) == 188 * 2
    assert frame["sector"].iloc[0] == "0111"


def test_zero_output_ratio_is_nan():
    with pytest.warns(RuntimeWarning):
        ratios = io_tables.export_ratio_dataset("wiod2013_jpn")
    assert np.isnan(float(ratios["direct_ratio"].sel(sector="c35", year=2000)))


def test_invalid_table_name():
    with pytest.raises(ValueError, match=r"invalid table 'jp1990'.*jp2005_188"):
        io_tables.export_ratios_frame("jp1990")


def test_invalid_inverse_name():
    with pytest.raises(ValueError, match=r"invalid inverse 'leontief'.*plain, domestic"):
        io_tables.export_ratios_frame("jp2005_188", inverse="leontief")


def test_invalid_table_in_load():
    with pytest.raises(ValueError, match="invalid table"):
        io_tables.load_table("wiod2016")


def test_group_ratio_sums_before_dividing(tmp_path):
    write_small_table(tmp_path)
    with pytest.warns(RuntimeWarning):
        ratios = io_tables.export_ratio_dataset("jp2005_13", data_dir=tmp_path)
    group = io_tables.group_ratios(ratios, ["01", "02"]).sel(year=2005)
    assert float(group["direct_ratio"]) == pytest.approx((75 + 132) / 300, rel=RTOL)
    expected_plain = PLAIN_INDUCED.sum() / 300
    assert float(group["induced_ratio"].sel(inverse="plain")) == pytest.approx(expected_plain, rel=RTOL)


def test_group_ratio_unknown_sector(tmp_path):
    write_small_table(tmp_path)
    with pytest.warns(RuntimeWarning):
        ratios = io_tables.export_ratio_dataset("jp2005_13", data_dir=tmp_path)
    with pytest.raises(ValueError, match="not found"):
        io_tables.group_ratios(ratios, ["03"])


def test_published_comparison_every_sector():
    comparison = io_tables.compare_published_ratios()
    assert sorted(comparison["io_code"]) == sorted(PUBLISHED_CODES)
    assert comparison["io_code"].is_unique
    assert comparison["published_induced"].notna().all()


def test_published_comparison_values():
    comparison = io_tables.compare_published_ratios().set_index("io_code")
    mapped = comparison[comparison["jp2005_188"] != ""]
    assert mapped["jp2005_plain"].notna().all()
    assert mapped["wiod2000_domestic"].notna().all()
    # Induced output includes the exports themselves, so induced >= direct.
    assert (mapped["jp2005_plain"] >= mapped["jp2005_direct"]).all()
    assert (mapped["jp2005_plain"] >= mapped["jp2005_domestic"]).all()
    assert comparison.loc["2721011", "published_induced"] == pytest.approx(0.393)


def test_sector_map_codes_exist():
    sector_map = io_tables.load_sector_map()
    codes_2005 = set(io_tables.load_table("jp2005_188")["sector"].values.tolist())
    codes_2011 = set(io_tables.load_table("jp2011_37")["sector"].values.tolist())
    for entry in sector_map.itertuples(index=False):
        assert set(io_tables.split_codes(entry.jp2005_188)) <= codes_2005, entry.io_code
        assert set(io_tables.split_codes(entry.jp2005_188_as_2011)) <= codes_2005, entry.io_code
        assert set(io_tables.split_codes(entry.jp2011_37)) <= codes_2011, entry.io_code
        assert entry.note, entry.io_code


def test_drift_file_matches_computation():
    shipped = pd.read_csv(io_tables.DEFAULT_DATA_DIR / "export_ratio_drift.csv", dtype={"io_code": str})
    computed = io_tables.export_ratio_drift()
    assert list(shipped["io_code"]) == list(computed["io_code"])
    for column in ["log_ratio_sd_between_years", "log_ratio_step_sd", "log_inverse_difference"]:
        np.testing.assert_allclose(shipped[column], computed[column], rtol=0, atol=1e-4, err_msg=column)
    assert (shipped["n_years"] == 17).all()
    assert (shipped["log_ratio_sd_between_years"] > 0).all()
    assert (shipped["log_inverse_difference"] < 0).all()


def test_log_ratio_statistics_by_hand():
    statistics = io_tables.log_ratio_statistics(np.array([0.0, 0.1, np.nan, 0.4]), reference_index=0)
    assert statistics["n_years"] == 3
    assert statistics["log_ratio_step_sd"] == pytest.approx(np.nan, nan_ok=True)
    assert statistics["log_ratio_sd_between_years"] == pytest.approx(np.std([0.0, 0.1, 0.4], ddof=1))
    assert statistics["log_ratio_rms_from_2000"] == pytest.approx(np.sqrt((0.01 + 0.16) / 2))
