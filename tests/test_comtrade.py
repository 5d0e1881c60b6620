"""Import of UN Comtrade downloads: world totals, weights, skip reasons and the CLI.

The fixtures are rows cut unchanged from real Comtrade API downloads
(reporters USA 842, China 156, Indonesia 360, Australia 36). Tests that need
a case the real rows lack (a breakdown of a world total, an ore code, a
Japanese reporter) copy fixture rows into a temporary file and change the
named columns there.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from uncertainty import comtrade
from uncertainty.cli import main
from uncertainty.data import load_data
from uncertainty.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
COPPER = FIXTURES / "comtrade_copper.csv"
OTHER = FIXTURES / "comtrade_other.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def fixture_line(path: Path, line: int) -> dict[str, str]:
    """Return the row on ``line`` of a fixture (the header is line 1)."""
    return dict(read_rows(path)[line - 2])


def observation(result: comtrade.ImportResult, region: str, metal: str, year: int, series: str):
    rows = result.observations.query(
        "region == @region and metal == @metal and year == @year and series == @series"
    )
    assert len(rows) == 1, rows
    return rows.iloc[0]


def skipped_lines(result: comtrade.ImportResult, reason: str) -> list[tuple[str, int]]:
    return sorted((Path(skip.file).name, skip.line) for skip in result.skipped if skip.reason == reason)


@pytest.fixture(scope="module")
def imported() -> comtrade.ImportResult:
    return comtrade.import_files([COPPER, OTHER])


def test_hs_table_loads():
    table = comtrade.load_hs_table()
    assert table["7403"].metal == "Cu"
    assert table["7403"].series_for("M") == "refined_import"
    assert table["7404"].series_for("X") == "scrap_export"
    assert table["2603"].basis == "gross_weight"
    assert table["2603"].grade.support() == pytest.approx((0.20, 0.40))


def test_lookup_falls_back_to_heading():
    table = comtrade.load_hs_table()
    assert comtrade.lookup_code(table, "740311").code == "7403"
    assert comtrade.lookup_code(table, "710812").code == "710812"
    assert comtrade.lookup_code(table, "74") is None
    assert comtrade.lookup_code(table, "282200") is None


def test_nickel_world_rows_in_tonnes(imported):
    # Lines 6 and 7 of comtrade_other.csv: USA 2020, HS 7502, netWgt 90457932 and 9255348 kg.
    imports = observation(imported, "USA", "Ni", 2020, "refined_import")
    exports = observation(imported, "USA", "Ni", 2020, "refined_export")
    assert float(imports["value"]) == pytest.approx(90457.932)
    assert float(exports["value"]) == pytest.approx(9255.348)
    assert imports["unit"] == "t"
    assert imports["basis"] == "metal_content"
    assert imports["confidence"] == "primary"
    assert imports["citation"] == "UN Comtrade, HS 7502, reporter USA, flow M"


def test_partner_rows_are_not_added(imported):
    # USA exports 2020: world rows 6270461 kg (7402) + 143277717.599 kg (7403).
    # The partner rows to China (147533 and 1512954 kg) must not be added.
    exports = observation(imported, "USA", "Cu", 2020, "refined_export")
    assert float(exports["value"]) == pytest.approx(149548.178599)
    assert exports["citation"] == "UN Comtrade, HS 7402+7403, reporter USA, flow X"
    partner_lines = skipped_lines(imported, comtrade.PARTNER_ROW)
    assert ("comtrade_copper.csv", 7) in partner_lines
    assert ("comtrade_copper.csv", 15) in partner_lines


def test_zero_netwgt_uses_kg_qty(imported):
    # Line 2 has netWgt 0.0 beside a trade value and qty 282303 kg. Line 9 has 691743218.263 kg.
    imports = observation(imported, "USA", "Cu", 2020, "refined_import")
    assert float(imports["value"]) == pytest.approx(282.303 + 691743.218263)
    assert "qty in kg used for HS 7402" in imports["note"]


def test_empty_netwgt_uses_kg_qty(tmp_path):
    # Line 5: USA 2023 HS 7402 with an empty netWgt and qty 125840.223 kg (estimated).
    # Its 7403 partner in the sum (line 12) has no weight, so only line 5 is kept here.
    path = write_rows(tmp_path / "copper.csv", [fixture_line(COPPER, 5)])
    result = comtrade.import_files([path])
    imports = observation(result, "USA", "Cu", 2023, "refined_import")
    assert float(imports["value"]) == pytest.approx(125.840223)
    assert imports["confidence"] == "secondary"
    assert "qty in kg used" in imports["note"]


def test_qty_in_other_unit_unusable(imported):
    # Line 4: USA 2022 HS 7402, empty netWgt, qtyUnitCode -1.
    unusable = [skip for skip in imported.skipped if skip.reason == comtrade.NO_WEIGHT]
    lines = sorted((Path(skip.file).name, skip.line) for skip in unusable)
    assert ("comtrade_copper.csv", 4) in lines
    detail = next(skip.detail for skip in unusable if skip.line == 4)
    assert "qty unit code '-1'" in detail
    assert imported.observations.query("region == 'USA' and year == 2022").empty


def test_sum_missing_a_code_is_unusable(imported):
    # USA imports 2023 and 2024: 7402 has a weight, 7403 has none, so no partial sum is written.
    assert skipped_lines(imported, comtrade.INCOMPLETE_SUM) == [("comtrade_copper.csv", 5), ("comtrade_copper.csv", 6)]
    assert imported.observations.query("region == 'USA' and year in (2023, 2024)").empty


def test_estimated_weight_is_marked(imported):
    # Line 4 of comtrade_other.csv: China 2020 HS 7502 imports, isNetWgtEstimated True.
    imports = observation(imported, "CHN", "Ni", 2020, "refined_import")
    assert imports["confidence"] == "secondary"
    assert "weight estimated by Comtrade for HS 7502" in imports["note"]
    assert float(imports["value"]) == pytest.approx(131677.845616)


def test_unmapped_codes_are_counted(imported):
    assert imported.codes_not_in_table == {"282200": 1}
    # 7501 (nickel mattes) and 283691 (lithium carbonate) are listed without a series.
    assert skipped_lines(imported, comtrade.NOT_IMPORTED) == [("comtrade_other.csv", 11), ("comtrade_other.csv", 16)]


def test_summary_counts_rows(imported):
    assert imported.rows_read == 30
    assert imported.rows_used == 10
    assert imported.rows_used + len(imported.skipped) == imported.rows_read
    summary = comtrade.format_summary(imported)
    assert "read 30 rows" in summary
    assert "comtrade_copper.csv line 4: no usable weight" in summary


def world_breakdown(tmp_path, with_total: bool) -> Path:
    """Turn the Indonesian partner rows of lines 8-10 (motCode 9100, 0, 1000) into world rows."""
    rows = [fixture_line(OTHER, line) for line in (8, 9, 10)]
    if not with_total:
        rows = [row for row in rows if row["motCode"] != "0"]
    for row in rows:
        row["partnerCode"] = "0"
    return write_rows(tmp_path / "breakdown.csv", rows)


def test_transport_breakdown_gives_one_row(tmp_path):
    result = comtrade.import_files([world_breakdown(tmp_path, with_total=True)])
    imports = observation(result, "IDN", "Ni", 2021, "refined_import")
    assert float(imports["value"]) == pytest.approx(0.039)
    assert len(result.observations) == 1
    assert len(skipped_lines(result, comtrade.BREAKDOWN_ROW)) == 2


def test_breakdown_without_total_is_unusable(tmp_path):
    result = comtrade.import_files([world_breakdown(tmp_path, with_total=False)])
    assert result.observations.empty
    assert len(skipped_lines(result, comtrade.BREAKDOWN_WITHOUT_TOTAL)) == 2


def test_repeated_file_is_not_counted_twice(tmp_path):
    copy = tmp_path / "copy.csv"
    copy.write_bytes(OTHER.read_bytes())
    result = comtrade.import_files([OTHER, copy])
    imports = observation(result, "USA", "Ni", 2020, "refined_import")
    assert float(imports["value"]) == pytest.approx(90457.932)
    assert ("copy.csv", 6) in skipped_lines(result, comtrade.REPEATED_FLOW)


def test_heading_beside_subheading_is_skipped(tmp_path):
    heading = fixture_line(OTHER, 6)
    subheading = dict(heading, cmdCode="750210", netWgt="90000000.0")
    path = write_rows(tmp_path / "nickel.csv", [heading, subheading])
    result = comtrade.import_files([path])
    imports = observation(result, "USA", "Ni", 2020, "refined_import")
    assert float(imports["value"]) == pytest.approx(90000.0)
    assert skipped_lines(result, comtrade.HEADING_WITH_SUBHEADINGS) == [("nickel.csv", 2)]


def test_ore_keeps_gross_weight(tmp_path):
    ore = dict(fixture_line(OTHER, 6), cmdCode="2603")
    path = write_rows(tmp_path / "ore.csv", [ore])
    result = comtrade.import_files([path])
    imports = observation(result, "USA", "Cu", 2020, "ore_import")
    assert imports["basis"] == "gross_weight"
    assert float(imports["value"]) == pytest.approx(90457.932)
    comtrade.write_import(result, tmp_path / "out")
    grades = read_rows(tmp_path / "out" / "usa" / "ore_grades_comtrade.csv")
    assert [row["hs_code"] for row in grades] == ["2603"]
    assert grades[0]["family"] == "uniform"
    assert 'family = "uniform", loc = 0.2, scale = 0.2' in grades[0]["model_entry"]


def as_japan(tmp_path, source: Path) -> Path:
    """Copy the US rows of a fixture with the reporter changed to Japan (392)."""
    rows = [row for row in read_rows(source) if row["reporterCode"] == "842"]
    for row in rows:
        row["reporterCode"] = "392"
    return write_rows(tmp_path / f"japan_{source.name}", rows)


def test_cli_output_loads_with_shipped_data(tmp_path, capsys):
    out = tmp_path / "comtrade"
    files = [as_japan(tmp_path, COPPER), as_japan(tmp_path, OTHER)]
    status = main(["import", "comtrade", *map(str, files), "--out", str(out), "--boundary", "jp"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "used 6 rows, written as 4 observation rows" in printed
    assert (out / "jp" / "observations_comtrade.csv").is_file()
    assert (out / "sources_comtrade.csv").is_file()

    base = load_data(ROOT / "data", "jp")
    combined = load_data([ROOT / "data", out], "jp")
    added = combined.observations[combined.observations["file"].str.endswith("observations_comtrade.csv")]
    assert len(combined.observations) == len(base.observations) + 4
    assert set(added["region"]) == {"JPN"}
    nickel = added.query("metal == 'Ni' and series == 'refined_import'")
    assert nickel["tonnes"].tolist() == pytest.approx([90457.932])


def test_cli_default_boundary_is_reporter(tmp_path):
    out = tmp_path / "comtrade"
    assert main(["import", "comtrade", str(COPPER), str(OTHER), "--out", str(out)]) == 0
    assert (out / "usa" / "observations_comtrade.csv").is_file()
    assert (out / "chn" / "observations_comtrade.csv").is_file()
    assert not list(out.rglob("*.tmp"))


def test_second_import_keeps_earlier_sources(tmp_path):
    out = tmp_path / "comtrade"
    assert main(["import", "comtrade", str(COPPER), "--out", str(out)]) == 0
    assert main(["import", "comtrade", str(OTHER), "--out", str(out)]) == 0
    sources = [row["source"] for row in read_rows(out / "sources_comtrade.csv")]
    assert sources == [comtrade.source_id(COPPER), comtrade.source_id(OTHER)]


def test_cli_two_reporters_exit_2(tmp_path, capsys):
    status = main(["import", "comtrade", str(COPPER), "--out", str(tmp_path / "out"), "--boundary", "jp"])
    assert status == 2
    assert "--boundary" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_missing_column_exits_2(tmp_path, capsys):
    rows = read_rows(COPPER)
    for row in rows:
        del row["netWgt"]
    path = write_rows(tmp_path / "no_weight.csv", rows)
    status = main(["import", "comtrade", str(path), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 2
    assert "no_weight.csv" in error
    assert "'netWgt'" in error


def test_cli_missing_file_exits_2(tmp_path, capsys):
    status = main(["import", "comtrade", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "out")])
    assert status == 2
    assert "absent.csv" in capsys.readouterr().err


def test_invalid_hs_table_is_rejected(tmp_path):
    table = tmp_path / "hs.csv"
    table.write_text(
        "hs_code,description,metal,import_series,export_series,basis,grade_family,grade_parameters,grade_rationale,note\n"
        "7403,refined copper,Cu,refined_import,refined_export,metal_content,,,,\n"
        "2603,copper ore,Cu,ore_import,ore_export,gross_weight,,,,\n"
        "74,copper,Xx,refined_import,,metal_content,,,,\n"
    )
    with pytest.raises(InputError) as caught:
        comtrade.load_hs_table(table)
    locations = [problem.location for problem in caught.value.problems]
    assert "row 3" in locations
    assert "row 4" in locations
