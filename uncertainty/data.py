"""Load and check the tidy CSV data folder described in docs/data-format.md.

Every check of a file runs in one pass, so an ``InputError`` lists all defects
of that file at once. Locations are ``row N`` with N the line number in the file
(the header is line 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from uncertainty.errors import InputError, Problem

TROY_OUNCE_TONNES = 31.1034768e-6

UNIT_TO_TONNES: dict[str, float] = {
    "t": 1.0,
    "kt": 1e3,
    "Mt": 1e6,
    "kg": 1e-3,
    "troy_oz": TROY_OUNCE_TONNES,
    "koz": TROY_OUNCE_TONNES * 1e3,
    "Moz": TROY_OUNCE_TONNES * 1e6,
}
TROY_OUNCE_UNITS = frozenset({"troy_oz", "koz", "Moz"})

SERIES = frozenset(
    {
        "world_production",
        "mine_production",
        "smelter_production",
        "crude_steel_production",
        "ore_import",
        "ore_export",
        "refined_import",
        "scrap_import",
        "refined_export",
        "scrap_export",
        "domestic_demand",
        "stock",
    }
)
PERIODS = frozenset({"CY", "FY", "NovOct"})
CONFIDENCES = frozenset({"primary", "secondary", "inferred"})
BASES = frozenset({"metal_content", "gross_weight"})
MIN_YEAR, MAX_YEAR = 1800, 2100

OBSERVATION_COLUMNS = (
    "region",
    "metal",
    "year",
    "period",
    "series",
    "value",
    "unit",
    "basis",
    "source",
    "citation",
    "confidence",
    "note",
)
OBSERVATION_KEY = ("region", "metal", "year", "period", "series", "basis", "source")
SOURCE_COLUMNS = ("source", "publisher", "title", "url", "year", "licence")
EXPORT_RATIO_COLUMNS = (
    "io_code",
    "sector_en",
    "metals",
    "direct_export_ratio",
    "induced_export_ratio",
    "source",
)
METAL_SECTOR_COLUMNS = ("metal", "io_code", "source")
REFERENCE_COLUMNS = ("metal", "stock_t", "source")

# Line number of the first data row: the header is line 1.
FIRST_DATA_LINE = 2


@dataclass(frozen=True)
class InputData:
    """All tables of a data folder for one boundary, checked and with units converted."""

    world: pd.DataFrame
    observations: pd.DataFrame
    export_ratios: pd.DataFrame
    metal_sectors: pd.DataFrame
    reference: pd.DataFrame
    sources: pd.DataFrame
    stock_estimates: pd.DataFrame = field(default_factory=pd.DataFrame)
    demand_by_use: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_table(path: Path, required_columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file as text columns and check that the required columns exist.

    Raises ``InputError`` if the file is missing, unreadable or lacks a column.
    Empty cells are kept as empty strings.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError([Problem(str(path), "file", "an existing CSV file", "no such file")])
    try:
        # utf-8-sig also reads files saved with a byte-order mark, as spreadsheets write them.
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError([Problem(str(path), "file", "a readable UTF-8 CSV file", str(error))]) from error
    missing = [column for column in required_columns if column not in table.columns]
    if missing:
        raise InputError(
            [
                Problem(str(path), "header", f"column {column!r}", f"columns {list(table.columns)!r}")
                for column in missing
            ]
        )
    return table


def _row_location(index: int) -> str:
    return f"row {index + FIRST_DATA_LINE}"


def _parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _check_source(path: Path, table: pd.DataFrame, source_ids: set[str], problems: list[Problem]) -> None:
    for index, source in enumerate(table["source"]):
        if source not in source_ids:
            problems.append(
                Problem(str(path), _row_location(index), "a source id listed in sources.csv", repr(source))
            )


def _check_observation_row(path: Path, index: int, row: pd.Series, problems: list[Problem]) -> float:
    """Check one observation row and return its value in tonnes (NaN if invalid)."""
    location = _row_location(index)

    def add(expected: str, found: str) -> None:
        problems.append(Problem(str(path), location, expected, found))

    year_text = row["year"].strip()
    if not year_text.lstrip("-").isdigit():
        add("an integer year", repr(row["year"]))
    elif not MIN_YEAR <= int(year_text) <= MAX_YEAR:
        add(f"a year in {MIN_YEAR}-{MAX_YEAR}", year_text)
    if row["series"] not in SERIES:
        add(f"a series in {sorted(SERIES)}", repr(row["series"]))
    if row["period"] not in PERIODS:
        add(f"a period in {sorted(PERIODS)}", repr(row["period"]))
    if row["confidence"] not in CONFIDENCES:
        add(f"a confidence in {sorted(CONFIDENCES)}", repr(row["confidence"]))
    if row["basis"] not in BASES:
        add(f"a basis in {sorted(BASES)}", repr(row["basis"]))
    if not row["region"] or not row["metal"]:
        add("a region code and a metal", f"region {row['region']!r}, metal {row['metal']!r}")

    factor = UNIT_TO_TONNES.get(row["unit"])
    if factor is None:
        add(f"a unit in {sorted(UNIT_TO_TONNES)}", repr(row["unit"]))
    elif row["unit"] in TROY_OUNCE_UNITS and row["basis"] == "gross_weight":
        # Ore and product tonnages are never printed in troy ounces, so such a
        # row most likely carries the wrong unit or the wrong basis.
        add("a unit of t, kt, Mt or kg for a gross_weight row", f"unit {row['unit']!r}")
    value = _parse_number(row["value"])
    if value is None:
        add("a numeric value", repr(row["value"]))
    elif not math.isfinite(value):
        add("a finite value", repr(row["value"]))
    elif value < 0:
        add("a value of zero or more", repr(row["value"]))
    elif factor is not None:
        return value * factor
    return math.nan


def _load_observations(path: Path, source_ids: set[str]) -> pd.DataFrame:
    """Read an observation file, check every row and add the column ``tonnes``."""
    table = read_table(path, OBSERVATION_COLUMNS)
    problems: list[Problem] = []
    tonnes = [_check_observation_row(path, index, row, problems) for index, row in table.iterrows()]
    _check_source(path, table, source_ids, problems)

    first_line_of_key: dict[tuple, int] = {}
    for index, key in enumerate(table[list(OBSERVATION_KEY)].itertuples(index=False, name=None)):
        if key in first_line_of_key:
            problems.append(
                Problem(
                    str(path),
                    _row_location(index),
                    f"one row per ({', '.join(OBSERVATION_KEY)})",
                    f"a repeat of line {first_line_of_key[key]}: {key!r}",
                )
            )
        else:
            first_line_of_key[key] = index + FIRST_DATA_LINE
    if problems:
        raise InputError(problems)

    table["year"] = table["year"].astype(int)
    table["value"] = table["value"].astype(float)
    table["tonnes"] = tonnes
    return table


def _load_numeric_table(
    path: Path,
    required: Sequence[str],
    numeric: Sequence[str],
    source_ids: set[str],
    maximum: float = math.inf,
) -> pd.DataFrame:
    """Read a reference table, check sources and convert the named columns to float.

    Every value of the ``numeric`` columns must be finite and in [0, maximum].
    The table's ``attrs["path"]`` keeps the file path for later messages.
    """
    table = read_table(path, required)
    problems: list[Problem] = []
    expected = "a finite number of zero or more" if maximum == math.inf else f"a number in [0, {maximum:g}]"
    for column in numeric:
        for index, text in enumerate(table[column]):
            value = _parse_number(text)
            if value is None or not math.isfinite(value) or not 0 <= value <= maximum:
                problems.append(Problem(str(path), _row_location(index), f"{expected} in {column!r}", repr(text)))
    _check_source(path, table, source_ids, problems)
    if problems:
        raise InputError(problems)
    for column in numeric:
        table[column] = table[column].astype(float)
    table.attrs["path"] = str(path)
    return table


def _load_sources(path: Path) -> pd.DataFrame:
    table = read_table(path, SOURCE_COLUMNS)
    problems = []
    seen: dict[str, int] = {}
    for index, source in enumerate(table["source"]):
        if not source:
            problems.append(Problem(str(path), _row_location(index), "a source id", "an empty cell"))
        elif source in seen:
            problems.append(
                Problem(str(path), _row_location(index), "a unique source id", f"{source!r}, also on line {seen[source]}")
            )
        else:
            seen[source] = index + FIRST_DATA_LINE
    if problems:
        raise InputError(problems)
    return table


def _observation_files(folder: Path, stem: str) -> list[Path]:
    """Return ``stem.csv`` and every ``stem_*.csv`` of ``folder``, in name order."""
    main = folder / f"{stem}.csv"
    extra = sorted(folder.glob(f"{stem}_*.csv"))
    return ([main] if main.is_file() else []) + extra


def _concat_observations(paths: Sequence[Path], source_ids: set[str]) -> pd.DataFrame:
    """Load several observation files and reject a key repeated across them.

    Rows of different sources for the same quantity are kept side by side;
    only a row whose whole key (source included) repeats is an error.
    """
    tables = []
    problems: list[Problem] = []
    for path in paths:
        try:
            table = _load_observations(path, source_ids)
        except InputError as error:
            # Check the other files too, so one run lists every defect.
            problems.extend(error.problems)
            continue
        table["file"] = str(path)
        table["line"] = range(FIRST_DATA_LINE, FIRST_DATA_LINE + len(table))
        tables.append(table)
    if problems:
        raise InputError(problems)
    if not tables:
        return pd.DataFrame(columns=[*OBSERVATION_COLUMNS, "tonnes", "file", "line"])
    combined = pd.concat(tables, ignore_index=True)
    repeated = combined[combined.duplicated(list(OBSERVATION_KEY), keep=False)]
    problems = []
    for _, group in repeated.groupby(list(OBSERVATION_KEY), sort=False):
        first = group.iloc[0]
        for _, row in group.iloc[1:].iterrows():
            problems.append(
                Problem(
                    row["file"],
                    f"row {row['line']}",
                    f"one row per ({', '.join(OBSERVATION_KEY)}) across data folders",
                    f"a repeat of {first['file']} row {first['line']}",
                )
            )
    if problems:
        raise InputError(problems)

    # The engine conditions each walk on its anchors in table order, and the
    # square root of the posterior covariance depends on that order through
    # rounding. A fixed order makes the draws of a seed independent of the
    # order of rows and files.
    return combined.sort_values(list(OBSERVATION_KEY), kind="stable", ignore_index=True)


def load_data(data_dir: Path | Sequence[Path], boundary: str = "jp") -> InputData:
    """Load one or several data folders for one boundary (a subfolder such as ``jp``).

    Observation files (``world/world_production*.csv``,
    ``<boundary>/observations*.csv``) and source lists (``sources*.csv``) of
    every folder are combined. The export ratios, metal-to-sector table and
    reference stocks come from the first folder that has them, so a user's
    folder of extra observations needs only its observations and sources.

    Raises ``InputError`` naming the file and rows of every defect found in
    every file, once the source lists are readable.
    """
    folders = [Path(data_dir)] if isinstance(data_dir, (str, Path)) else [Path(d) for d in data_dir]
    missing = [folder for folder in folders if not folder.is_dir()]
    if missing:
        raise InputError([Problem(str(folder), "folder", "a data folder", "no such folder") for folder in missing])

    # The first folder carries the shipped layout, so its sources.csv must exist.
    # Without this check a missing file would surface as one unknown-source
    # problem per observation row.
    if not (folders[0] / "sources.csv").is_file():
        raise InputError([Problem(str(folders[0]), "sources.csv", "a source list", "no such file")])
    source_files = [path for folder in folders for path in _observation_files(folder, "sources")]
    sources = pd.concat([_load_sources(path) for path in source_files], ignore_index=True)
    repeated = sources[sources["source"].duplicated()]
    if not repeated.empty:
        raise InputError(
            [Problem(", ".join(map(str, source_files)), "source", "source ids unique across files", repr(source)) for source in repeated["source"]]
        )
    source_ids = set(sources["source"])

    # The first folder is the base data set and must have both main files;
    # further folders may add observations only.
    required = [folders[0] / "world" / "world_production.csv", folders[0] / boundary / "observations.csv"]
    absent = [path for path in required if not path.is_file()]
    if absent:
        raise InputError(
            [Problem(str(path), "file", "an observation file of the base data folder", "no such file") for path in absent]
        )
    # Every file is checked even after a defective one, and all problems are
    # raised together at the end.
    problems: list[Problem] = []

    def collect(load: Callable, *args: Any, **kwargs: Any) -> Any:
        try:
            return load(*args, **kwargs)
        except InputError as error:
            problems.extend(error.problems)
            return None

    world_files = [path for folder in folders for path in _observation_files(folder / "world", "world_production")]
    world = collect(_concat_observations, world_files, source_ids)
    boundary_files = [path for folder in folders for path in _observation_files(folder / boundary, "observations")]
    observations = collect(_concat_observations, boundary_files, source_ids)

    def first_existing(relative: str) -> Path:
        for folder in folders:
            if (folder / relative).is_file():
                return folder / relative
        return folders[0] / relative

    data_dir = first_existing(f"{boundary}/io_export_ratios_2000.csv").parents[1]
    boundary_dir = data_dir / boundary
    export_ratios = collect(
        _load_numeric_table,
        boundary_dir / "io_export_ratios_2000.csv",
        EXPORT_RATIO_COLUMNS,
        ("direct_export_ratio", "induced_export_ratio"),
        source_ids,
        maximum=1.0,
    )
    metal_sectors = collect(_load_numeric_table, boundary_dir / "metal_sectors.csv", METAL_SECTOR_COLUMNS, (), source_ids)
    reference = collect(
        _load_numeric_table, first_existing("reference/nims2008_stocks.csv"), REFERENCE_COLUMNS, ("stock_t",), source_ids
    )

    stock_path = first_existing("reference/stock_estimates.csv")
    stock_estimates = pd.DataFrame()
    if stock_path.is_file():
        stock_estimates = collect(_load_observations, stock_path, source_ids)
    demand_path = boundary_dir / "demand_by_use.csv"
    demand_by_use = pd.DataFrame()
    if demand_path.is_file():
        demand_by_use = collect(
            _load_numeric_table,
            demand_path,
            ("region", "metal", "year", "use", "value", "unit", "source"),
            ("value",),
            source_ids,
        )
    if problems:
        raise InputError(problems)

    return InputData(
        world=world,
        observations=observations,
        export_ratios=export_ratios,
        metal_sectors=metal_sectors,
        reference=reference,
        sources=sources,
        stock_estimates=stock_estimates,
        demand_by_use=demand_by_use,
    )
