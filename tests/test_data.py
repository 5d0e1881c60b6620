"""Tests of the shipped data folder and of the checks in uncertainty.data."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from uncertainty.data import UNIT_TO_TONNES, load_data, read_table
from uncertainty.errors import InputError

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

NIMS_METALS = [
    "Al", "Sb", "Cr", "Co", "Cu", "Au", "In", "Fe", "Pb", "Li",
    "Mo", "Ni", "PGM", "RE", "Ag", "Ta", "Sn", "W", "V", "Zn",
]  # fmt: skip

HEADER = "region,metal,year,period,series,value,unit,basis,source,citation,confidence,note"
GOOD_ROW = "JPN,Cu,1984,CY,refined_import,463000,t,metal_content,src,p.345,secondary,"


@pytest.fixture(scope="module")
def shipped():
    return load_data(DATA_DIR)


def test_shipped_data_loads(shipped):
    assert len(shipped.world) > 0
    assert len(shipped.observations) > 0
    assert len(shipped.export_ratios) == 23
    assert len(shipped.metal_sectors) > 0
    assert len(shipped.reference) == 20
    assert len(shipped.stock_estimates) > 0
    assert len(shipped.demand_by_use) > 0


def test_every_row_has_known_source(shipped):
    source_ids = set(shipped.sources["source"])
    tables = {
        "world": shipped.world,
        "observations": shipped.observations,
        "export_ratios": shipped.export_ratios,
        "metal_sectors": shipped.metal_sectors,
        "reference": shipped.reference,
        "stock_estimates": shipped.stock_estimates,
        "demand_by_use": shipped.demand_by_use,
    }
    for name, table in tables.items():
        unknown = set(table["source"]) - source_ids
        assert not unknown, f"{name} has sources missing from sources.csv: {unknown}"


@pytest.mark.parametrize("metal", NIMS_METALS)
def test_world_production_covers_1976_2005(shipped, metal):
    rows = shipped.world[(shipped.world["metal"] == metal) & (shipped.world["series"] == "world_production")]
    covered_by_basis = {basis: set(group["year"]) for basis, group in rows.groupby("basis")}
    wanted = set(range(1976, 2006))
    assert any(wanted <= years for years in covered_by_basis.values()), (
        f"{metal}: no basis covers 1976-2005, missing "
        f"{ {basis: sorted(wanted - years) for basis, years in covered_by_basis.items()} }"
    )


def test_world_tonnes_are_finite(shipped):
    assert shipped.world["tonnes"].map(math.isfinite).all()
    assert shipped.observations["tonnes"].map(math.isfinite).all()


def test_unit_conversion_hand_values():
    assert UNIT_TO_TONNES["Moz"] == pytest.approx(31.1034768)
    assert UNIT_TO_TONNES["koz"] == pytest.approx(0.0311034768)
    assert UNIT_TO_TONNES["troy_oz"] == pytest.approx(31.1034768e-6)
    assert UNIT_TO_TONNES["kt"] == 1000
    assert UNIT_TO_TONNES["Mt"] == 1e6
    assert UNIT_TO_TONNES["kg"] == 1e-3
    assert UNIT_TO_TONNES["t"] == 1


def test_shipped_tonnes_column(shipped):
    obs = shipped.observations
    pt_1989 = obs[(obs["metal"] == "Pt") & (obs["year"] == 1989) & (obs["unit"] == "troy_oz")]
    assert len(pt_1989) == 1
    assert pt_1989["tonnes"].iloc[0] == pytest.approx(1663200 * 31.1034768e-6)
    al_2001 = obs[(obs["metal"] == "Al") & (obs["year"] == 2001) & (obs["series"] == "refined_import")]
    assert al_2001["tonnes"].iloc[0] == pytest.approx(2611 * 1000)


def test_overlap_group_kept_once(shipped):
    obs = shipped.observations
    cases = [
        ("Cu", 1984, "refined_import"),
        ("Cu", 1985, "refined_export"),
        ("Cu", 1984, "domestic_demand"),
        ("Fe", 1973, "crude_steel_production"),
        ("Fe", 1990, "mine_production"),
    ]
    for metal, year, series in cases:
        rows = obs[(obs["metal"] == metal) & (obs["year"] == year) & (obs["series"] == series)]
        calendar_rows = rows[rows["period"] == "CY"]
        assert len(calendar_rows) == 1, f"{metal} {year} {series}: {len(calendar_rows)} rows"


def test_overlap_fiscal_2015_copper_once(shipped):
    obs = shipped.observations
    fy2015 = obs[(obs["metal"] == "Cu") & (obs["year"] == 2015) & (obs["period"] == "FY")]
    for series in ("smelter_production", "domestic_demand", "refined_export"):
        assert (fy2015["series"] == series).sum() == 1, series
    assert fy2015.loc[fy2015["series"] == "refined_export", "value"].iloc[0] == 565324


def test_silver_mine_2009_only_jmia(shipped):
    obs = shipped.observations
    rows = obs[(obs["metal"] == "Ag") & (obs["year"] == 2009) & (obs["series"] == "mine_production")]
    assert list(rows["period"]) == ["FY"]


def test_pt_and_pd_never_relabelled(shipped):
    assert "PGM" not in set(shipped.observations["metal"])
    assert {"Pt", "Pd"} <= set(shipped.observations["metal"])


def test_no_rounded_zero_from_owid(shipped):
    obs = shipped.observations
    owid = obs[obs["source"].str.startswith("owid")]
    assert (owid["value"] > 0).all()


# --- Error reporting on small bad files -------------------------------------


def make_data_dir(tmp_path: Path, observation_lines: list[str]) -> Path:
    """Copy the shipped folder to tmp_path and replace jp/observations.csv."""
    data_dir = tmp_path / "data"
    shutil.copytree(DATA_DIR, data_dir)
    # Extra observation files of the shipped data would join the rows under test.
    for extra in (data_dir / "jp").glob("observations_*.csv"):
        extra.unlink()
    sources = data_dir / "sources.csv"
    with sources.open("a", encoding="utf-8") as handle:
        handle.write("src,Test publisher,Test title,https://example.org,2000,none\n")
    (data_dir / "jp" / "observations.csv").write_text(
        "\n".join([HEADER, *observation_lines]) + "\n", encoding="utf-8"
    )
    return data_dir


def load_problems(data_dir: Path) -> list:
    with pytest.raises(InputError) as caught:
        load_data(data_dir)
    return caught.value.problems


BAD_ROWS = [
    ("non-numeric value", GOOD_ROW.replace("463000", "about 463000"), "numeric"),
    ("nan value", GOOD_ROW.replace("463000", "nan"), "finite"),
    ("inf value", GOOD_ROW.replace("463000", "inf"), "finite"),
    ("negative value", GOOD_ROW.replace("463000", "-5"), "zero or more"),
    ("unknown unit", GOOD_ROW.replace(",t,", ",short_ton,"), "unit"),
    ("unknown series", GOOD_ROW.replace("refined_import", "smuggling"), "series"),
    ("unknown period", GOOD_ROW.replace(",CY,", ",Q1,"), "period"),
    ("unknown confidence", GOOD_ROW.replace("secondary", "hearsay"), "confidence"),
    ("unknown basis", GOOD_ROW.replace("metal_content", "ore"), "basis"),
    ("year not integer", GOOD_ROW.replace("1984", "1984.5"), "integer year"),
    ("year too early", GOOD_ROW.replace("1984", "1700"), "1800-2100"),
    ("unknown source", GOOD_ROW.replace(",src,", ",nowhere,"), "sources.csv"),
]


@pytest.mark.parametrize(("case", "line", "expected"), BAD_ROWS, ids=[case for case, _, _ in BAD_ROWS])
def test_bad_row_names_file_and_row(tmp_path, case, line, expected):
    data_dir = make_data_dir(tmp_path, [GOOD_ROW.replace("1984", "1985"), line])
    problems = load_problems(data_dir)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.file.endswith("observations.csv")
    assert problem.location == "row 3"
    assert expected in problem.expected


def test_duplicate_row_rejected(tmp_path):
    data_dir = make_data_dir(tmp_path, [GOOD_ROW, GOOD_ROW.replace("463000", "460000")])
    problems = load_problems(data_dir)
    assert [p.location for p in problems] == ["row 3"]
    assert "line 2" in problems[0].found


def test_distinct_sources_same_quantity_allowed(tmp_path):
    data_dir = make_data_dir(tmp_path, [GOOD_ROW])
    sources = data_dir / "sources.csv"
    with sources.open("a", encoding="utf-8") as handle:
        handle.write("src2,Other publisher,Other title,https://example.org/2,2001,none\n")
    other = GOOD_ROW.replace(",src,", ",src2,")
    (data_dir / "jp" / "observations.csv").write_text("\n".join([HEADER, GOOD_ROW, other]) + "\n")
    data = load_data(data_dir)
    assert len(data.observations) == 2


def test_all_problems_reported_in_one_pass(tmp_path):
    lines = [
        GOOD_ROW.replace("463000", "x"),
        GOOD_ROW.replace("1984", "1986").replace(",t,", ",lb,"),
        GOOD_ROW.replace("1984", "1987").replace(",CY,", ",H1,"),
    ]
    problems = load_problems(make_data_dir(tmp_path, lines))
    assert [p.location for p in problems] == ["row 2", "row 3", "row 4"]


def test_missing_column_rejected(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("region,metal\nJPN,Cu\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_table(path, ["region", "metal", "value"])
    problem = caught.value.problems[0]
    assert problem.file == str(path)
    assert problem.location == "header"
    assert "'value'" in problem.expected


def test_missing_file_rejected(tmp_path):
    with pytest.raises(InputError) as caught:
        read_table(tmp_path / "absent.csv", ["region"])
    assert caught.value.problems[0].file.endswith("absent.csv")


def test_bad_reference_number_rejected(tmp_path):
    data_dir = make_data_dir(tmp_path, [GOOD_ROW])
    path = data_dir / "jp" / "io_export_ratios_2000.csv"
    table = read_table(path, ["direct_export_ratio"])
    table.loc[0, "direct_export_ratio"] = "n/a"
    table.to_csv(path, index=False)
    problems = load_problems(data_dir)
    assert problems[0].file.endswith("io_export_ratios_2000.csv")
    assert problems[0].location == "row 2"


def test_silver_nov_oct_period(shipped):
    obs = shipped.observations
    rows = obs[(obs["metal"] == "Ag") & (obs["series"] == "refined_export")]
    assert set(rows["period"]) == {"NovOct"}
