"""Build the United States boundary data in data/us/ from the raw public files.

Usage::

    python scripts/build_us_data.py RAW_DIR --out data

RAW_DIR must contain ``data-candidates/usgs-ds140-ninhursag/*.tsv`` (USGS Data
Series 140 worksheets as TSV) and ``data-candidates/wiod-2013-bquast/wiot_YYYY.RData``
(WIOD 2013 release). Needs the ``build-data`` extra (rdata).

Writes, under OUT/us/:

* ``observations.csv``: US production, trade and consumption per metal and year,
  one row per DS140 cell, as printed (``W`` withheld and ``NA`` cells skipped);
* ``io/wiod2013_usa_sectors.csv`` and ``io/wiod2013_usa_intermediate.csv``: the
  United States block of WIOD 2013, 1995-2011, in the layout of data/jp/io/;
* ``io/export_ratio_drift.csv``: drift of each WIOD industry's induced ratio;
* ``io_export_ratios_2000.csv`` and ``metal_sectors.csv``: export ratios of the
  35 WIOD industries in 2000 and the industries that carry each metal.

The script then loads OUT with ``uncertainty.data.load_data(OUT, "us")`` as a check.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_io_tables import WIOD_YEARS, finish_sectors, long_matrix, read_wiod_year, write_table  # noqa: E402

REGION = "USA"
SOURCE = "usgs_ds140"
WIOD_SOURCE = "wiod2013"
WIOD_COUNTRY = "USA"
US_TABLE = "wiod2013_usa"
RATIO_YEAR = 2000
DS140_FOLDER = Path("data-candidates") / "usgs-ds140-ninhursag"
WIOD_FOLDER = Path("data-candidates") / "wiod-2013-bquast"
OBSERVATION_COLUMNS = [
    "region", "metal", "year", "period", "series", "value", "unit", "basis",
    "source", "citation", "confidence", "note",
]
# Cells that carry no number: NA not available, W withheld, blank.
MISSING_CELLS = {"NA", "W", ""}


@dataclass(frozen=True)
class Column:
    """One DS140 worksheet column taken as one observation series of one metal."""

    metal: str
    sheet: str
    column: str
    series: str
    basis: str
    note: str


# Mapping of worksheet columns to observation series. Secondary production (metal
# recovered from old scrap) is recycling inside the boundary and is not used.
# Stocks and government stockpile shipments stay inside the boundary too.
COLUMNS = [
    Column("Cu", "ds140-coppe.tsv", "Primary production", "smelter_production", "metal_content",
           "primary refined copper from domestic and imported ores, concentrates, blister and anodes "
           "(DS140 copper notes); its sum with refined trade is the net inflow at the refinery"),
    Column("Cu", "ds140-coppe.tsv", "Imports", "refined_import", "metal_content",
           "refined copper; the worksheet balances apparent consumption on refined copper"),
    Column("Cu", "ds140-coppe.tsv", "Exports", "refined_export", "metal_content",
           "refined copper; the worksheet balances apparent consumption on refined copper"),
    Column("Cu", "ds140-coppe.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including copper recovered from old scrap"),
    Column("Zn", "ds140-zinc.tsv", "Primary production", "smelter_production", "metal_content",
           "primary slab zinc from domestic and imported concentrates, not mine output; "
           "the United States exports most of its zinc concentrate"),
    Column("Zn", "ds140-zinc.tsv", "Imports", "refined_import", "metal_content", "zinc content"),
    Column("Zn", "ds140-zinc.tsv", "Exports", "refined_export", "metal_content", "zinc content"),
    Column("Zn", "ds140-zinc.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including zinc recovered from old scrap"),
    Column("Pb", "ds140-lead.tsv", "Primary production", "smelter_production", "metal_content",
           "primary refined lead from domestic and imported ores, not mine output; "
           "the United States exports much of its lead concentrate"),
    Column("Pb", "ds140-lead.tsv", "Imports", "refined_import", "metal_content", "lead content"),
    Column("Pb", "ds140-lead.tsv", "Exports", "refined_export", "metal_content", "lead content"),
    Column("Pb", "ds140-lead.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including lead recovered from old scrap"),
    Column("Al", "ds140-alumi.tsv", "Primary production", "smelter_production", "metal_content",
           "primary aluminium smelted mostly from imported bauxite and alumina"),
    Column("Al", "ds140-alumi.tsv", "Imports", "refined_import", "metal_content",
           "aluminium content; the worksheet column is not split into crude metal, "
           "semifabricated products and scrap"),
    Column("Al", "ds140-alumi.tsv", "Exports", "refined_export", "metal_content",
           "aluminium content; the worksheet column is not split into crude metal, "
           "semifabricated products and scrap"),
    Column("Al", "ds140-alumi.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including aluminium recovered from old scrap"),
    Column("Au", "ds140-gold.tsv", "Primary production", "mine_production", "metal_content",
           "gold mine production"),
    Column("Au", "ds140-gold.tsv", "Imports", "refined_import", "metal_content", "gold content"),
    Column("Au", "ds140-gold.tsv", "Exports", "refined_export", "metal_content", "gold content"),
    Column("Au", "ds140-gold.tsv", "Reported consumption", "domestic_demand", "metal_content",
           "reported industrial consumption"),
    Column("Ag", "ds140-silve.tsv", "Mine production", "mine_production", "metal_content",
           "silver mine production"),
    Column("Ag", "ds140-silve.tsv", "Imports", "refined_import", "metal_content", "silver content"),
    Column("Ag", "ds140-silve.tsv", "Exports", "refined_export", "metal_content", "silver content"),
    Column("Ag", "ds140-silve.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including silver recovered from old scrap"),
    Column("Ni", "ds140-nicke-Nickel.tsv", "Primary production", "mine_production", "metal_content",
           "primary nickel from domestic ore; W (withheld) years are skipped"),
    Column("Ni", "ds140-nicke-Nickel.tsv", "Imports", "refined_import", "metal_content",
           "nickel content; by the worksheet's balance the column includes nickel in scrap"),
    Column("Ni", "ds140-nicke-Nickel.tsv", "Exports", "refined_export", "metal_content",
           "nickel content; by the worksheet's balance the column includes nickel in scrap"),
    Column("Ni", "ds140-nicke-Nickel.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including nickel recovered from scrap"),
    Column("Sn", "ds140-tin.tsv", "Primary production", "smelter_production", "metal_content",
           "primary tin smelted from concentrates, mostly imported; US mine output was negligible; "
           "W (withheld) years are skipped"),
    Column("Sn", "ds140-tin.tsv", "Imports", "refined_import", "metal_content", "refined tin"),
    Column("Sn", "ds140-tin.tsv", "Exports", "refined_export", "metal_content", "refined tin"),
    Column("Sn", "ds140-tin.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption, including tin recovered from old scrap and stockpile releases"),
    Column("PGM", "ds140-plati.tsv", "Primary production", "mine_production", "metal_content",
           "platinum-group metals from domestic mines, all six metals together; W years are skipped"),
    Column("PGM", "ds140-plati.tsv", "Imports", "refined_import", "metal_content",
           "platinum-group metal content, all six metals together"),
    Column("PGM", "ds140-plati.tsv", "Exports", "refined_export", "metal_content",
           "platinum-group metal content, all six metals together"),
    Column("PGM", "ds140-plati.tsv", "Apparent consumption", "domestic_demand", "metal_content",
           "apparent consumption"),
    Column("Fe", "ds140-feore.tsv", "Production", "mine_production", "gross_weight",
           "usable iron ore, gross weight"),
    Column("Fe", "ds140-feore.tsv", "Imports", "ore_import", "gross_weight", "iron ore, gross weight"),
    Column("Fe", "ds140-feore.tsv", "Exports", "ore_export", "gross_weight", "iron ore, gross weight"),
    Column("Fe", "ds140-feste-Steel.tsv", "Raw steel production", "crude_steel_production", "gross_weight",
           "raw steel"),
    Column("Fe", "ds140-feste-Steel.tsv", "Apparent consumption", "domestic_demand", "gross_weight",
           "apparent consumption of steel mill products"),
]

# Iron trade beyond ore: steel mill products, pig iron and direct-reduced iron. The
# observation key allows one refined_import row per year, so the three columns are summed.
IRON_PRODUCT_SHEETS = [
    ("ds140-feste-Steel.tsv", "steel mill products"),
    ("ds140-feste-Pig Iron.tsv", "pig iron"),
    ("ds140-feste-Direct Reduced Iron.tsv", "direct-reduced iron"),
]

# WIOD industries that carry each metal into products, with the reason for each choice.
METAL_INDUSTRIES = {
    "Cu": ["c13", "c14", "c15", "c16"],
    "Zn": ["c12", "c13", "c15"],
    "Pb": ["c14", "c15"],
    "Al": ["c13", "c14", "c15", "c16"],
    "Au": ["c14", "c16"],
    "Ag": ["c9", "c14", "c16"],
    "Ni": ["c12", "c13", "c15"],
    "Sn": ["c12", "c14", "c15"],
    "PGM": ["c9", "c14", "c15"],
    "Fe": ["c12", "c13", "c14", "c15"],
}


@dataclass(frozen=True)
class Worksheet:
    """One DS140 worksheet: its units line and its data rows keyed by year."""

    name: str
    units: str
    header: list[str]
    rows: dict[int, list[str]]

    def cell(self, year: int, column: str) -> str:
        row = self.rows.get(year)
        if row is None:
            return ""
        index = self.header.index(column)
        return row[index].strip() if index < len(row) else ""


def read_worksheet(path: Path) -> Worksheet:
    """Read a DS140 TSV: title lines, a units line in brackets, a ``Year`` header, rows, footnotes."""
    lines = path.read_text(encoding="utf-8").splitlines()
    units = next((line.strip() for line in lines[:6] if line.strip().startswith("[")), "")
    header_index = next(i for i, line in enumerate(lines) if line.startswith("Year\t"))
    header = lines[header_index].split("\t")
    rows: dict[int, list[str]] = {}
    for line in lines[header_index + 1:]:
        if line.startswith("Year\t"):
            break  # Some sheets repeat the header before their footnotes.
        if re.match(r"^\d{4}\t", line):
            cells = line.split("\t")
            year = int(cells[0])
            if year in rows:
                raise ValueError(f"{path.name}: invalid worksheet, year {year} appears twice")
            rows[year] = cells
    return Worksheet(path.stem, units, header, rows)


def parse_value(text: str, where: str) -> float | None:
    """Return the number in a DS140 cell, or None for NA, W and blank cells."""
    if text in MISSING_CELLS:
        return None
    try:
        value = float(text)
    except ValueError as error:
        raise ValueError(f"{where}: invalid cell {text!r}, expected a number, NA, W or blank") from error
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: invalid value {text!r}, expected a finite number of zero or more")
    return value


def format_value(value: float) -> str:
    """Write a value as printed: whole numbers without a decimal point, others with up to 12 digits."""
    if value == int(value):
        return str(int(value))
    return f"{value:.12g}"


def citation(sheet: Worksheet, column: str, year: int) -> str:
    return f"DS140 worksheet {sheet.name}, column '{column}', year {year}"


def column_rows(spec: Column, sheet: Worksheet) -> tuple[list[dict], int]:
    """Turn one worksheet column into observation rows; return them and the number of skipped cells."""
    if spec.column not in sheet.header:
        raise ValueError(f"{sheet.name}: column {spec.column!r} not found in {sheet.header}")
    rows, skipped = [], 0
    for year in sorted(sheet.rows):
        value = parse_value(sheet.cell(year, spec.column), f"{sheet.name} {year} {spec.column}")
        if value is None:
            skipped += 1
            continue
        rows.append({
            "region": REGION, "metal": spec.metal, "year": year, "period": "CY", "series": spec.series,
            "value": format_value(value), "unit": "t", "basis": spec.basis, "source": SOURCE,
            "citation": citation(sheet, spec.column, year), "confidence": "primary",
            "note": f"{spec.note}; units line: {sheet.units}",
        })
    return rows, skipped


def iron_trade_rows(sheets: dict[str, Worksheet], column: str, series: str) -> list[dict]:
    """Sum steel, pig iron and DRI trade per year; only years with a steel figure get a row.

    Before 1914 the steel columns are NA, and a pig-iron-only row would measure a
    narrower flow than the later rows, so those years get no row.
    """
    steel = sheets[IRON_PRODUCT_SHEETS[0][0]]
    rows = []
    for year in sorted(steel.rows):
        parts, labels = [], []
        for sheet_name, label in IRON_PRODUCT_SHEETS:
            sheet = sheets[sheet_name]
            value = parse_value(sheet.cell(year, column), f"{sheet.name} {year} {column}")
            if value is not None:
                parts.append(value)
                labels.append(f"{label} {format_value(value)} t")
        if not parts or labels[0].split(" ")[0] != "steel":
            continue
        summed = len(parts) > 1
        cited = "; ".join(
            citation(sheets[name], column, year) for name, label in IRON_PRODUCT_SHEETS
            if any(text.startswith(label) for text in labels)
        )
        rows.append({
            "region": REGION, "metal": "Fe", "year": year, "period": "CY", "series": series,
            "value": format_value(sum(parts)), "unit": "t", "basis": "gross_weight", "source": SOURCE,
            "citation": cited, "confidence": "inferred" if summed else "primary",
            "note": ("sum of " if summed else "") + " + ".join(labels)
            + "; gross weight of iron and steel products",
        })
    return rows


def build_observations(raw_dir: Path) -> pd.DataFrame:
    folder = raw_dir / DS140_FOLDER
    names = {spec.sheet for spec in COLUMNS} | {name for name, _ in IRON_PRODUCT_SHEETS}
    sheets = {name: read_worksheet(folder / name) for name in sorted(names)}
    rows: list[dict] = []
    for spec in COLUMNS:
        kept, skipped = column_rows(spec, sheets[spec.sheet])
        rows.extend(kept)
        print(f"{spec.metal} {spec.series:<22} {len(kept):4d} rows, {skipped:3d} NA/W cells skipped "
              f"({spec.sheet}: {spec.column})")
    for column, series in [("Imports", "refined_import"), ("Exports", "refined_export")]:
        kept = iron_trade_rows(sheets, column, series)
        rows.extend(kept)
        print(f"Fe {series:<22} {len(kept):4d} rows (steel + pig iron + DRI {column.lower()})")
    frame = pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)
    return frame.sort_values(["metal", "series", "year"], kind="stable").reset_index(drop=True)


def build_wiod(raw_dir: Path, io_dir: Path) -> None:
    """Write the United States block of WIOD 2013 for every year, as build_io_tables does for Japan."""
    all_sectors, all_matrices = [], []
    for year in WIOD_YEARS:
        path = raw_dir / WIOD_FOLDER / f"wiot_{year}.RData"
        sectors, intermediate, imported = read_wiod_year(path, year, country=WIOD_COUNTRY)
        all_sectors.append(finish_sectors(sectors, year))
        all_matrices.append(long_matrix(year, intermediate, imported))
        print(f"{US_TABLE} {year}: output {sectors['output'].sum() / 1e6:.3f} million million USD")
    sectors = pd.concat(all_sectors, ignore_index=True)
    write_table(io_dir, US_TABLE, sectors, pd.concat(all_matrices, ignore_index=True), decimals=0)
    print(f"{US_TABLE}: max |balance residual| {sectors['balance_residual'].abs().max():.0f} million USD")


def build_ratios(out_dir: Path) -> None:
    """Write the 2000 export ratios per WIOD industry, the metal-to-industry table and the drift."""
    from uncertainty.io_tables import export_ratio_dataset, industry_ratio_drift

    io_dir = out_dir / "us" / "io"
    drift = industry_ratio_drift(US_TABLE, io_dir, RATIO_YEAR)
    drift.to_csv(io_dir / "export_ratio_drift.csv", index=False, float_format="%.4f")
    print(f"export_ratio_drift: {len(drift)} industries")

    ratios = export_ratio_dataset(US_TABLE, io_dir).sel(year=RATIO_YEAR)
    metals_by_industry: dict[str, list[str]] = {}
    for metal, industries in METAL_INDUSTRIES.items():
        for industry in industries:
            metals_by_industry.setdefault(industry, []).append(metal)
    table = pd.DataFrame({
        "io_code": ratios["sector"].values,
        "sector_ja": "",
        "sector_en": ratios["sector_name"].values,
        "metals": [",".join(sorted(metals_by_industry.get(code, []))) for code in ratios["sector"].values],
        "direct_export_ratio": np.round(ratios["direct_ratio"].values, 4),
        "induced_export_ratio": np.round(ratios["induced_ratio"].sel(inverse="domestic").values, 4),
        "source": WIOD_SOURCE,
    })
    table.to_csv(out_dir / "us" / "io_export_ratios_2000.csv", index=False)
    metal_sectors = pd.DataFrame(
        [(metal, code, WIOD_SOURCE) for metal, codes in sorted(METAL_INDUSTRIES.items()) for code in codes],
        columns=["metal", "io_code", "source"],
    )
    metal_sectors.to_csv(out_dir / "us" / "metal_sectors.csv", index=False)
    print(f"io_export_ratios_2000: {len(table)} industries; metal_sectors: {len(metal_sectors)} rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw_dir", type=Path, help="folder containing data-candidates/")
    parser.add_argument("--out", type=Path, default=Path("data"), help="data folder (default: data)")
    args = parser.parse_args(argv)
    io_dir = args.out / "us" / "io"
    io_dir.mkdir(parents=True, exist_ok=True)

    observations = build_observations(args.raw_dir)
    observations.to_csv(args.out / "us" / "observations.csv", index=False)
    print(f"observations: {len(observations)} rows")
    build_wiod(args.raw_dir, io_dir)
    build_ratios(args.out)

    from uncertainty.data import load_data

    data = load_data(args.out, "us")
    print(f"check: load_data read {len(data.observations)} US observations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
