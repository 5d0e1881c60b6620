"""Build the compact input-output tables in data/jp/io/ from the raw source files.

Usage::

    python scripts/build_io_tables.py RAW_DIR --out data/jp/io

RAW_DIR must contain ``data-candidates/japan-io-takeda/*.xlsx`` (Japanese national
tables of the Ministry of Internal Affairs and Communications, as aggregated by
S. Takeda), ``data-candidates/wiod-2013-bquast/wiot_YYYY.RData`` (WIOD 2013
release) and ``reference/io_export_ratios_2000.csv`` (published 2000 ratios).
Needs the ``build-data`` extra (openpyxl, rdata).

Every table is written in the competitive-import layout of the Japanese national
tables. The intermediate matrix contains domestic plus imported goods, and imports
are a separate (deducted) final demand column, so that for each product

    output = intermediate sales + domestic final demand + exports - imports.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# Final-demand columns of the national tables (codes used in sheet Set_data).
# `adjs` (調整項, adjustment item) sits among the domestic final demand columns
# in the 2011 table, so it is counted as domestic final demand here.
# NOTE: its rows follow exports (0 to 5 % of a sector's exports in 2005), so it may
# belong with exports, which would raise direct ratios by up to 5 %.
NATIONAL_DOMESTIC_FINAL = {
    "ohcc", "hhco", "npco", "govc", "gosc", "gvco",
    "inve", "invg", "invp", "stck", "adjs",
}
# Exports include direct purchases by non-residents (`expd`) where the table has them.
NATIONAL_EXPORTS = {"expo", "expd"}
# Deducted columns, stored with negative sign: imports (`impo`), direct purchases
# abroad by residents (`impd`), customs duties (`imta`) and commodity taxes on
# imports (`imtx`). The table values imports at domestic producer prices, so all
# four are needed for the row balance.
NATIONAL_IMPORTS = {"impo", "impd", "imta", "imtx"}

NATIONAL_FILES = {
    "jp2005_13": "check_japan_2005_13x13_std.xlsx",
    "jp2005_34": "check_japan_2005_34x34_std.xlsx",
    "jp2005_188": "check_japan_2005_188x188_std.xlsx",
    "jp2011_37": "check_japan_2011_37x37_std.xlsx",
}
NATIONAL_YEARS = {"jp2005_13": 2005, "jp2005_34": 2005, "jp2005_188": 2005, "jp2011_37": 2011}

WIOD_TABLE = "wiod2013_jpn"
WIOD_YEARS = range(1995, 2012)
WIOD_COUNTRY = "JPN"
WIOD_INDUSTRIES_PER_COUNTRY = 35
WIOD_FINAL_CATEGORIES_PER_COUNTRY = 5
# Industry names of the WIOD 2013 release (35-industry, NACE rev. 1.1 based list).
WIOD_INDUSTRY_NAMES = [
    "Agriculture, hunting, forestry and fishing",
    "Mining and quarrying",
    "Food, beverages and tobacco",
    "Textiles and textile products",
    "Leather, leather products and footwear",
    "Wood and products of wood and cork",
    "Pulp, paper, printing and publishing",
    "Coke, refined petroleum and nuclear fuel",
    "Chemicals and chemical products",
    "Rubber and plastics",
    "Other non-metallic minerals",
    "Basic metals and fabricated metal",
    "Machinery, nec",
    "Electrical and optical equipment",
    "Transport equipment",
    "Manufacturing, nec; recycling",
    "Electricity, gas and water supply",
    "Construction",
    "Sale, maintenance and repair of motor vehicles; retail sale of fuel",
    "Wholesale trade, except of motor vehicles",
    "Retail trade, except of motor vehicles; repair of household goods",
    "Hotels and restaurants",
    "Inland transport",
    "Water transport",
    "Air transport",
    "Other supporting and auxiliary transport activities",
    "Post and telecommunications",
    "Financial intermediation",
    "Real estate activities",
    "Renting of machinery and equipment and other business activities",
    "Public administration and defence; compulsory social security",
    "Education",
    "Health and social work",
    "Other community, social and personal services",
    "Private households with employed persons",
]
# Published check value: Japan's total output in 2000 is about 8.69 million million USD.
WIOD_JPN_2000_OUTPUT_MILLION_USD = 8.69e6

# Correspondence of the 23 sectors of the published 2000 ratios to the tables here.
# The 2000 sector codes are those of the published list. The mapping was made from
# the sector names, because the 2000 classification itself is not among the inputs.
#   jp2005_188: 2005 188-sector codes whose outputs, exports and induced outputs are
#       summed before the ratio is taken.
#   wiod_industry: the WIOD 2013 industry that contains the sector.
#   jp2011_37: the 2011 37-sector code(s) containing the sector.
#   jp2005_188_as_2011: 2005 188-sector codes that approximate the scope of jp2011_37,
#       so that 2005 and 2011 are compared over the same products.
SECTOR_MAP_COLUMNS = ["io_code", "jp2005_188", "wiod_industry", "jp2011_37", "jp2005_188_as_2011", "note"]
CHEMICALS_2005 = "2011;2021;2029;2031;2032;2033;2039;2041;2051;2061;2071;2072;2073;2074;2079"
STEEL_2005 = "2611;2621;2622;2623;2631;2649"
NON_FERROUS_2005 = "2711;2721;2722"
METAL_PRODUCTS_2005 = "2811;2812;2891;2899"
TRANSPORT_2005 = "3511;3521;3531;3541;3611;3621;3622;3629"
SECTOR_MAP_ROWS = [
    ("221101", "2211", "c10", "22", "2211;2311;2319",
     "Same product group in 2005. WIOD c10 and 2011 sector 22 also contain rubber products."),
    ("207909", "2079", "c9", "20", CHEMICALS_2005,
     "Same product group in 2005. WIOD c9 and 2011 sector 20 cover all chemicals."),
    ("2623021", "2623", "c12", "26", STEEL_2005,
     "2005 sector 2623 is cold-rolled and plated steel, broader than plated steel alone."),
    ("2721011", "2721", "c12", "27", NON_FERROUS_2005,
     "Same product group in 2005. WIOD c12 covers all basic and fabricated metals."),
    ("2722011", "2722", "c12", "27", NON_FERROUS_2005,
     "2005 sector 2722 merges copper, aluminium and other non-ferrous metal products."),
    ("2722021", "2722", "c12", "27", NON_FERROUS_2005,
     "2005 sector 2722 merges copper, aluminium and other non-ferrous metal products."),
    ("2722099", "2722", "c12", "27", NON_FERROUS_2005,
     "2005 sector 2722 merges copper, aluminium and other non-ferrous metal products."),
    ("2811011", "2811", "c12", "28", METAL_PRODUCTS_2005,
     "Same product group in 2005. WIOD c12 covers all basic and fabricated metals."),
    ("2812011", "2812", "c12", "28", METAL_PRODUCTS_2005,
     "Same product group in 2005. WIOD c12 covers all basic and fabricated metals."),
    ("289903", "2899", "c12", "28", METAL_PRODUCTS_2005,
     "No powder-metallurgy sector in 2005: 2899 other metal products contains it and much more."),
    ("2899021", "2899", "c12", "28", METAL_PRODUCTS_2005,
     "No container sector in 2005: 2899 other metal products contains it and much more."),
    ("289", "2891;2899", "c12", "28", METAL_PRODUCTS_2005,
     "Read as the group of other metal products, which in 2005 is 2891 gas and oil appliances plus 2899."),
    ("301", "3011;3012;3013;3019", "c13", "29", "3011;3012;3013;3019",
     "Read as general industrial machinery (engines, handling, refrigeration, other). "
     "Special industrial machinery (302x) is left out."),
    ("321", "3311;3321;3331", "c14", "34", "3311;3321;3331",
     "Read as consumer electronics, communication equipment and computers. "
     "3221 electronic application equipment is left out."),
    ("3341021", "3411", "c14", "32", "3411;3421",
     "2005 sector 3411 also contains discrete semiconductor devices."),
    ("3359021", "3421", "c14", "32", "3411;3421",
     "No liquid-crystal sector in 2005: 3421 other electronic components contains it."),
    ("3359099", "3421", "c14", "32", "3411;3421",
     "Same product group in 2005, which also contains liquid-crystal devices."),
    ("340", "3211;3241;3251", "c14", "33", "3211;3221;3231;3241;3251",
     "Read as industrial, other and household electrical equipment. "
     "3221 electronic application and 3231 measuring equipment are left out."),
    ("351", "3511;3521;3531;3541", "c15", "35", TRANSPORT_2005,
     "Cars, trucks and buses, motorcycles and motor-vehicle parts."),
    ("36", TRANSPORT_2005, "c15", "35", TRANSPORT_2005,
     "All transport equipment: motor vehicles and parts, ships, railway vehicles, aircraft, other."),
    ("37", "3711;3712;3719", "c14", "31", "3111;3112;3711;3712;3719",
     "WIOD puts precision instruments in c14. The 2011 table has no precision sector, "
     "so 31 business-oriented machinery (with office and service machines) is used."),
    ("3711011", "3711", "c14", "31", "3111;3112;3711;3712;3719",
     "No camera sector in 2005: 3711 optical instruments contains cameras."),
    ("39", "3911;3919", "c16", "39", "3911;3919",
     "Toys, sporting goods and other manufactured goods. WIOD c16 also contains furniture and recycling."),
]

SECTOR_COLUMNS = [
    "year", "sector", "sector_name", "output", "exports", "imports",
    "domestic_final_demand", "intermediate_sales", "balance_residual",
]


def read_national_table(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read sheets Set_data and Value_data of one national table.

    Returns the sector table (one row per sector, billion yen) and the
    intermediate matrix (rows sell to columns, billion yen) indexed by sector code.
    """
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    set_rows = list(workbook["Set_data"].iter_rows(values_only=True))
    value_rows = list(workbook["Value_data"].iter_rows(values_only=True))
    workbook.close()

    # Set_data: column A is the row-sector code, B its name, J the final-demand codes.
    header_index = next(i for i, row in enumerate(set_rows) if row[0] == "row（行部門）")
    codes, names, final_codes = [], [], []
    for row in set_rows[header_index + 1:]:
        if row[0] is not None:
            if row[0] != row[3]:
                raise ValueError(f"{path.name}: row sector {row[0]!r} differs from column sector {row[3]!r}")
            codes.append(str(row[0]))
            names.append(str(row[1]))
        if len(row) > 9 and row[9] is not None:
            final_codes.append(str(row[9]))

    # Value_data: the header row lists sector codes, then final-demand codes, then "Total".
    value_header_index = next(i for i, row in enumerate(value_rows) if row[1] == codes[0])
    header = [str(cell) for cell in value_rows[value_header_index][1:]]
    body = {str(row[0]): row[1:] for row in value_rows[value_header_index + 1:] if row[0] is not None}
    frame = pd.DataFrame.from_dict(body, orient="index", columns=header)
    expected_columns = codes + final_codes + ["Total"]
    if header != expected_columns:
        raise ValueError(f"{path.name}: Value_data columns {header} do not match Set_data {expected_columns}")
    unknown = set(final_codes) - NATIONAL_DOMESTIC_FINAL - NATIONAL_EXPORTS - NATIONAL_IMPORTS
    if unknown:
        raise ValueError(f"{path.name}: unknown final-demand columns {sorted(unknown)}")

    values = frame.loc[codes].apply(pd.to_numeric).fillna(0.0)
    intermediate = values[codes]
    domestic_final = values[[c for c in final_codes if c in NATIONAL_DOMESTIC_FINAL]].sum(axis=1)
    exports = values[[c for c in final_codes if c in NATIONAL_EXPORTS]].sum(axis=1)
    imports = -values[[c for c in final_codes if c in NATIONAL_IMPORTS]].sum(axis=1)
    output = values["Total"]

    column_totals = frame.loc["Total", codes].apply(pd.to_numeric)
    if not np.allclose(column_totals.to_numpy(), output.to_numpy(), rtol=1e-9, atol=1e-6):
        raise ValueError(f"{path.name}: column totals differ from row totals")

    sectors = pd.DataFrame({
        "sector": codes,
        "sector_name": names,
        "output": output.to_numpy(),
        "exports": exports.to_numpy(),
        "imports": imports.to_numpy(),
        "domestic_final_demand": domestic_final.to_numpy(),
        "intermediate_sales": intermediate.sum(axis=1).to_numpy(),
    })
    return sectors, intermediate


def read_wiod_year(
    path: Path, year: int, country: str = WIOD_COUNTRY
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read one country's single-country view of one WIOD 2013 world table (millions USD).

    country is the WIOD country code (``JPN`` by default, ``USA`` for the United
    States). Returns the sector table, the intermediate matrix of domestic plus
    imported goods, and the imported part of that matrix. Exports are the
    country's rows' sales to all other countries, intermediate and final. Imports
    of a product are the sales of that product by all other countries into the
    country's columns.
    """
    import rdata

    with warnings.catch_warnings():
        # rdata has no constructor for R class "iot" and returns the plain list.
        warnings.filterwarnings("ignore", message="Missing constructor", category=UserWarning)
        parsed = rdata.conversion.convert(rdata.parser.parse_file(path))
    table = parsed[f"wiot_{year}"]
    countries = [str(c) for c in table["countries"]]
    industries = [str(c) for c in table["industries"]]
    n = WIOD_INDUSTRIES_PER_COUNTRY
    k = WIOD_FINAL_CATEGORIES_PER_COUNTRY
    if len(industries) != n or int(table["year"][0]) != year:
        raise ValueError(f"{path.name}: unexpected industries or year")

    inter = np.asarray(table["inter"].values, dtype=float)
    final = np.asarray(table["final"].values, dtype=float)
    output_all = np.asarray(table["output"], dtype=float)
    # Rows and intermediate columns are country-major (country 1 industries c1..c35, ...).
    # Final-demand columns are country-major too, with 5 categories per country.
    if country not in countries:
        raise ValueError(f"{path.name}: country {country!r} not found; WIOD 2013 countries are {countries}")
    country_index = countries.index(country)
    rows_country = slice(country_index * n, (country_index + 1) * n)
    final_country = slice(country_index * k, (country_index + 1) * k)
    is_foreign_row = np.ones(inter.shape[0], dtype=bool)
    is_foreign_row[rows_country] = False

    domestic_block = inter[rows_country, rows_country]
    # Imported intermediates and final goods, summed over supplier countries per product.
    foreign_inter = inter[is_foreign_row, rows_country].reshape(len(countries) - 1, n, n).sum(axis=0)
    foreign_final = final[is_foreign_row, final_country].reshape(len(countries) - 1, n, k).sum(axis=(0, 2))
    domestic_final = final[rows_country, final_country].sum(axis=1)

    exports = inter[rows_country].sum(axis=1) - domestic_block.sum(axis=1)
    exports += final[rows_country].sum(axis=1) - domestic_final
    imports = foreign_inter.sum(axis=1) + foreign_final
    output = output_all[rows_country]

    total_block = domestic_block + foreign_inter
    sectors = pd.DataFrame({
        "sector": industries,
        "sector_name": WIOD_INDUSTRY_NAMES,
        "output": output,
        "exports": exports,
        "imports": imports,
        "domestic_final_demand": domestic_final + foreign_final,
        "intermediate_sales": total_block.sum(axis=1),
    })
    intermediate = pd.DataFrame(total_block, index=industries, columns=industries)
    imported = pd.DataFrame(foreign_inter, index=industries, columns=industries)
    return sectors, intermediate, imported


def long_matrix(year: int, intermediate: pd.DataFrame, imported: pd.DataFrame | None) -> pd.DataFrame:
    """Stack a sector-by-sector matrix into rows (year, row, col, value[, imported]), dropping zeros."""
    stacked = intermediate.stack()
    stacked.index.names = ["row", "col"]
    frame = stacked.rename("value").reset_index()
    if imported is not None:
        frame["imported"] = imported.stack().to_numpy()
    frame.insert(0, "year", year)
    keep = frame["value"] != 0
    if imported is not None:
        keep |= frame["imported"] != 0
    return frame[keep]


def finish_sectors(sectors: pd.DataFrame, year: int) -> pd.DataFrame:
    """Add year and the row-balance residual (output minus the sum of its uses)."""
    sectors = sectors.copy()
    sectors.insert(0, "year", year)
    uses = sectors["intermediate_sales"] + sectors["domestic_final_demand"] + sectors["exports"] - sectors["imports"]
    sectors["balance_residual"] = sectors["output"] - uses
    return sectors[SECTOR_COLUMNS]


def write_table(out_dir: Path, table: str, sectors: pd.DataFrame, matrix: pd.DataFrame, decimals: int) -> None:
    sectors = sectors.round(decimals)
    matrix = matrix.round(decimals)
    if decimals == 0:
        sectors = sectors.astype({name: "int64" for name in sectors.select_dtypes("number").columns})
        matrix = matrix.astype({name: "int64" for name in matrix.select_dtypes("number").columns})
    sectors.to_csv(out_dir / f"{table}_sectors.csv", index=False)
    matrix.to_csv(out_dir / f"{table}_intermediate.csv", index=False)


def build_national(raw_dir: Path, out_dir: Path) -> None:
    folder = raw_dir / "data-candidates" / "japan-io-takeda"
    for table, file_name in NATIONAL_FILES.items():
        year = NATIONAL_YEARS[table]
        sectors, intermediate = read_national_table(folder / file_name)
        sectors = finish_sectors(sectors, year)
        matrix = long_matrix(year, intermediate, None)
        # Source values have three decimals (million yen).
        write_table(out_dir, table, sectors, matrix, decimals=3)
        print(f"{table}: {len(sectors)} sectors, output {sectors['output'].sum():,.1f} billion JPY, "
              f"max |balance residual| {sectors['balance_residual'].abs().max():.3g}")


def build_wiod(raw_dir: Path, out_dir: Path) -> None:
    folder = raw_dir / "data-candidates" / "wiod-2013-bquast"
    all_sectors, all_matrices = [], []
    for year in WIOD_YEARS:
        sectors, intermediate, imported = read_wiod_year(folder / f"wiot_{year}.RData", year)
        all_sectors.append(finish_sectors(sectors, year))
        all_matrices.append(long_matrix(year, intermediate, imported))
        total = sectors["output"].sum()
        print(f"{WIOD_TABLE} {year}: output {total / 1e6:.3f} million million USD")
        if year == 2000 and abs(total / WIOD_JPN_2000_OUTPUT_MILLION_USD - 1) > 0.005:
            raise ValueError(f"WIOD Japan 2000 output {total:,.0f} million USD, expected about 8.69e6")
    sectors = pd.concat(all_sectors, ignore_index=True)
    # WIOD values are whole millions of USD, so rows miss their output by up to 83 million USD.
    write_table(out_dir, WIOD_TABLE, sectors, pd.concat(all_matrices, ignore_index=True), decimals=0)
    print(f"{WIOD_TABLE}: max |balance residual| {sectors['balance_residual'].abs().max():.0f} million USD")


def build_sector_map(raw_dir: Path, out_dir: Path) -> None:
    """Merge the published 2000 ratios into the hand-made sector correspondence."""
    published = pd.read_csv(raw_dir / "reference" / "io_export_ratios_2000.csv", dtype={"io_code": str})
    mapping = pd.DataFrame(SECTOR_MAP_ROWS, columns=SECTOR_MAP_COLUMNS)
    missing = set(published["io_code"]) ^ set(mapping["io_code"])
    if missing:
        raise ValueError(f"published sectors and sector map differ in io_code {sorted(missing)}")
    merged = published.merge(mapping, on="io_code", how="left", validate="one_to_one")
    merged = merged.rename(columns={
        "direct_export_ratio": "published_direct_ratio",
        "induced_export_ratio": "published_induced_ratio",
    })
    merged.to_csv(out_dir / "sector_map_2000.csv", index=False)
    print(f"sector_map_2000: {len(merged)} published sectors")


def build_drift(out_dir: Path) -> None:
    from uncertainty.io_tables import export_ratio_drift

    drift = export_ratio_drift(data_dir=out_dir)
    drift.to_csv(out_dir / "export_ratio_drift.csv", index=False, float_format="%.4f")
    print(f"export_ratio_drift: {len(drift)} rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw_dir", type=Path, help="folder containing data-candidates/ and reference/")
    parser.add_argument("--out", type=Path, default=Path("data/jp/io"), help="output folder (default: data/jp/io)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    build_national(args.raw_dir, args.out)
    build_wiod(args.raw_dir, args.out)
    build_sector_map(args.raw_dir, args.out)
    build_drift(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
