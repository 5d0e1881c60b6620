"""Import UN Comtrade downloads (API version 1 CSV columns) as tidy observation rows.

Rules, applied to every row of every file:

- Only annual goods trade (``typeCode`` C, ``freqCode`` A) with ``flowCode`` M
  or X is read. Re-exports and re-imports (RX, RM) and the other flow codes
  are skipped, because reporters that publish them include them in X and M.
- Only world-partner rows (``partnerCode`` 0) are used, and partner rows are
  never added to them.
- A flow (reporter, year, flow, HS code) is taken from its total row:
  ``partner2Code`` 0, ``motCode`` 0 (all transport modes) and ``customsCode``
  C00 (all customs procedures). Breakdown rows beside a total are skipped; a
  flow given only as breakdowns is reported unusable and never summed.
- ``netWgt`` is in kilograms. An empty ``netWgt``, or a zero ``netWgt`` on a
  row with a positive ``primaryValue``, counts as not reported. Then ``qty`` is
  used if ``qtyUnitCode`` is 8 (kg), and otherwise the row is reported unusable.
- A weight that Comtrade estimated lowers the row's confidence to ``secondary``.
- HS codes are looked up in ``data/hs_codes.csv``: the six-digit code first,
  then its four-digit heading. When a heading and some of its subheadings are
  both present for one flow, the subheadings are used and the heading skipped.
- Codes of one metal, series and basis in the same reporter, year and flow are
  summed into one observation, since the loader takes rows with the same key
  and source as repeats.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from uncertainty.data import BASES, OBSERVATION_COLUMNS, SERIES, SOURCE_COLUMNS, read_table
from uncertainty.distributions import Distribution, is_continuous_family
from uncertainty.errors import InputError, Problem

DEFAULT_HS_TABLE = Path(__file__).resolve().parents[1] / "data" / "hs_codes.csv"

METALS = frozenset(
    {"Al", "Sb", "Cr", "Co", "Cu", "Au", "In", "Fe", "Pb", "Li",
     "Mo", "Ni", "PGM", "RE", "Ag", "Ta", "Sn", "W", "V", "Zn"}
)  # fmt: skip

REQUIRED_COLUMNS = (
    "refYear",
    "reporterCode",
    "flowCode",
    "partnerCode",
    "partner2Code",
    "cmdCode",
    "customsCode",
    "motCode",
    "qtyUnitCode",
    "qty",
    "isQtyEstimated",
    "netWgt",
    "isNetWgtEstimated",
)
HS_TABLE_COLUMNS = (
    "hs_code",
    "description",
    "metal",
    "import_series",
    "export_series",
    "basis",
    "grade_family",
    "grade_parameters",
    "grade_rationale",
    "note",
)
GRADE_COLUMNS = ("hs_code", "metal", "series", "family", "parameters", "rationale", "model_entry")

KILOGRAM_UNIT_CODE = 8
KG_PER_TONNE = 1000.0
WORLD_PARTNER = 0
ALL_CUSTOMS_PROCEDURES = "C00"
SOURCE_PUBLISHER = "United Nations Statistics Division, UN Comtrade database"

# M49 codes of common reporters. Comtrade uses its own codes for some
# countries (842 USA, 251 FRA, 757 CHE, 699 IND, 579 NOR) instead of the
# ISO 3166 numeric code. ``reporterISO``, when the download includes it, takes precedence.
REPORTER_ISO3 = {
    36: "AUS", 76: "BRA", 124: "CAN", 152: "CHL", 156: "CHN", 180: "COD",
    251: "FRA", 276: "DEU", 360: "IDN", 380: "ITA", 392: "JPN", 410: "KOR",
    484: "MEX", 528: "NLD", 579: "NOR", 604: "PER", 608: "PHL", 643: "RUS",
    699: "IND", 710: "ZAF", 724: "ESP", 752: "SWE", 757: "CHE", 826: "GBR",
    842: "USA",
}  # fmt: skip

# Skip reasons, counted in the summary. Rows skipped for a reason in
# UNUSABLE_REASONS are also listed one by one with file and line.
NOT_ANNUAL_GOODS = "not annual goods trade (typeCode C, freqCode A)"
OTHER_FLOW = "flow code other than M or X"
PARTNER_ROW = "partner row (only the world total is used)"
BREAKDOWN_ROW = "breakdown by transport mode, customs procedure or second partner"
REPEATED_FLOW = "repeat of a flow already read"
NOT_IN_TABLE = "HS code not in the HS table"
NOT_IMPORTED = "HS code in the table but without a series (see its note)"
HEADING_WITH_SUBHEADINGS = "four-digit heading given together with its subheadings"
BREAKDOWN_WITHOUT_TOTAL = "breakdown without a total row"
NO_WEIGHT = "no usable weight"
UNKNOWN_REPORTER = "reporter without an ISO3 code"
INCOMPLETE_SUM = "another HS code of the same observation has no usable weight"
INVALID_FIELD = "invalid number"
UNUSABLE_REASONS = (BREAKDOWN_WITHOUT_TOTAL, NO_WEIGHT, INCOMPLETE_SUM, UNKNOWN_REPORTER, INVALID_FIELD)


@dataclass(frozen=True)
class HsCode:
    """One row of the HS table: which metal and series an HS code feeds."""

    code: str
    description: str
    metal: str
    import_series: str
    export_series: str
    basis: str
    grade: Distribution | None
    grade_parameters: str
    note: str

    def series_for(self, flow: str) -> str:
        """Return the series of flow ``M`` or ``X`` (empty if the code is not imported)."""
        return self.import_series if flow == "M" else self.export_series


@dataclass(frozen=True)
class SkippedRow:
    """A row of a download that contributes to no observation."""

    file: str
    line: int
    reason: str
    detail: str = ""


@dataclass
class _Flow:
    """A world-total row chosen for one (reporter, year, flow, HS code)."""

    file: str
    line: int
    region: str
    year: int
    flow: str
    hs: HsCode
    cmd_code: str
    row: pd.Series
    tonnes: float = math.nan
    estimated: bool = False
    from_qty: bool = False


@dataclass
class ImportResult:
    """Observations built from Comtrade downloads, with the account of every row read."""

    observations: pd.DataFrame
    sources: pd.DataFrame
    grades: pd.DataFrame
    rows_read: int
    rows_used: int
    skipped: list[SkippedRow] = field(default_factory=list)
    codes_not_in_table: Counter = field(default_factory=Counter)


def _parse_grade(path: Path, line: int, row: pd.Series, problems: list[Problem]) -> Distribution | None:
    family = row["grade_family"].strip()
    if not family:
        return None
    location = f"row {line}"
    if not is_continuous_family(family):
        problems.append(Problem(str(path), location, "a continuous scipy.stats family in grade_family", repr(family)))
        return None
    parameters: dict[str, float] = {}
    for item in row["grade_parameters"].split():
        name, _, text = item.partition("=")
        try:
            parameters[name] = float(text)
        except ValueError:
            problems.append(Problem(str(path), location, "grade_parameters as name=number pairs", repr(item)))
            return None
    if not row["grade_rationale"].strip():
        problems.append(Problem(str(path), location, "a grade_rationale for the grade", "an empty cell"))
    try:
        grade = Distribution(family, parameters, row["grade_rationale"])
    except TypeError as error:
        problems.append(Problem(str(path), location, f"parameters of scipy.stats.{family}", str(error)))
        return None
    if not grade.has_valid_parameters():
        problems.append(Problem(str(path), location, f"valid parameters of scipy.stats.{family}", repr(parameters)))
        return None
    lower, upper = grade.support()
    if lower < 0 or upper > 1:
        problems.append(Problem(str(path), location, "a grade supported within [0, 1]", f"[{lower}, {upper}]"))
    return grade


def load_hs_table(path: Path = DEFAULT_HS_TABLE) -> dict[str, HsCode]:
    """Read and check the HS table, and return its rows by HS code.

    Raises ``InputError`` listing every defective row.
    """
    path = Path(path)
    table = _read_csv(path, HS_TABLE_COLUMNS)
    problems: list[Problem] = []
    codes: dict[str, HsCode] = {}
    for index, row in table.iterrows():
        line = index + 2
        location = f"row {line}"
        code = row["hs_code"].strip()
        if not re.fullmatch(r"\d{4}|\d{6}", code):
            problems.append(Problem(str(path), location, "a four- or six-digit HS code", repr(code)))
            continue
        if code in codes:
            problems.append(Problem(str(path), location, "each HS code once", repr(code)))
            continue
        if row["metal"] and row["metal"] not in METALS:
            problems.append(Problem(str(path), location, f"a metal in {sorted(METALS)} or an empty cell", repr(row["metal"])))
        series = (row["import_series"], row["export_series"])
        for name in series:
            if name and name not in SERIES:
                problems.append(Problem(str(path), location, f"a series in {sorted(SERIES)}", repr(name)))
        if any(series) and not row["metal"]:
            problems.append(Problem(str(path), location, "a metal for a code with a series", "an empty cell"))
        if any(series) and row["basis"] not in BASES:
            problems.append(Problem(str(path), location, f"a basis in {sorted(BASES)}", repr(row["basis"])))
        grade = _parse_grade(path, line, row, problems)
        if row["basis"] == "gross_weight" and grade is None:
            problems.append(Problem(str(path), location, "a grade for a gross-weight code", "no grade_family"))
        codes[code] = HsCode(
            code=code,
            description=row["description"],
            metal=row["metal"],
            import_series=row["import_series"],
            export_series=row["export_series"],
            basis=row["basis"],
            grade=grade,
            grade_parameters=row["grade_parameters"],
            note=row["note"],
        )
    problems.extend(_check_one_grade_per_series(path, codes))
    if problems:
        raise InputError(problems)
    return codes


def _check_one_grade_per_series(path: Path, codes: dict[str, HsCode]) -> list[Problem]:
    """Reject gross-weight codes of one metal and series with different grades.

    Their tonnages are summed into one observation, to which a model applies
    one grade, so the codes must share it.
    """
    first: dict[tuple[str, str], HsCode] = {}
    problems = []
    for hs in codes.values():
        if hs.basis != "gross_weight" or not hs.import_series:
            continue
        key = (hs.metal, hs.import_series)
        other = first.setdefault(key, hs)
        if other is not hs and (other.grade.family, other.grade.parameters) != (hs.grade.family, hs.grade.parameters):
            problems.append(
                Problem(
                    str(path),
                    f"hs_code {hs.code}",
                    f"the grade of {other.code}, since both are gross-weight {hs.import_series} of {hs.metal}",
                    f"{hs.grade.family} {hs.grade_parameters}",
                )
            )
    return problems


def lookup_code(table: dict[str, HsCode], cmd_code: str) -> HsCode | None:
    """Return the table row of ``cmd_code``: its own row, else its four-digit heading."""
    if cmd_code in table:
        return table[cmd_code]
    if len(cmd_code) == 6:
        return table.get(cmd_code[:4])
    return None


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    return read_table(path, required)


def _integer_code(text: str) -> int | None:
    """Parse a code written as ``0``, ``0.0`` or `` 842 ``; return None if it is not a whole number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def _number(text: str) -> float | None:
    """Parse a number; return None for an empty cell and NaN for text that is not a number."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan


def _is_true(text: str) -> bool:
    return text.strip().lower() in {"true", "1"}


def _reporter_iso3(row: pd.Series) -> str | None:
    iso = row.get("reporterISO", "").strip()
    if re.fullmatch(r"[A-Z]{3}", iso):
        return iso
    code = _integer_code(row["reporterCode"])
    return REPORTER_ISO3.get(code) if code is not None else None


def _is_total_row(row: pd.Series) -> bool:
    return (
        _integer_code(row["partner2Code"]) == WORLD_PARTNER
        and _integer_code(row["motCode"]) == 0
        and row["customsCode"].strip() == ALL_CUSTOMS_PROCEDURES
    )


def _set_weight(flow: _Flow) -> str | None:
    """Set the flow's tonnes from ``netWgt``, else from ``qty`` in kg; return why neither fits.

    A zero ``netWgt`` on a row with a positive trade value counts as not
    reported: Comtrade writes 0 in some downloads where no weight was given.
    """
    row = flow.row
    net_weight = _number(row["netWgt"])
    value = _number(row.get("primaryValue", ""))
    if net_weight is not None and (math.isnan(net_weight) or net_weight < 0):
        return f"{INVALID_FIELD}: netWgt {row['netWgt']!r}"
    weight_missing = net_weight is None or (net_weight == 0 and value is not None and value > 0)
    if not weight_missing:
        flow.tonnes = net_weight / KG_PER_TONNE
        flow.estimated = _is_true(row["isNetWgtEstimated"])
        return None

    quantity = _number(row["qty"])
    unit = _integer_code(row["qtyUnitCode"])
    if unit != KILOGRAM_UNIT_CODE:
        return f"{NO_WEIGHT}: netWgt {row['netWgt']!r} and qty unit code {row['qtyUnitCode']!r} is not kg ({KILOGRAM_UNIT_CODE})"
    if quantity is None or math.isnan(quantity) or quantity <= 0:
        return f"{NO_WEIGHT}: netWgt {row['netWgt']!r} and qty {row['qty']!r} kg"
    flow.tonnes = quantity / KG_PER_TONNE
    flow.estimated = _is_true(row["isQtyEstimated"])
    flow.from_qty = True
    return None


def _screen_row(
    path: Path, line: int, row: pd.Series, table: dict[str, HsCode], result: ImportResult
) -> _Flow | None:
    """Return a candidate flow for a world-partner row of a mapped code, or record why not."""

    def skip(reason: str, detail: str = "") -> None:
        result.skipped.append(SkippedRow(str(path), line, reason, detail))

    if row.get("typeCode", "C") != "C" or row.get("freqCode", "A") != "A":
        skip(NOT_ANNUAL_GOODS)
        return None
    flow_code = row["flowCode"].strip()
    if flow_code not in ("M", "X"):
        skip(OTHER_FLOW, flow_code)
        return None
    partner = _integer_code(row["partnerCode"])
    if partner is None:
        skip(INVALID_FIELD, f"partnerCode {row['partnerCode']!r}")
        return None
    if partner != WORLD_PARTNER:
        skip(PARTNER_ROW)
        return None
    cmd_code = row["cmdCode"].strip()
    hs = lookup_code(table, cmd_code)
    if hs is None:
        result.codes_not_in_table[cmd_code] += 1
        skip(NOT_IN_TABLE, cmd_code)
        return None
    if not hs.series_for(flow_code):
        skip(NOT_IMPORTED, f"{cmd_code}: {hs.note}")
        return None
    year = _integer_code(row["refYear"])
    if year is None:
        skip(INVALID_FIELD, f"refYear {row['refYear']!r}")
        return None
    region = _reporter_iso3(row)
    if region is None:
        skip(
            UNKNOWN_REPORTER,
            f"reporterCode {row['reporterCode']!r} with an empty reporterISO; download with descriptions included",
        )
        return None
    return _Flow(str(path), line, region, year, flow_code, hs, cmd_code, row)


def _choose_totals(candidates: list[_Flow], result: ImportResult) -> list[_Flow]:
    """Keep one total row per (reporter, year, flow, HS code); record the others."""
    groups: dict[tuple, list[_Flow]] = {}
    for flow in candidates:
        groups.setdefault((flow.region, flow.year, flow.flow, flow.cmd_code), []).append(flow)
    chosen = []
    for key, flows in groups.items():
        totals = [flow for flow in flows if _is_total_row(flow.row)]
        if not totals:
            for flow in flows:
                result.skipped.append(
                    SkippedRow(flow.file, flow.line, BREAKDOWN_WITHOUT_TOTAL, "reporter {}, year {}, flow {}, HS {}".format(*key))
                )
            continue
        chosen.append(totals[0])
        for flow in flows:
            if flow is totals[0]:
                continue
            reason = REPEATED_FLOW if _is_total_row(flow.row) else BREAKDOWN_ROW
            result.skipped.append(SkippedRow(flow.file, flow.line, reason, f"total taken from {Path(totals[0].file).name} line {totals[0].line}"))
    return chosen


def _drop_headings_with_subheadings(flows: list[_Flow], result: ImportResult) -> list[_Flow]:
    present = {(flow.region, flow.year, flow.flow, flow.cmd_code) for flow in flows}
    kept = []
    for flow in flows:
        has_subheading = len(flow.cmd_code) == 4 and any(
            key[:3] == (flow.region, flow.year, flow.flow) and len(key[3]) == 6 and key[3].startswith(flow.cmd_code)
            for key in present
        )
        if has_subheading:
            result.skipped.append(SkippedRow(flow.file, flow.line, HEADING_WITH_SUBHEADINGS, flow.cmd_code))
        else:
            kept.append(flow)
    return kept


def _complete_groups(flows: list[_Flow], result: ImportResult) -> dict[tuple, list[_Flow]]:
    """Group flows into observations; drop every group in which some row has no usable weight.

    A sum that lacks one of its HS codes would understate the flow, so such a
    group is reported unusable as a whole.
    """
    groups: dict[tuple, list[_Flow]] = {}
    for flow in flows:
        key = (flow.region, flow.hs.metal, flow.year, flow.hs.series_for(flow.flow), flow.hs.basis)
        groups.setdefault(key, []).append(flow)

    complete = {}
    for key, group in groups.items():
        problems = {id(flow): _set_weight(flow) for flow in group}
        failed = [flow for flow in group if problems[id(flow)] is not None]
        if not failed:
            complete[key] = group
            continue
        failed_codes = ", ".join(sorted(flow.cmd_code for flow in failed))
        for flow in group:
            problem = problems[id(flow)]
            if problem is None:
                result.skipped.append(
                    SkippedRow(flow.file, flow.line, INCOMPLETE_SUM, f"HS {flow.cmd_code} sums with HS {failed_codes}")
                )
            else:
                reason, _, detail = problem.partition(": ")
                result.skipped.append(SkippedRow(flow.file, flow.line, reason, detail))
    return complete


def source_id(path: Path) -> str:
    """Return the source id of a download: its file stem and a short hash of its bytes."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
    return f"comtrade-{stem}-{digest}"


def _observation_row(flows: list[_Flow], source_of: dict[str, str]) -> dict[str, object]:
    first = flows[0]
    codes = sorted({flow.cmd_code for flow in flows})
    tonnes = sum(flow.tonnes for flow in flows)

    notes = []
    if len(flows) > 1:
        parts = ", ".join(f"HS {flow.cmd_code} {flow.tonnes:.6g} t" for flow in sorted(flows, key=lambda f: f.cmd_code))
        notes.append(f"sum of {parts}")
    estimated = sorted({flow.cmd_code for flow in flows if flow.estimated})
    if estimated:
        notes.append(f"weight estimated by Comtrade for HS {', '.join(estimated)}")
    from_qty = sorted({flow.cmd_code for flow in flows if flow.from_qty})
    if from_qty:
        notes.append(f"netWgt not reported, qty in kg used for HS {', '.join(from_qty)}")
    if first.hs.basis == "gross_weight":
        notes.append("gross weight of ore or concentrate; the model applies the grade")
    lines = "; ".join(f"{Path(flow.file).name} line {flow.line}" for flow in flows)
    notes.append(f"from {lines}")

    return {
        "region": first.region,
        "metal": first.hs.metal,
        "year": first.year,
        # NOTE: every row is written as a calendar year. Comtrade's reporter metadata
        # states whether a reporter's annual figures follow another reference year.
        "period": "CY",
        "series": first.hs.series_for(first.flow),
        "value": f"{tonnes:.12g}",
        "unit": "t",
        "basis": first.hs.basis,
        # A sum over codes from several files cites the first file; the note lists every line.
        "source": source_of[first.file],
        "citation": f"UN Comtrade, HS {'+'.join(codes)}, reporter {first.region}, flow {first.flow}",
        "confidence": "secondary" if estimated else "primary",
        "note": "; ".join(notes),
    }


def _grade_rows(flows: list[_Flow]) -> list[dict[str, object]]:
    rows = {}
    for flow in flows:
        hs = flow.hs
        if hs.grade is None:
            continue
        parameters = ", ".join(f"{name} = {value:g}" for name, value in hs.grade.parameters.items())
        rationale = hs.grade.reason.replace('"', "'")
        rows[(hs.code, flow.region)] = {
            "region": flow.region,
            "hs_code": hs.code,
            "metal": hs.metal,
            "series": f"{hs.import_series} {hs.export_series}",
            "family": hs.grade.family,
            "parameters": hs.grade_parameters,
            "rationale": hs.grade.reason,
            "model_entry": f'grade = {{ family = "{hs.grade.family}", {parameters}, rationale = "{rationale}" }}',
        }
    return list(rows.values())


def _source_rows(paths: list[Path], tables: list[pd.DataFrame], source_of: dict[str, str]) -> pd.DataFrame:
    rows = []
    for path, table in zip(paths, tables):
        years = sorted({text for text in table["refYear"] if text})
        span = f"{years[0]}-{years[-1]}" if years else "no years"
        codes = ", ".join(sorted(set(table["cmdCode"])))
        rows.append(
            {
                "source": source_of[str(path)],
                "publisher": SOURCE_PUBLISHER,
                "title": f"UN Comtrade download {path.name} (HS {codes}; {span})",
                "url": "",
                "year": "",
                "licence": "UN Comtrade terms of use",
            }
        )
    return pd.DataFrame(rows, columns=list(SOURCE_COLUMNS))


def import_files(paths: list[Path], hs_table: Path = DEFAULT_HS_TABLE) -> ImportResult:
    """Read Comtrade downloads and build observation, source and grade tables.

    Raises ``InputError`` naming the file if a file is missing, unreadable or
    lacks a required column, or if the HS table is invalid.
    """
    table = load_hs_table(hs_table)
    paths = [Path(path) for path in paths]
    tables = [_read_csv(path, REQUIRED_COLUMNS) for path in paths]
    source_of = {str(path): source_id(path) for path in paths}
    result = ImportResult(
        observations=pd.DataFrame(columns=list(OBSERVATION_COLUMNS)),
        sources=_source_rows(paths, tables, source_of),
        grades=pd.DataFrame(columns=["region", *GRADE_COLUMNS]),
        rows_read=sum(len(frame) for frame in tables),
        rows_used=0,
    )

    candidates = []
    for path, frame in zip(paths, tables):
        for index, row in frame.iterrows():
            flow = _screen_row(path, index + 2, row, table, result)
            if flow is not None:
                candidates.append(flow)
    flows = _drop_headings_with_subheadings(_choose_totals(candidates, result), result)

    groups = _complete_groups(flows, result)
    usable = [flow for group in groups.values() for flow in group]
    result.rows_used = len(usable)
    rows = [_observation_row(group, source_of) for _, group in sorted(groups.items())]
    result.observations = pd.DataFrame(rows, columns=list(OBSERVATION_COLUMNS))
    result.grades = pd.DataFrame(_grade_rows(usable), columns=["region", *GRADE_COLUMNS])
    return result


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            frame.to_csv(stream, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_import(result: ImportResult, out_dir: Path, boundary: str | None = None) -> list[Path]:
    """Write ``<boundary>/observations_comtrade.csv``, its ore grades and ``sources_comtrade.csv``.

    Without ``boundary`` each reporter gets the folder of its lower-case ISO3
    code. Rows of an existing ``sources_comtrade.csv`` are kept unless the same
    source id is written again; the observation and grade files are replaced.
    Returns the paths written.

    Raises ``InputError`` if no row was usable, or if ``boundary`` is given and
    the rows come from more than one reporter.
    """
    out_dir = Path(out_dir)
    observations = result.observations
    if observations.empty:
        raise InputError(
            [Problem("input files", "rows", "a usable world-partner row of an HS code with a series", "none; see the summary above")]
        )
    regions = sorted(set(observations["region"]))
    if boundary is not None and len(regions) > 1:
        raise InputError(
            [
                Problem(
                    "--boundary",
                    "argument",
                    f"rows of one reporter for the folder {boundary!r}",
                    f"reporters {regions}; import one reporter at a time or omit --boundary",
                )
            ]
        )

    written = []
    for region in regions:
        folder = out_dir / (boundary or region.lower())
        rows = observations[observations["region"] == region]
        grades = result.grades[result.grades["region"] == region][list(GRADE_COLUMNS)]
        for frame, name in ((rows, "observations_comtrade.csv"), (grades, "ore_grades_comtrade.csv")):
            _write_csv_atomic(frame, folder / name)
            written.append(folder / name)

    sources_path = out_dir / "sources_comtrade.csv"
    sources = result.sources
    if sources_path.is_file():
        previous = _read_csv(sources_path, SOURCE_COLUMNS)
        previous = previous[~previous["source"].isin(sources["source"])]
        sources = pd.concat([previous[list(SOURCE_COLUMNS)], sources], ignore_index=True)
    _write_csv_atomic(sources, sources_path)
    written.append(sources_path)
    return written


def format_summary(result: ImportResult, max_listed: int = 20) -> str:
    """Return the account of an import: rows read, used and skipped by reason."""
    lines = [
        f"read {result.rows_read} rows",
        f"used {result.rows_used} rows, written as {len(result.observations)} observation rows",
    ]
    counts = Counter(skipped.reason for skipped in result.skipped)
    if counts:
        lines.append(f"skipped {len(result.skipped)} rows:")
        lines.extend(f"  {count:5d}  {reason}" for reason, count in counts.most_common())
    if result.codes_not_in_table:
        listed = ", ".join(f"{code} ({count})" for code, count in sorted(result.codes_not_in_table.items()))
        lines.append(f"HS codes not in the HS table, with row counts: {listed}")
    unusable = sorted(
        (skipped for skipped in result.skipped if skipped.reason in UNUSABLE_REASONS),
        key=lambda skipped: (skipped.file, skipped.line),
    )
    if unusable:
        lines.append("unusable rows:")
        for skipped in unusable[:max_listed]:
            lines.append(f"  {skipped.file} line {skipped.line}: {skipped.reason}: {skipped.detail}")
        if len(unusable) > max_listed:
            lines.append(f"  ... and {len(unusable) - max_listed} more")
    return "\n".join(lines)
