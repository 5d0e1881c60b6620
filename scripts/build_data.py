"""Build the tidy CSV files under data/ from a folder of raw candidate files.

Usage::

    python scripts/build_data.py RAW --out data

RAW must contain ``data-candidates/`` (USGS Data Series 140 worksheets as TSV and
the transcribed Japanese figures under ``japan-trade/``) and ``reference/``
(the NIMS 2008 stock table and the input-output export ratios). The script
writes the files described in docs/data-format.md, sorts every table so that
reruns give identical output, prints a log of skipped rows by reason, and
finally loads the result with ``uncertainty.data.load_data`` to check it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

# The 20 metals of the NIMS 2008 table. PGM is the platinum-group total.
METALS = [
    "Al", "Sb", "Cr", "Co", "Cu", "Au", "In", "Fe", "Pb", "Li",
    "Mo", "Ni", "PGM", "RE", "Ag", "Ta", "Sn", "W", "V", "Zn",
]  # fmt: skip

OBSERVATION_COLUMNS = [
    "region", "metal", "year", "period", "series", "value", "unit",
    "basis", "source", "citation", "confidence", "note",
]  # fmt: skip
DEMAND_BY_USE_COLUMNS = [
    "region", "metal", "year", "period", "use", "value", "unit",
    "source", "citation", "confidence", "note",
]  # fmt: skip
SOURCE_COLUMNS = ["source", "publisher", "title", "url", "year", "licence"]


@dataclass(frozen=True)
class WorldSheet:
    """One DS140 worksheet column used as the world series of a metal."""

    file: str
    column: str
    measure: str
    commodity: str


# Measure of each world column, read from the worksheet units line and column
# header. DS140 gives world mine production unless stated here.
WORLD_SHEETS = {
    "Al": WorldSheet("ds140-alumi.tsv", "World production", "primary smelter production, t Al", "Aluminum"),
    "Sb": WorldSheet("ds140-antim.tsv", "World production", "mine production, t Sb content", "Antimony"),
    "Cr": WorldSheet("ds140-chrom.tsv", "World production", "mine production, t Cr content", "Chromium"),
    "Co": WorldSheet("ds140-cobal.tsv", "World mine production", "mine production, t Co content", "Cobalt"),
    "Cu": WorldSheet("ds140-coppe.tsv", "World production", "mine production, t Cu content", "Copper"),
    "Au": WorldSheet("ds140-gold.tsv", "World production", "mine production, t Au content", "Gold"),
    "In": WorldSheet("ds140-indiu.tsv", "World production", "refinery production, t In", "Indium"),
    "Fe": WorldSheet(
        "ds140-feste-Pig Iron.tsv",
        "World production",
        "pig iron production, t of pig iron (about 93-95 % Fe), used as the iron-content proxy",
        "Iron and steel (pig iron)",
    ),
    "Pb": WorldSheet("ds140-lead.tsv", "World production", "mine production, t Pb content", "Lead"),
    "Li": WorldSheet(
        "ds140-lithi.tsv",
        "World mine production",
        "mine production, t Li content (given from 1994 on)",
        "Lithium",
    ),
    "Mo": WorldSheet("ds140-molyb.tsv", "World production", "mine production, t Mo content", "Molybdenum"),
    "Ni": WorldSheet("ds140-nicke-Nickel.tsv", "World production", "mine production, t Ni content", "Nickel"),
    "PGM": WorldSheet(
        "ds140-plati.tsv",
        "World production",
        "mine production, t PGM content (all platinum-group metals together)",
        "Platinum-group metals",
    ),
    "RE": WorldSheet(
        "ds140-raree.tsv",
        "World production",
        "mine production, t rare-earth oxide (REO) equivalent, not metal",
        "Rare earths",
    ),
    "Ag": WorldSheet("ds140-silve.tsv", "World production", "mine production, t Ag content", "Silver"),
    "Ta": WorldSheet("ds140-tanta.tsv", "World production", "mine production, t Ta content", "Tantalum"),
    "Sn": WorldSheet("ds140-tin.tsv", "World production", "mine production, t Sn content", "Tin"),
    "W": WorldSheet("ds140-tungs.tsv", "World production", "mine production, t W content", "Tungsten"),
    "V": WorldSheet("ds140-vanad.tsv", "World production", "mine production, t V content", "Vanadium"),
    "Zn": WorldSheet("ds140-zinc.tsv", "World production", "mine production, t Zn content", "Zinc"),
}  # fmt: skip

# Li content is given only from 1994, so the gross-weight column is kept as well
# (as rows with basis gross_weight) to cover the earlier years.
EXTRA_WORLD_COLUMNS = {
    "Li": (
        "World production (gross weight)",
        "lithium minerals and brine compounds, t gross weight (not Li content)",
        "gross_weight",
    ),
}

# From 2012 the chromium world column jumps from about 8 Mt to 26 Mt, the size of
# world chromite ore output in Mineral Commodity Summaries, so those rows are
# gross weight of chromite, not Cr content.
CHROMITE_GROSS_WEIGHT_FROM = 2012

FIXED_SOURCES = {
    "usgs_ds140": {
        "publisher": "U.S. Geological Survey",
        "title": "Historical statistics for mineral and material commodities in the United States, "
        "Data Series 140 (T.D. Kelly and G.R. Matos, comps.); worksheets as downloaded on "
        "2021-03-16 and kept as TSV in github.com/peterhil/ninhursag-api (data/tsv)",
        "url": "https://www.usgs.gov/centers/national-minerals-information-center/"
        "historical-statistics-mineral-and-material-commodities",
        "year": "2021",
        "licence": "US public domain",
    },
    "usgs_mcs": {
        "publisher": "U.S. Geological Survey",
        "title": "Mineral Commodity Summaries, world production; values for years after each DS140 "
        "edition, appended to the DS140 worksheets by the ninhursag-api maintainer in March 2021",
        "url": "https://www.usgs.gov/centers/national-minerals-information-center/"
        "mineral-commodity-summaries",
        "year": "2021",
        "licence": "US public domain",
    },
    "owid_clio_infra": {
        "publisher": "Our World in Data (data from Clio-Infra and USGS)",
        "title": "Metal production - Clio Infra & USGS (owid-datasets commit "
        "604799e69a7b2d4b96f47ca946b3a0787ed3dde8), Japan rows",
        "url": "https://github.com/owid/owid-datasets/tree/master/datasets/"
        "Metal%20production%20-%20Clio%20Infra%20%26%20USGS",
        "year": "2018",
        "licence": "CC BY 4.0 (OWID); Clio-Infra terms apply to the data",
    },
    "owid_bgs": {
        "publisher": "Our World in Data (data from the British Geological Survey)",
        "title": "Mineral production (BGS (2016)), BGS World Mineral Statistics retrieved by OWID "
        "on 2017-01-19, Japan rows",
        "url": "https://github.com/owid/owid-datasets/tree/master/datasets/"
        "Mineral%20production%20(BGS%20(2016))",
        "year": "2018",
        "licence": "CC BY 4.0 (OWID); BGS terms apply to the data",
    },
    "worldsteel_gcam": {
        "publisher": "World Steel Association, as compiled in JGCRI/gcam-core",
        "title": "Steel imports and exports by country, semi-finished and finished steel products, "
        "from the Steel Statistical Yearbooks 1980, 1989, 1999, 2009 and 2019 "
        "(gcam-core input/gcamdata/inst/extdata/energy/WSA_steel_trade_1970_2018.csv, "
        "commit 8dd36892d629784c5786d1bc89d759a4d5defedd), Japan rows",
        "url": "https://github.com/JGCRI/gcam-core",
        "year": "2022",
        "licence": "ECL-2.0 (repository); worldsteel terms apply to the statistics",
    },
    "nims2008": {
        "publisher": "National Institute for Materials Science (NIMS), Japan",
        "title": "Press release 2008-01-11 on the urban-mine stock of Japan (K. Halada et al.); "
        "stock table as transcribed at earthresources.sakura.ne.jp/er/Rmin_KZ_RM_TK_01.html",
        "url": "https://archive.nims.go.jp/news/press/2008/01/p200801110.html",
        "year": "2008",
        "licence": "not stated; published figures quoted as facts",
    },
}

# Source URLs of the OWID-derived Japanese rows, mapped to the fixed ids above.
OWID_URL_PREFIXES = {
    "https://github.com/owid/owid-datasets/blob/48c9992ae317b35ed327fc36d2af75fe8b3ef7ed/"
    "datasets/Metal%20productio": "owid_clio_infra",
    "https://github.com/owid/owid-datasets/tree/master/datasets/Metal%20production": "owid_clio_infra",
    "https://github.com/owid/owid-datasets/blob/48c9992ae317b35ed327fc36d2af75fe8b3ef7ed/"
    "datasets/Mineral%20product": "owid_bgs",
}

UNIT_NAMES = {
    "t": "t",
    "kt": "kt",
    "Mt": "Mt",
    "kg": "kg",
    "troy oz": "troy_oz",
    "'000 troy oz": "koz",
    "koz": "koz",
    "Moz": "Moz",
}

# Raw flow names that map to a series one to one. Flows missing here (and
# `other`) need a rule in `series_for_row`.
FLOW_TO_SERIES = {
    "mine_production": "mine_production",
    "smelter_production": "smelter_production",
    "refined_production": "smelter_production",
    "crude_steel_production": "crude_steel_production",
    "ore_import": "ore_import",
    "concentrate_import": "ore_import",
    "refined_import": "refined_import",
    "import": "refined_import",
    "scrap_import": "scrap_import",
    "refined_export": "refined_export",
    "export": "refined_export",
    "scrap_export": "scrap_export",
    "domestic_demand": "domestic_demand",
    "refined_consumption": "domestic_demand",
    "apparent_use": "domestic_demand",
    "jm_gross_demand": "domestic_demand",
    "gross_demand": "domestic_demand",
    "net_demand": "domestic_demand",
}

# Notes of `flow=other` rows that name one series without doubt. Each entry is
# (metal, regular expression on the raw note, series, note added to the row).
OTHER_FLOW_RULES = [
    ("Cu", r"refined copper production 生産|銅地金生産", "smelter_production",
     "total refined output, including copper refined from scrap"),
    ("Ag", r"refined silver production 生産 total", "smelter_production",
     "total refined output, including silver refined from scrap and other feed"),
    ("Zn", r"zinc metal \(地金\) production", "smelter_production",
     "total slab zinc output"),
    ("Au", r"refined gold production", "smelter_production",
     "refined output including gold from imported concentrate and scrap"),
    ("Ag", r"silver IMPORTS, JMIA silver balance", "refined_import",
     "Nov-Oct year of the JMIA silver balance"),
    ("Ag", r"DOMESTIC DEMAND 国内需要", "domestic_demand",
     "Nov-Oct year of the JMIA silver balance"),
    ("Au", r"FISCAL 2011 .*gold exports", "refined_export",
     "fiscal-year gold exports, approximate ('some 135 tons')"),
    ("Fe", r"crude steel PRODUCTION", "crude_steel_production", ""),
    ("Fe", r"CALENDAR 2019 all-steel exports", "refined_export",
     "calendar-year steel exports"),
    ("Fe", r"鉄スクラップ輸出量", "scrap_export",
     "calendar-year ferrous scrap exports, read from a document title line"),
    ("Pt", r"Japan took 48% of total western-world platinum demand", "domestic_demand",
     "Japan's total platinum demand, inferred as 48 % of western-world demand"),
]  # fmt: skip

# Rows removed because another file carries the same figure. Each entry is
# (file tag, metal, year, raw flow or None for any flow, value or None for any
# value, reason). File tags: T = japan_trade_<metal>.csv, C = usgs-japan-chapter,
# P = usgs-production, W = worldsteel, R = precious.
OVERLAP_DROPS = [
    ("C", "Cu", 1984, None, None, "Cu 1984-85 refined trade: the same USBM page is kept from T"),
    ("C", "Cu", 1985, None, None, "Cu 1984-85 refined trade: the same USBM page is kept from T"),
    ("P", "Cu", 1984, "refined_consumption", None, "Cu 1984-85 refined consumption: kept from T"),
    ("P", "Cu", 1985, "refined_consumption", None, "Cu 1984-85 refined consumption: kept from T"),
    ("P", "Cu", 2015, "refined_production", "1510000", "Cu FY2015 refined production: JMIA row kept"),
    ("P", "Cu", 2015, "refined_consumption", "930000", "Cu FY2015 consumption: JMIA row kept"),
    ("T", "Cu", 2015, "other", "930000", "Cu FY2015 consumption: JMIA row kept"),
    ("P", "Cu", 2015, "refined_export", "590000", "Cu FY2015 refined exports: JMIA row kept"),
    ("T", "Cu", 2015, "other", "590000", "Cu FY2015 refined exports: JMIA row kept"),
    ("P", "Cu", 2018, "refined_production", "1571268", "Cu FY2018 refined production: JMIA row kept"),
    ("T", "Zn", 2015, "other", "549404", "Zn FY2015-19 refined output: JMIA rows kept from P"),
    ("T", "Zn", 2016, "other", "527818", "Zn FY2015-19 refined output: JMIA rows kept from P"),
    ("T", "Zn", 2017, "other", "524626", "Zn FY2015-19 refined output: JMIA rows kept from P"),
    ("T", "Zn", 2018, "other", "521160", "Zn FY2015-19 refined output: JMIA rows kept from P"),
    ("T", "Zn", 2019, "other", "518210", "Zn FY2015-19 refined output: JMIA rows kept from P"),
    ("P", "Zn", 2018, "refined_production", "521160#press",
     "Zn FY2018 refined output: JMIA row kept, press report dropped"),
    ("P", "Ag", 2009, "mine_production", None, "Ag 2009-10 mine output: JMIA fiscal-year row kept"),
    ("P", "Ag", 2010, "mine_production", None, "Ag 2009-10 mine output: JMIA fiscal-year row kept"),
    ("T", "Fe", 1973, "other", "119000000", "Fe 1973 crude steel: unrounded 119.32 Mt kept"),
    ("W", "Fe", 1990, "mine_production", None, "Fe 1990 iron ore output: 34 kt kept, not the rounded 0"),
]  # fmt: skip

# Demand-by-use rows removed because the same figure is kept from the
# demand-shares file: (file tag, metal, year, value, reason).
DEMAND_OVERLAP_DROPS = [
    ("R", "Ag", 2019, "210", "Ag 2019 photographic demand: kept from the demand-shares table"),
    ("R", "Pt", 2009, "40", "Pt 2009 glass demand: kept from the demand-shares table"),
    ("R", "Pt", 2009, "395", "Pt 2009 autocatalyst demand: kept from the demand-shares table"),
]  # fmt: skip

# Stock-type `other` rows that are whole-economy estimates.
STOCK_NOTE_PATTERN = re.compile(r"^STOCK|全国鉄鋼蓄積量|accumulated 'close to 2,000 t'")

FORECAST_PATTERN = re.compile(r"FORECAST|\bforecast(?! of| implied)|JM forecast", re.IGNORECASE)
PARTIAL_YEAR_PATTERN = re.compile(r"HALF-YEAR|QUARTERLY|Jan-Oct|partial year|Jan-Jun", re.IGNORECASE)
# Fiscal-year markers in a raw note. A marker with a year counts only if that
# year is the row year.
FISCAL_PATTERN = re.compile(r"FY\s?(\d{4})?|FISCAL|\(Apr\s?-\s?Mar\)|Apr \d{4}-Mar|年度")
CALENDAR_PATTERN = re.compile(r"CALENDAR|calendar year|calendar-year|\bCY\d{4}")
NOTE_PERIOD_PREFIX = 50
NOV_OCT_PATTERN = re.compile(r"Nov(?:ember)?\s?\d{0,4}\s?[-–~]\s?Oct|Nov-Oct")
RAW_FILE_MENTION = re.compile(r"\.csv|PROVENANCE|data-candidates|brief", re.IGNORECASE)


@dataclass
class BuildLog:
    """Counts of raw rows skipped, by reason."""

    skipped: Counter = field(default_factory=Counter)

    def skip(self, table: str, reason: str) -> None:
        self.skipped[(table, reason)] += 1

    def report(self) -> None:
        print("Skipped rows by reason:")
        for (table, reason), count in sorted(self.skipped.items()):
            print(f"  {table}: {reason}: {count}")


@dataclass
class SourceRegistry:
    """Source ids of the output, created from raw source URLs on first use."""

    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def fixed(self, source_id: str) -> str:
        self.rows[source_id] = {"source": source_id, **FIXED_SOURCES[source_id]}
        return source_id

    def from_url(self, url: str, title: str) -> str:
        for prefix, source_id in OWID_URL_PREFIXES.items():
            if url.startswith(prefix):
                return self.fixed(source_id)
        host = urlparse(url).hostname or "unknown"
        host = host.removeprefix("www.").rstrip(".")
        digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:6]
        source_id = f"{host.replace('.', '-')}-{digest}"
        if source_id not in self.rows:
            self.rows[source_id] = {
                "source": source_id,
                "publisher": host,
                "title": title,
                "url": url,
                "year": "",
                "licence": "not stated; figures quoted as facts",
            }
        return source_id



def clean_citation(text: str) -> str:
    """Drop the raw files' pointers to their own local copies from a citation."""
    return re.sub(r";?\s*local copy \S*shared/\S*", "", text).strip()

def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def observation_sort_key(row: dict[str, str]) -> tuple:
    return (
        row["region"], row["metal"], int(row["year"]), row["period"], row["series"],
        row["basis"], row["source"], float(row["value"]), row["note"],
    )  # fmt: skip


def decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def clean_note(note: str) -> str:
    """Drop note clauses that name raw files of the collection."""
    parts = [part.strip() for part in re.split(r";\s*", note)]
    kept = [part for part in parts if part and not RAW_FILE_MENTION.search(part)]
    return "; ".join(kept)


def join_notes(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


# --- World production -------------------------------------------------------


def parse_ds140_sheet(path: Path) -> tuple[list[str], list[list[str]]]:
    """Return the header and the year rows of one DS140 worksheet."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header_index = next(i for i, line in enumerate(lines) if line.startswith("Year\t"))
    header = [cell.strip() for cell in lines[header_index].split("\t")]
    rows = []
    for line in lines[header_index + 1 :]:
        cells = [cell.strip() for cell in line.split("\t")]
        if re.fullmatch(r"\d{4}", cells[0]):
            rows.append(cells)
    return header, rows


def is_appended_row(cells: list[str], world_indexes: list[int]) -> bool:
    """Tell whether every non-world column is NA or W (a row added after the edition)."""
    others = [cell for i, cell in enumerate(cells[1:], start=1) if i not in world_indexes]
    return all(cell in ("NA", "", "W") for cell in others)


def world_rows_for_column(
    metal: str, sheet: WorldSheet, column_name: str, measure: str, basis: str,
    sources: SourceRegistry, log: BuildLog, folder: Path,
) -> list[dict[str, str]]:  # fmt: skip
    header, data = parse_ds140_sheet(folder / sheet.file)
    column = header.index(column_name)
    world_indexes = [i for i, name in enumerate(header) if name.startswith("World")]
    rows = []
    seen_years = set()
    for cells in data:
        year = int(cells[0])
        value = cells[column] if column < len(cells) else ""
        appended = is_appended_row(cells, world_indexes)
        if value in ("NA", "", "W"):
            if appended and metal == "Co":
                # NOTE: the appended cobalt values for 2018-2020 sit in the refinery
                # column although they match MCS mine production, so they are not used.
                log.skip("world", "Co appended value in the refinery column")
            else:
                log.skip("world", f"value {value or 'blank'} (not available or withheld)")
            continue
        if year in seen_years:
            log.skip("world", "repeated year row in the worksheet (first one kept)")
            continue
        seen_years.add(year)
        row_basis = basis
        note = f"{sheet.commodity}: {measure}"
        if metal == "Cr" and year >= CHROMITE_GROSS_WEIGHT_FROM:
            row_basis = "gross_weight"
            note = (
                "Chromium: chromite ore, t gross weight (the column changes basis in 2012 "
                "from Cr content to chromite tonnage)"
            )
        if appended:
            source = sources.fixed("usgs_mcs")
            note = join_notes(note, "year added after the DS140 edition, from USGS MCS")
            citation = f"MCS world production, as appended to DS140 {sheet.commodity} worksheet"
        else:
            source = sources.fixed("usgs_ds140")
            citation = f"DS140 {sheet.commodity} worksheet, column '{column_name}'"
        rows.append(
            {
                "region": "WLD",
                "metal": metal,
                "year": str(year),
                "period": "CY",
                "series": "world_production",
                "value": decimal_text(Decimal(value)),
                "unit": "t",
                "basis": row_basis,
                "source": source,
                "citation": citation,
                "confidence": "primary",
                "note": note,
            }
        )
    return rows


def build_world(raw: Path, sources: SourceRegistry, log: BuildLog) -> list[dict[str, str]]:
    folder = raw / "data-candidates" / "usgs-ds140-ninhursag"
    rows = []
    for metal in METALS:
        sheet = WORLD_SHEETS[metal]
        rows += world_rows_for_column(
            metal, sheet, sheet.column, sheet.measure, "metal_content", sources, log, folder
        )
        if metal in EXTRA_WORLD_COLUMNS:
            column_name, measure, basis = EXTRA_WORLD_COLUMNS[metal]
            rows += world_rows_for_column(metal, sheet, column_name, measure, basis, sources, log, folder)
    rows.sort(key=observation_sort_key)
    return rows


# --- Japanese observations --------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    """One row of a japan-trade CSV with the tag of the file it came from."""

    tag: str
    fields: dict[str, str]

    @property
    def metal(self) -> str:
        return self.fields["metal"]

    @property
    def flow(self) -> str:
        return self.fields.get("flow", "")

    @property
    def note(self) -> str:
        return self.fields["note"]


def japan_trade_rows(raw: Path) -> list[RawRow]:
    folder = raw / "data-candidates" / "japan-trade"
    rows = []
    for path in sorted(folder.glob("japan_trade_*.csv")):
        rows += [RawRow("T", fields) for fields in read_csv_rows(path)]
    tagged_folders = [
        ("C", "usgs-japan-chapter"), ("P", "usgs-production"),
        ("W", "worldsteel"), ("R", "precious"),
    ]  # fmt: skip
    for tag, name in tagged_folders:
        for path in sorted((folder / name).glob("*.csv")):
            rows += [RawRow(tag, fields) for fields in read_csv_rows(path)]
    return rows


def is_owid_row(row: RawRow) -> bool:
    return "owid" in row.fields["source_url"]


def overlap_reason(row: RawRow) -> str | None:
    year = int(row.fields["year"])
    value = row.fields["value"]
    if row.fields["confidence"] == "secondary" and row.tag == "P" and row.metal == "Zn":
        value = f"{value}#press"
    for tag, metal, drop_year, flow, drop_value, reason in OVERLAP_DROPS:
        if (tag, metal, drop_year) != (row.tag, row.metal, year):
            continue
        if flow is not None and flow != row.flow:
            continue
        if drop_value is not None and drop_value != value:
            continue
        return reason
    return None


def period_of(row: RawRow) -> str:
    """Return CY, FY or NovOct as named in the raw note or basis.

    Only the start of the note is searched for a calendar or fiscal year, because later
    clauses often compare the figure with a fiscal-year figure of another source.
    """
    if NOV_OCT_PATTERN.search(row.note):
        return "NovOct"
    text = row.note[:NOTE_PERIOD_PREFIX] + " " + row.fields["basis"]
    if CALENDAR_PATTERN.search(text):
        return "CY"
    for match in FISCAL_PATTERN.finditer(text):
        named_year = match.group(1) if match.lastindex else None
        if named_year is None or named_year == row.fields["year"]:
            return "FY"
    return "CY"


def basis_of(raw_basis: str) -> str:
    text = raw_basis.lower()
    if "gross weight" in text and "= cu" not in text:
        return "gross_weight"
    if "not stated" in text or "unclear" in text:
        return "gross_weight"
    return "metal_content"


def series_for_row(row: RawRow) -> tuple[str | None, str]:
    """Return the series of a raw row and a note to add, or None and the skip reason."""
    if row.flow != "other":
        series = FLOW_TO_SERIES.get(row.flow)
        if series is None:
            return None, f"flow '{row.flow}' has no matching series"
        return series, ""
    for metal, pattern, series, note in OTHER_FLOW_RULES:
        if metal == row.metal and re.search(pattern, row.note):
            return series, join_notes("flow 'other' in the raw table; the note names this series", note)
    return None, "flow 'other' without a single matching series"


def observation_from_row(
    row: RawRow, sources: SourceRegistry, log: BuildLog
) -> dict[str, str] | None:
    fields = row.fields
    table = "observations"
    year = int(fields["year"])
    if not 1900 <= year <= 2100:
        log.skip(table, "year outside 1900-2100")
        return None

    if fields["unit"] == "%":
        log.skip(table, "unit '%' (a share, not an observation)")
        return None
    reason = overlap_reason(row)
    if reason is not None:
        log.skip(table, "overlap with another file (one row per group kept)")
        return None

    if FORECAST_PATTERN.search(row.note):
        log.skip(table, "forecast")
        return None
    if PARTIAL_YEAR_PATTERN.search(row.note):
        log.skip(table, "part of a year only")
        return None

    series, extra_note = series_for_row(row)
    if series is None:
        log.skip(table, extra_note)
        return None

    unit = UNIT_NAMES.get(fields["unit"])
    if unit is None:
        log.skip(table, f"unit '{fields['unit']}' has no conversion to tonnes")
        return None
    if is_owid_row(row) and Decimal(fields["value"]) == 0:
        log.skip(table, "OWID value rounded to zero (not a measurement of zero)")
        return None
    if is_owid_row(row) and row.metal in ("Sn", "W", "Fe"):
        extra_note = join_notes(extra_note, "whole-kt (Sn, W) or whole-Mt (Fe) rounding in OWID")

    return {
        "region": "JPN",
        "metal": row.metal,
        "year": str(year),
        "period": period_of(row),
        "series": series,
        "value": decimal_text(Decimal(fields["value"])),
        "unit": unit,
        "basis": basis_of(fields["basis"]),
        "source": sources.from_url(fields["source_url"], fields["source_title"]),
        "citation": clean_citation(fields["source_title"]),
        "confidence": fields["confidence"],
        "note": join_notes(clean_note(fields["note"]), f"raw basis: {fields['basis']}", extra_note),
    }


def stock_from_row(row: RawRow, sources: SourceRegistry) -> dict[str, str]:
    fields = row.fields
    return {
        "region": "JPN",
        "metal": row.metal,
        "year": fields["year"],
        "period": period_of(row),
        "series": "stock",
        "value": decimal_text(Decimal(fields["value"])),
        "unit": UNIT_NAMES[fields["unit"]],
        "basis": basis_of(fields["basis"]),
        "source": sources.from_url(fields["source_url"], fields["source_title"]),
        "citation": clean_citation(fields["source_title"]),
        "confidence": fields["confidence"],
        "note": join_notes(clean_note(fields["note"]), f"raw basis: {fields['basis']}"),
    }


def build_japan(
    raw: Path, sources: SourceRegistry, log: BuildLog
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """Return Japanese observations, demand-by-use rows from `precious`, and stock rows."""
    observations, precious_demand, stocks = [], [], []
    for row in japan_trade_rows(raw):
        if row.flow == "demand_by_use":
            precious_demand.append(row)
            continue
        if row.flow == "other" and STOCK_NOTE_PATTERN.search(row.note):
            stocks.append(stock_from_row(row, sources))
            continue
        observation = observation_from_row(row, sources, log)
        if observation is not None:
            observations.append(observation)
    observations += build_worldsteel_trade(raw, sources)
    observations.sort(key=observation_sort_key)
    stocks.sort(key=observation_sort_key)
    return observations, precious_demand, stocks


def build_worldsteel_trade(raw: Path, sources: SourceRegistry) -> list[dict[str, str]]:
    """Return Japan's steel exports and imports 1970-2021 as Fe observations."""
    path = raw / "data-candidates" / "worldsteel-trade-japan" / "WSA_steel_trade_1970_2018_Japan.csv"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    series_of_metric = {"Exports": "refined_export", "Imports": "refined_import"}
    source = sources.fixed("worldsteel_gcam")
    rows = []
    for fields in csv.DictReader(lines):
        series = series_of_metric[fields["Metric"]]
        for year, value in fields.items():
            if not re.fullmatch(r"\d{4}", year):
                continue
            rows.append(
                {
                    "region": "JPN",
                    "metal": "Fe",
                    "year": year,
                    "period": "CY",
                    "series": series,
                    "value": decimal_text(Decimal(value)),
                    "unit": "kt",
                    "basis": "gross_weight",
                    "source": source,
                    "citation": f"Steel Statistical Yearbook, {fields['Metric']}, Japan, {year}",
                    "confidence": "secondary",
                    "note": "semi-finished and finished steel products, product weight; "
                    "excludes ore, pig iron, ferro-alloys, scrap and steel inside other goods",
                }
            )
    return rows


# --- Demand by use ----------------------------------------------------------

DEMAND_UNITS = {
    "t": ("t", 1, ""),
    "t/yr": ("t", 1, ""),
    "t W": ("t", 1, "t W content"),
    "kg": ("kg", 1, ""),
    "kt": ("kt", 1, ""),
    "kt Cu": ("kt", 1, "kt Cu content"),
    "kt (product weight)": ("kt", 1, "product weight, not metal content"),
    "kt (product)": ("kt", 1, "product weight, not metal content"),
    "Mt": ("Mt", 1, ""),
    "koz": ("koz", 1, ""),
    "troy oz": ("troy_oz", 1, ""),
    "%": ("%", 1, ""),
    "10^4 t (万トン)": ("kt", 10, "printed in 万トン (10^4 t)"),
    "10^4 t": ("kt", 10, "printed in 万トン (10^4 t)"),
    "10^4 t (approx)": ("kt", 10, "printed in 万トン (10^4 t), approximate"),
}


def parse_demand_value(text: str) -> tuple[Decimal | None, str]:
    """Return the number and a note on bounds, or None for a range."""
    text = text.replace(",", "").strip()
    prefixes = {">": "lower bound, printed '>'", "<": "upper bound, printed '<'", "~": "approximate, printed '~'"}
    note = ""
    if text[:1] in prefixes:
        note = prefixes[text[0]]
        text = text[1:]
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return None, ""
    return Decimal(text), note


def demand_row(
    row: RawRow, use: str, sources: SourceRegistry, log: BuildLog
) -> dict[str, str] | None:
    fields = row.fields
    table = "demand_by_use"
    if not re.fullmatch(r"\d{4}", fields["year"]):
        log.skip(table, "year blank or a range (undated)")
        return None
    if FORECAST_PATTERN.search(fields["note"]):
        log.skip(table, "forecast")
        return None
    value, bound_note = parse_demand_value(fields["value"])
    if value is None:
        log.skip(table, "value is a range")
        return None
    unit, factor, unit_note = DEMAND_UNITS[fields["unit"]]
    world = "WORLD" in use or "WORLD" in fields["note"] or "not Japan-specific" in fields["note"]
    return {
        "region": "WLD" if world else "JPN",
        "metal": row.metal,
        "year": fields["year"],
        "period": period_of(row),
        "use": use,
        "value": decimal_text(value * factor),
        "unit": unit,
        "source": sources.from_url(fields["source_url"], fields["source_title"]),
        "citation": clean_citation(fields["source_title"]),
        "confidence": fields["confidence"],
        "note": join_notes(
            clean_note(fields["note"]), bound_note, unit_note, f"raw basis: {fields['basis']}"
        ),
    }


def demand_overlap(row: RawRow) -> bool:
    for tag, metal, year, value, _reason in DEMAND_OVERLAP_DROPS:
        if (tag, metal, str(year), value) == (row.tag, row.metal, row.fields["year"], row.fields["value"]):
            return True
    return False


def build_demand_by_use(
    raw: Path, precious_rows: list[RawRow], sources: SourceRegistry, log: BuildLog
) -> list[dict[str, str]]:
    path = raw / "data-candidates" / "japan-trade" / "demand-shares" / "japan_demand_by_use.csv"
    rows = []
    for fields in read_csv_rows(path):
        row = demand_row(RawRow("D", fields), fields["use"], sources, log)
        if row is not None:
            rows.append(row)
    for raw_row in precious_rows:
        if demand_overlap(raw_row):
            log.skip("demand_by_use", "overlap with the demand-shares table")
            continue
        use = raw_row.note.split(" = ")[0].split(" platinum")[0]
        row = demand_row(raw_row, use, sources, log)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: (r["region"], r["metal"], int(r["year"]), r["period"], r["use"], r["source"], r["value"]))
    return rows


# --- Reference tables -------------------------------------------------------


def build_export_ratios(raw: Path, sources: SourceRegistry) -> tuple[list[dict], list[dict]]:
    rows = read_csv_rows(raw / "reference" / "io_export_ratios_2000.csv")
    source = sources.fixed("nims2008")
    ratios, metal_sectors = [], []
    for fields in rows:
        ratios.append({**fields, "source": source})
        for metal in filter(None, (m.strip() for m in fields["metals"].split(","))):
            metal_sectors.append({"metal": metal, "io_code": fields["io_code"], "source": source})
    ratios.sort(key=lambda r: r["io_code"])
    metal_sectors.sort(key=lambda r: (r["metal"], r["io_code"]))
    return ratios, metal_sectors


def build_nims_stocks(raw: Path, sources: SourceRegistry) -> list[dict[str, str]]:
    rows = []
    source = sources.fixed("nims2008")
    for fields in read_csv_rows(raw / "reference" / "nims2008_stocks.csv"):
        row = {key: value for key, value in fields.items() if key != "source"}
        row["note"] = clean_note(row["note"].replace("(brief: total PGM ~2,500 t)", "(NIMS gave about 2,500 t of PGM in total)"))
        if row["metal"] == "Pt":
            row["metal"] = "PGM"
            row["note"] = join_notes("row printed as Pt", row["note"])
        row["citation"] = fields["source"]
        row["source"] = source
        rows.append(row)
    rows.sort(key=lambda r: r["metal"])
    return rows


# --- Main -------------------------------------------------------------------


def build(raw: Path, out: Path) -> BuildLog:
    log = BuildLog()
    sources = SourceRegistry()
    world = build_world(raw, sources, log)
    observations, precious_demand, stocks = build_japan(raw, sources, log)
    demand = build_demand_by_use(raw, precious_demand, sources, log)
    ratios, metal_sectors = build_export_ratios(raw, sources)
    nims = build_nims_stocks(raw, sources)

    write_csv(out / "world" / "world_production.csv", OBSERVATION_COLUMNS, world)
    write_csv(out / "jp" / "observations.csv", OBSERVATION_COLUMNS, observations)
    write_csv(out / "jp" / "demand_by_use.csv", DEMAND_BY_USE_COLUMNS, demand)
    write_csv(out / "jp" / "io_export_ratios_2000.csv", list(ratios[0].keys()), ratios)
    write_csv(out / "jp" / "metal_sectors.csv", ["metal", "io_code", "source"], metal_sectors)
    write_csv(out / "reference" / "nims2008_stocks.csv", list(nims[0].keys()), nims)
    write_csv(out / "reference" / "stock_estimates.csv", OBSERVATION_COLUMNS, stocks)
    source_rows = sorted(sources.rows.values(), key=lambda r: r["source"])
    write_csv(out / "sources.csv", SOURCE_COLUMNS, source_rows)
    print(
        f"Wrote {len(world)} world rows, {len(observations)} Japanese observations, "
        f"{len(demand)} demand-by-use rows, {len(stocks)} stock estimates, "
        f"{len(source_rows)} sources to {out}"
    )
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, help="folder with data-candidates/ and reference/")
    parser.add_argument("--out", type=Path, default=Path("data"), help="output data folder")
    args = parser.parse_args(argv)
    log = build(args.raw, args.out)
    log.report()

    from uncertainty.data import load_data

    load_data(args.out)
    print("Loaded the output with uncertainty.data.load_data: no problems found.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
