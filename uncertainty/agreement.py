"""Agreement of a run with published estimates: ``urbanmine compare``.

Each published figure in ``reference/agreement_references.csv`` is set beside
the same quantity of the run (the stock at the end of a year, or the net
import of a year, which is the ``increment`` variable). A ``conversion``
factor with its uncertainty turns the published basis (steel weight,
platinum only, gross demand) into the run's quantity. The module also writes
shares of world reserves, a significant-figure verdict per metal and,
optionally, an importance-sampling update of the run's draws on chosen
references (Pareto-smoothed, as in Vehtari et al. 2024, JMLR 25(72)).

A chunked run (``chunked.nc``) keeps every draw of the reference-year stock
only. Its other stocks are compared through histogram quantiles, and
quantities that need every draw's flows are not compared.
"""

from __future__ import annotations

import math
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr

from uncertainty.chunked_report import CHUNKED_MARKER, is_chunked_run
from uncertainty.data import UNIT_TO_TONNES, read_table
from uncertainty.distributions import Distribution, is_continuous_family
from uncertainty.errors import InputError, Problem

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz

REFERENCE_FILE = Path("reference") / "agreement_references.csv"
NIMS_FILE = Path("reference") / "nims2008_stocks.csv"
REFERENCE_COLUMNS = (
    "id",
    "metal",
    "quantity",
    "year",
    "period",
    "value",
    "unit",
    "basis",
    "conversion",
    "conversion_rationale",
    "error_sd_log",
    "source",
    "citation",
    "note",
)
NIMS_COLUMNS = ("metal", "stock_t", "world_reserves_t", "share_of_reserves", "source")
QUANTITIES = ("stock", "net_import")
PERIODS = ("CY", "FY")

#: Probability mass of every interval that compare reports.
INTERVAL_MASS = 0.95
#: Pareto k-hat above which importance weights are unreliable (Vehtari et al. 2024).
KHAT_THRESHOLD = 0.7
#: Draws that describe a reference's converted value, from a generator seeded by its id.
REFERENCE_DRAWS = 20_000
#: Largest number of significant figures the verdict tries.
MAX_FIGURES = 15
#: Share of a Japanese fiscal year (April-March) that falls in the next calendar year.
FISCAL_YEAR_SHIFT = 0.25

_CONVERSION_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Reference:
    """One published figure to compare with the run.

    ``year`` is None when the publication states no year; the comparison then
    uses the run's reference year. ``conversion`` is None for an exact factor
    ``factor`` (1 when the bases agree).
    """

    id: str
    metal: str
    quantity: str
    year: int | None
    period: str
    tonnes: float
    basis: str
    conversion_text: str
    conversion: Distribution | None
    factor: float
    error_sd_log: float
    source: str
    citation: str
    note: str

    def log_factor_moments(self) -> tuple[float, float]:
        """Return the mean and standard deviation of the log of the conversion factor."""
        if self.conversion is None:
            return math.log(self.factor), 0.0
        return conversion_log_moments(self.conversion)


@dataclass
class UpdateResult:
    """Importance weights of one metal's draws after an update on references.

    ``weights`` are normalised Pareto-smoothed weights over the draws.
    ``ess`` is the effective sample size 1 / sum(w^2), and ``khat`` is the
    Pareto shape estimate of the raw weights.
    """

    metal: str
    reference_ids: list[str]
    weights: np.ndarray
    ess: float
    khat: float
    reliable: bool = field(init=False)

    def __post_init__(self) -> None:
        self.reliable = bool(self.khat <= KHAT_THRESHOLD)


# ---------------------------------------------------------------------------
# Reading the reference table


def parse_conversion(text: str) -> tuple[Distribution | None, float]:
    """Parse a conversion cell: a number (exact factor) or ``family(key=value, ...)``.

    ``family`` is a continuous distribution of scipy.stats, for example
    ``uniform(loc=0.95, scale=0.04)`` or ``lognorm(s=0.2, scale=0.8)``. An
    empty cell means the exact factor 1. Raises ``ValueError`` with the reason.
    """
    text = text.strip()
    if not text:
        return None, 1.0
    try:
        factor = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"an exact factor must be a positive number, got {text!r}")
        return None, factor

    match = _CONVERSION_PATTERN.match(text)
    if match is None:
        raise ValueError(f"expected a number or family(key=value, ...), got {text!r}")
    family, arguments = match.groups()
    if not is_continuous_family(family):
        raise ValueError(f"{family!r} is not a continuous distribution of scipy.stats")
    parameters: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in arguments.split(","))):
        key, _, value = part.partition("=")
        try:
            parameters[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"expected key=number in {text!r}, got {part!r}") from None
    try:
        distribution = Distribution(family, parameters, reason="conversion")
    except TypeError as error:
        raise ValueError(f"invalid parameters for {family}: {error}") from None
    if not distribution.has_valid_parameters():
        raise ValueError(f"parameters outside the domain of {family}: {parameters!r}")
    if distribution.support()[0] < 0:
        raise ValueError(f"a conversion factor must be positive, but {text!r} can draw values below 0")
    return distribution, 1.0


def conversion_log_moments(distribution: Distribution, points: int = 4001) -> tuple[float, float]:
    """Return the mean and sd of ``log X`` for a positive conversion factor ``X``.

    Computed on a midpoint grid of the inverse CDF, so it is exact for a
    log-normal factor up to the grid error and a close estimate otherwise.
    """
    uniforms = (np.arange(points) + 0.5) / points
    logs = np.log(distribution.ppf(uniforms))
    return float(logs.mean()), float(logs.std())


def load_source_ids(data_dir: Path) -> set[str]:
    """Return the source ids listed in ``sources.csv`` and ``sources_*.csv`` of ``data_dir``."""
    paths = [data_dir / "sources.csv", *sorted(data_dir.glob("sources_*.csv"))]
    ids: set[str] = set()
    for path in paths:
        if path.is_file():
            ids.update(read_table(path, ("source",))["source"])
    return ids


def load_references(path: Path, source_ids: set[str]) -> list[Reference]:
    """Read and check the reference table, reporting every defect at once.

    Raises ``InputError`` naming the file, row and column of each defect.
    """
    table = read_table(path, REFERENCE_COLUMNS)
    problems: list[Problem] = []
    references: list[Reference] = []
    seen: dict[str, int] = {}
    for index, row in table.iterrows():
        line = f"row {index + 2}"

        def add(expected: str, found: str, location: str = line) -> None:
            problems.append(Problem(str(path), location, expected, found))

        ident = row["id"].strip()
        if not ident:
            add("an id", "an empty cell")
        elif ident in seen:
            add("a unique id", f"{ident!r}, also on row {seen[ident]}")
        else:
            seen[ident] = index + 2
        if row["quantity"] not in QUANTITIES:
            add(f"a quantity in {list(QUANTITIES)}", repr(row["quantity"]))
        year: int | None = None
        if row["year"].strip():
            if row["year"].strip().isdigit():
                year = int(row["year"])
            else:
                add("an integer year or an empty cell", repr(row["year"]))
            if row["period"] not in PERIODS:
                add(f"a period in {list(PERIODS)} for a dated figure", repr(row["period"]))
        unit = UNIT_TO_TONNES.get(row["unit"])
        if unit is None:
            add(f"a unit in {sorted(UNIT_TO_TONNES)}", repr(row["unit"]))
        value = _positive_number(row["value"])
        if value is None:
            add("a positive number in 'value'", repr(row["value"]))
        error_sd = _positive_number(row["error_sd_log"], allow_zero=True)
        if error_sd is None:
            add("a number of zero or more in 'error_sd_log'", repr(row["error_sd_log"]))
        try:
            conversion, factor = parse_conversion(row["conversion"])
        except ValueError as error:
            add("a valid conversion", str(error), f"{line}, column 'conversion'")
            conversion, factor = None, math.nan
        for source in row["source"].split(";"):
            if source.strip() not in source_ids:
                add("source ids listed in sources*.csv, separated by ';'", repr(source))
        if problems:
            continue
        references.append(
            Reference(
                id=ident,
                metal=row["metal"],
                quantity=row["quantity"],
                year=year,
                period=row["period"] if year is not None else "",
                tonnes=value * unit,
                basis=row["basis"],
                conversion_text=row["conversion"].strip() or "1",
                conversion=conversion,
                factor=factor,
                error_sd_log=error_sd,
                source=row["source"],
                citation=row["citation"],
                note=row["note"],
            )
        )
    if problems:
        raise InputError(problems)
    return references


def _positive_number(text: str, allow_zero: bool = False) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        return None
    return value


def load_nims_table(path: Path) -> pd.DataFrame:
    """Read the NIMS 2008 table with stocks and world reserves as floats, indexed by metal."""
    table = read_table(path, NIMS_COLUMNS)
    problems = []
    for column in ("stock_t", "world_reserves_t", "share_of_reserves"):
        for index, text in enumerate(table[column]):
            if _positive_number(text) is None:
                problems.append(Problem(str(path), f"row {index + 2}", f"a positive number in {column!r}", repr(text)))
    if problems:
        raise InputError(problems)
    for column in ("stock_t", "world_reserves_t", "share_of_reserves"):
        table[column] = table[column].astype(float)
    return table.set_index("metal")


# ---------------------------------------------------------------------------
# The run's quantity for one reference


def _metal_key(dataset: xr.Dataset, metal: str) -> str | None:
    """Return the run's metal whose symbol or NIMS comparison key is ``metal``."""
    symbols = [str(value) for value in dataset["metal"].values]
    if metal in symbols:
        return metal
    if "comparison_key" in dataset:
        for symbol, key in zip(symbols, dataset["comparison_key"].values):
            if str(key) == metal:
                return symbol
    return None


def _locate(dataset: xr.Dataset, reference: Reference) -> tuple[str | None, int, str]:
    """Return the run's metal and the year of a reference, or None and the reason it is not in the run."""
    year = reference.year if reference.year is not None else int(dataset.attrs["reference_year"])
    metal = _metal_key(dataset, reference.metal)
    if metal is None:
        return None, year, "metal not in run"
    years = dataset["year"].values
    if year not in years:
        return None, year, f"year outside run ({years[0]}-{years[-1]})"
    return metal, year, ""


def _next_year(dataset: xr.Dataset, year: int) -> int:
    """Return the year whose increment ends a fiscal year: the next one, or ``year`` at the grid's end."""
    return year + 1 if year + 1 in dataset["year"].values else year


def _compared_status(reference: Reference, year: int, next_year: int) -> str:
    if reference.year is None:
        return "compared at the run's reference year (no year stated)"
    if reference.period == "FY" and next_year == year:
        return "compared; the quarter past the grid's last year is extrapolated"
    return "compared"


def quantity_draws(dataset: xr.Dataset, reference: Reference) -> tuple[np.ndarray | None, int, str]:
    """Return the run's draws of the reference's quantity, the year used and a status.

    The stock is at the end of the year. A fiscal year (April to March) ends a
    quarter into the next calendar year, so its stock adds a quarter of the
    next year's increment, or of the same year's when the grid ends there.
    Its net import mixes three quarters of one year with a quarter of the
    next. The draws are None when the metal or year is not in the run, and
    the status gives the reason.
    """
    metal, year, problem = _locate(dataset, reference)
    if metal is None:
        return None, year, problem

    # A year without world production has no modelled flows: the run counts them as zero.
    if reference.quantity == "net_import" and "world_production" in dataset:
        if np.isnan(dataset["world_production"].sel(metal=metal, year=year).item()):
            return None, year, f"no world production in {year}: the run's flows of that year are not modelled"

    increment = dataset["increment"].sel(metal=metal)
    next_year = _next_year(dataset, year)
    if reference.quantity == "stock":
        values = dataset["stock"].sel(metal=metal, year=year).values.astype(float)
        if reference.period == "FY":
            values = values + FISCAL_YEAR_SHIFT * increment.sel(year=next_year).values
    else:
        values = increment.sel(year=year).values.astype(float)
        if reference.period == "FY":
            values = (1 - FISCAL_YEAR_SHIFT) * values + FISCAL_YEAR_SHIFT * increment.sel(year=next_year).values
    return values, year, _compared_status(reference, year, next_year)


@dataclass(frozen=True)
class RunQuantity:
    """The run's value of one reference's quantity.

    ``draws`` contains one value per draw. A chunked run keeps per-draw stocks
    of its reference year only, so for other years it gives ``quantiles``
    read from its histograms instead. These are the median and the 95 %
    interval's lower and upper bound, with the exact
    ``negative_draw_fraction`` where the run has it. Both are None when the
    run cannot give the quantity, and ``status`` gives the reason. In a chunked run,
    ``per_draw_missing`` says why a reference without ``draws`` cannot be
    used by ``--update``.
    """

    year: int
    status: str
    draws: np.ndarray | None = None
    quantiles: tuple[float, float, float] | None = None
    negative_draw_fraction: float = math.nan
    per_draw_missing: str = ""

    @property
    def quantiles_from(self) -> str:
        """``draws``, ``histogram``, or an empty string when nothing was computed."""
        if self.draws is not None:
            return "draws"
        return "histogram" if self.quantiles is not None else ""


def run_quantity(dataset: xr.Dataset, reference: Reference) -> RunQuantity:
    """Return the run's value of the reference's quantity, from a run held in memory or a chunked run."""
    if is_chunked_run(dataset):
        return chunked_quantity(dataset, reference)
    draws, year, status = quantity_draws(dataset, reference)
    return RunQuantity(year, status, draws)


def chunked_quantity(dataset: xr.Dataset, reference: Reference) -> RunQuantity:
    """Return a chunked run's value of the reference's quantity.

    A calendar-year stock at the run's reference year comes from every draw
    (``reference_stock``), exactly as in a run held in memory. A stock at
    any other year, or at the end of a fiscal year, comes from the histogram
    quantiles. A net import needs every draw's flows of one year, which a
    chunked run does not keep, so it is not computed.
    """
    metal, year, problem = _locate(dataset, reference)
    if metal is None:
        return RunQuantity(year, problem)
    reference_year = int(dataset.attrs["reference_year"])
    chunked_limit = (
        f"a chunked run keeps per-draw stocks at the end of its reference year {reference_year} only; "
        "run 'urbanmine run' without --chunk"
    )
    if reference.quantity != "stock":
        return RunQuantity(
            year,
            f"not compared: a net import needs every draw's flows of {year}, but {chunked_limit} to compare it",
            per_draw_missing=f"a net import needs every draw's flows of {year}, but {chunked_limit} to update on it",
        )

    next_year = _next_year(dataset, year)
    status = _compared_status(reference, year, next_year)
    if year == reference_year and reference.period != "FY":
        return RunQuantity(year, status, draws=dataset["reference_stock"].sel(metal=metal).values.astype(float))

    period = "fiscal year" if reference.period == "FY" else "calendar year"
    per_draw_missing = f"the stock at the end of {period} {year}, but {chunked_limit} to update on it"
    weights = _stock_year_weights(dataset, year, reference.period, next_year)
    quantiles = _histogram_stock_quantiles(dataset, metal, weights)
    if not all(math.isfinite(value) for value in quantiles):
        return RunQuantity(
            year,
            "not compared: a quantile fell outside the histogram range fixed by the first chunk; "
            "run again with a larger --chunk",
            per_draw_missing=per_draw_missing,
        )
    negative = math.nan
    if reference.period == "FY":
        status += "; the fiscal-year quantiles are interpolated between the year-end quantiles"
    else:
        negative = float(dataset["negative_draw_fraction"].sel(metal=metal, year=year))
    return RunQuantity(
        year, status, quantiles=quantiles, negative_draw_fraction=negative, per_draw_missing=per_draw_missing
    )


def _stock_year_weights(dataset: xr.Dataset, year: int, period: str, next_year: int) -> dict[int, float]:
    """Return the year-end stocks, with weights, whose sum is the stock at the end of ``year``'s period.

    A fiscal-year stock is the year-end stock plus a quarter of the next
    year's increment, and an increment is the difference of two year-end
    stocks (the stock before the grid's first year is zero).
    """
    weights = {year: 1.0}
    if period == "FY":
        weights[next_year] = weights.get(next_year, 0.0) + FISCAL_YEAR_SHIFT
        if next_year - 1 in dataset["year"].values:
            weights[next_year - 1] = weights.get(next_year - 1, 0.0) - FISCAL_YEAR_SHIFT
    return weights


def _histogram_stock_quantiles(
    dataset: xr.Dataset, metal: str, weights: dict[int, float]
) -> tuple[float, float, float]:
    """Return the median and 95 % interval of a weighted sum of year-end stocks from histogram quantiles.

    The quantiles of a sum are the sum of the quantiles only when the stocks
    rise and fall together across draws.
    NOTE: consecutive year-end stocks nearly do, so a fiscal-year stock read
    this way is close to, but not exactly, the quantile of the per-draw sum.
    """
    tail = (1 - INTERVAL_MASS) / 2
    quantile = dataset["stock_quantile"].sel(metal=metal)
    result = []
    for probability in (0.5, tail, 1 - tail):
        at_probability = quantile.sel(quantile=probability, method="nearest", tolerance=1e-9)
        result.append(sum(weight * float(at_probability.sel(year=year)) for year, weight in weights.items()))
    median, lower, upper = result
    return median, lower, upper


def converted_reference_draws(reference: Reference, size: int = REFERENCE_DRAWS) -> np.ndarray:
    """Draw the reference converted to the run's quantity: value x factor x log-normal error.

    The generator is seeded from the reference id, so the same table gives the
    same intervals in every call.
    """
    generator = np.random.default_rng(zlib.crc32(reference.id.encode()))
    if reference.conversion is None:
        factor = np.full(size, reference.factor)
    else:
        factor = reference.conversion.sample(generator, size)
    error = np.exp(reference.error_sd_log * generator.standard_normal(size))
    return reference.tonnes * factor * error


# ---------------------------------------------------------------------------
# Interval arithmetic


def weighted_quantiles(values: np.ndarray, probs, weights: np.ndarray | None = None) -> np.ndarray:
    """Return quantiles of ``values`` at ``probs``, optionally with importance ``weights``.

    Without weights this is ``numpy.quantile`` (linear interpolation). With
    weights each sorted value sits at the midpoint of its weight's share of
    the cumulative distribution.
    """
    values = np.asarray(values, dtype=float)
    if weights is None:
        return np.quantile(values, probs)
    order = np.argsort(values)
    sorted_values = values[order]
    sorted_weights = np.asarray(weights, dtype=float)[order]
    cumulative = (np.cumsum(sorted_weights) - 0.5 * sorted_weights) / sorted_weights.sum()
    return np.interp(probs, cumulative, sorted_values)


def interval_summary(values: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float, float]:
    """Return the median and the equal-tailed 95 % interval (lower, upper)."""
    tail = (1 - INTERVAL_MASS) / 2
    lower, median, upper = weighted_quantiles(values, [tail, 0.5, 1 - tail], weights)
    return float(median), float(lower), float(upper)


def half_width_distance(value: float, median: float, lower: float, upper: float) -> float:
    """Return the signed distance of ``value`` from the median in interval half-widths.

    Above the median the unit is ``upper - median``, below it ``median -
    lower``, so the distance is within [-1, 1] exactly when the value lies
    inside the interval. A zero half-width gives an infinite distance.
    """
    offset = value - median
    half = upper - median if offset >= 0 else median - lower
    if offset == 0:
        return 0.0
    if half <= 0:
        return math.copysign(math.inf, offset)
    return offset / half


def significant_figures_supported(median: float, lower: float, upper: float) -> int:
    """Return the number of significant figures of ``median`` that the interval supports.

    This is the largest k such that [lower, upper] lies inside median +/-
    half a unit of the k-th significant digit of the median (for 6,800 and
    k = 2, +/- 50), or 0 when not even the first digit is supported. The
    digits are those of the median as it is: 9.96 has its first digit in the
    units, although it rounds to 10. Bounds closer than 1e-12 relative are
    counted as equal, so that decimal round-off does not change the verdict.
    """
    if not all(math.isfinite(v) for v in (median, lower, upper)) or median == 0:
        return 0
    exponent = math.floor(math.log10(abs(median)))
    tolerance = 1e-12 * abs(median)
    supported = 0
    for figures in range(1, MAX_FIGURES + 1):
        half_unit = 0.5 * 10.0 ** (exponent - figures + 1)
        if median - half_unit - tolerance <= lower and upper <= median + half_unit + tolerance:
            supported = figures
        else:
            break
    return supported


def round_to_figures(value: float, figures: int) -> float:
    """Round ``value`` to ``figures`` significant figures (NaN for 0 figures)."""
    if figures < 1 or not math.isfinite(value):
        return math.nan
    if value == 0:
        return 0.0
    exponent = math.floor(math.log10(abs(value)))
    return round(value, figures - 1 - exponent)


# ---------------------------------------------------------------------------
# Importance-sampling update


def log_likelihood(quantity: np.ndarray, reference: Reference) -> np.ndarray:
    """Return the log-likelihood of each draw's quantity given the published figure.

    The model is log(reference x factor) = log(quantity) + error, with the
    error normal of variance ``error_sd_log``^2 plus the variance of the log
    factor. A draw whose quantity is zero or negative cannot produce a
    positive published figure and gets -inf.

    NOTE: a factor that is not log-normal (for example uniform) is replaced by
    a log-normal one with the same mean and sd of its log.
    """
    mean_log_factor, sd_log_factor = reference.log_factor_moments()
    sd = math.hypot(reference.error_sd_log, sd_log_factor)
    if sd == 0:
        raise ValueError(f"reference {reference.id} has neither an error nor an uncertain factor")
    observed = math.log(reference.tonnes) + mean_log_factor
    result = np.full(quantity.shape, -np.inf)
    positive = quantity > 0
    result[positive] = scipy.stats.norm.logpdf(observed, loc=np.log(quantity[positive]), scale=sd)
    return result


def importance_weights(log_weights: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Smooth log importance weights with PSIS and return (weights, ess, khat).

    ``weights`` are normalised to sum to 1; ``ess`` is 1 / sum(w^2). Draws
    with log-weight -inf keep weight zero and are left out of the Pareto fit.
    Raises ``ValueError`` when no draw has a finite log-weight.
    """
    log_weights = np.asarray(log_weights, dtype=float)
    finite = np.isfinite(log_weights)
    if not finite.any():
        raise ValueError("every draw has zero likelihood; the update is impossible with these draws")
    with warnings.catch_warnings():
        # arviz 0.23 warns on import paths and on k-hat itself; the caller warns once instead.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        smoothed, khat = arviz.psislw(log_weights[finite] - log_weights[finite].max())
    weights = np.zeros(log_weights.shape)
    weights[finite] = np.exp(smoothed - smoothed.max())
    weights /= weights.sum()
    ess = float(1.0 / np.sum(weights**2))
    return weights, ess, float(khat)


def update_metal(dataset: xr.Dataset, references: list[Reference], metal: str) -> UpdateResult:
    """Weight one metal's draws by the likelihood of the given references.

    Metals are drawn from independent random streams, so an update on one
    metal's references leaves the other metals' draws as they are. Warns with
    ``RuntimeWarning`` when k-hat exceeds 0.7.
    """
    total = np.zeros(dataset.sizes["draw"])
    for reference in references:
        total = total + log_likelihood(run_quantity(dataset, reference).draws, reference)
    weights, ess, khat = importance_weights(total)
    ids = [reference.id for reference in references]
    if khat > KHAT_THRESHOLD:
        warnings.warn(
            f"update of {metal} on {', '.join(ids)} is unreliable: Pareto k-hat {khat:.2f} > "
            f"{KHAT_THRESHOLD} (effective sample size {ess:.0f} of {total.size} draws); "
            "run more draws with 'urbanmine run --draws N' or drop a reference",
            RuntimeWarning,
            stacklevel=2,
        )
    return UpdateResult(metal, ids, weights, ess, khat)


def select_update_references(
    dataset: xr.Dataset, references: list[Reference], ids: list[str], file: str
) -> dict[str, list[Reference]]:
    """Group the references named in ``--update`` by the run's metal.

    Raises ``InputError`` naming every id that is unknown, whose metal or
    year is not in the run, or, in a chunked run, whose quantity the run has
    no per-draw values of.
    """
    by_id = {reference.id: reference for reference in references}
    problems: list[Problem] = []
    groups: dict[str, list[Reference]] = {}
    for ident in ids:
        reference = by_id.get(ident)
        if reference is None:
            problems.append(Problem(file, "--update", "ids of rows in the reference table", f"unknown id {ident!r}"))
            continue
        quantity = run_quantity(dataset, reference)
        if quantity.draws is not None:
            groups.setdefault(_metal_key(dataset, reference.metal), []).append(reference)
        elif quantity.per_draw_missing:
            expected = "a reference with a value in every draw"
            problems.append(Problem(file, "--update", expected, f"{ident!r}: {quantity.per_draw_missing}"))
        else:
            problems.append(Problem(file, "--update", "a reference the run can compare", f"{ident!r}: {quantity.status}"))
    if problems:
        raise InputError(problems)
    return groups


# ---------------------------------------------------------------------------
# Tables


#: Columns of agreement.csv. A chunked run adds ``quantiles_from`` after ``status``.
AGREEMENT_COLUMNS = [
    "id", "role", "metal", "quantity", "year", "period", "status", "median", "eti95_lower", "eti95_upper",
    "reference_value", "conversion", "reference_converted_median", "reference_converted_lower",
    "reference_converted_upper", "inside", "distance_half_widths", "intervals_overlap",
    "negative_draw_fraction", "posterior_median", "posterior_eti95_lower", "posterior_eti95_upper",
    "posterior_inside", "basis", "error_sd_log", "source", "unit",
]


def agreement_table(
    dataset: xr.Dataset,
    references: list[Reference],
    updates: dict[str, UpdateResult] | None = None,
) -> pd.DataFrame:
    """Set every reference beside the run's median and 95 % interval of the same quantity.

    ``inside``, ``distance_half_widths`` and ``intervals_overlap`` compare the
    converted reference with the prior run (before any update). Posterior
    columns are filled for metals in ``updates`` on rows with a value in every
    draw. ``role`` is ``update`` for a reference used there, which is then no
    independent check. A chunked run adds the column ``quantiles_from``. It is
    ``draws`` where a row's interval comes from every draw, ``histogram``
    where it comes from the histogram quantiles, and empty where nothing was
    computed.
    """
    updates = updates or {}
    used = {ident for result in updates.values() for ident in result.reference_ids}
    chunked = is_chunked_run(dataset)
    rows = []
    for reference in references:
        quantity = run_quantity(dataset, reference)
        result = updates.get(_metal_key(dataset, reference.metal))
        row = _agreement_row(reference, quantity, "update" if reference.id in used else "check", result)
        if chunked:
            row["quantiles_from"] = quantity.quantiles_from
        rows.append(row)
    columns = list(AGREEMENT_COLUMNS)
    if chunked:
        columns.insert(columns.index("status") + 1, "quantiles_from")
    return pd.DataFrame(rows).reindex(columns=columns)


def _run_interval(quantity: RunQuantity) -> tuple[float, float, float, float] | None:
    """Return the run's median, 95 % interval and share of negative draws, or None without a value."""
    if quantity.draws is not None:
        median, lower, upper = interval_summary(quantity.draws)
        return median, lower, upper, float(np.mean(quantity.draws < 0))
    if quantity.quantiles is not None:
        median, lower, upper = quantity.quantiles
        return median, lower, upper, quantity.negative_draw_fraction
    return None


def _agreement_row(reference: Reference, quantity: RunQuantity, role: str, update: UpdateResult | None) -> dict:
    """Build one row of the agreement table, leaving the run's columns empty when it has no value."""
    converted = converted_reference_draws(reference)
    ref_median, ref_lower, ref_upper = interval_summary(converted)
    row = {
        "id": reference.id,
        "role": role,
        "metal": reference.metal,
        "quantity": reference.quantity,
        "year": quantity.year,
        "period": reference.period or "none stated",
        "status": quantity.status,
        "reference_value": reference.tonnes,
        "conversion": reference.conversion_text,
        "reference_converted_median": ref_median,
        "reference_converted_lower": ref_lower,
        "reference_converted_upper": ref_upper,
    }
    interval = _run_interval(quantity)
    if interval is not None:
        median, lower, upper, negative = interval
        row.update(
            median=median,
            eti95_lower=lower,
            eti95_upper=upper,
            inside=bool(lower <= ref_median <= upper),
            distance_half_widths=half_width_distance(ref_median, median, lower, upper),
            intervals_overlap=bool(ref_lower <= upper and lower <= ref_upper),
            negative_draw_fraction=negative,
        )
    if update is not None and quantity.draws is not None:
        post_median, post_lower, post_upper = interval_summary(quantity.draws, update.weights)
        row.update(
            posterior_median=post_median,
            posterior_eti95_lower=post_lower,
            posterior_eti95_upper=post_upper,
            posterior_inside=bool(post_lower <= ref_median <= post_upper),
        )
    row.update(basis=reference.basis, error_sd_log=reference.error_sd_log, source=reference.source, unit="t")
    return row


def _reference_year_stock(dataset: xr.Dataset) -> xr.DataArray:
    """Return every draw's stock at the end of the reference year, in a run held in memory or a chunked run."""
    if is_chunked_run(dataset):
        return dataset["reference_stock"]
    return dataset["stock"].sel(year=int(dataset.attrs["reference_year"]))


def _nims_key(dataset: xr.Dataset, metal: str) -> str:
    # A chunked.nc without comparison keys (older runs) matches metals by symbol.
    if "comparison_key" in dataset:
        return str(dataset["comparison_key"].sel(metal=metal).item())
    return metal


def verdict_table(
    dataset: xr.Dataset, nims: pd.DataFrame, updates: dict[str, UpdateResult] | None = None
) -> pd.DataFrame:
    """Tell per metal how many significant figures the reference-year interval supports.

    NIMS quoted two significant figures. ``nims_inside`` is true when its
    value lies inside the run's 95 % interval. Posterior columns are added
    for updated metals.
    """
    updates = updates or {}
    stock = _reference_year_stock(dataset)
    rows = []
    for metal in (str(m) for m in dataset["metal"].values):
        draws = stock.sel(metal=metal).values
        median, lower, upper = interval_summary(draws)
        figures = significant_figures_supported(median, lower, upper)
        key = _nims_key(dataset, metal)
        published = float(nims["stock_t"].get(key, math.nan))
        row = {
            "metal": metal,
            "year": int(dataset.attrs["reference_year"]),
            "median": median,
            "eti95_lower": lower,
            "eti95_upper": upper,
            "relative_half_width_95": (upper - lower) / 2 / abs(median) if median else math.nan,
            "significant_figures": figures,
            "supports_two_figures": figures >= 2,
            "median_at_supported_figures": round_to_figures(median, figures),
            "nims_key": key,
            "nims_stock": published,
            "nims_inside": bool(lower <= published <= upper) if math.isfinite(published) else None,
        }
        result = updates.get(metal)
        if result is not None:
            post_median, post_lower, post_upper = interval_summary(draws, result.weights)
            row.update(
                posterior_median=post_median,
                posterior_eti95_lower=post_lower,
                posterior_eti95_upper=post_upper,
                posterior_significant_figures=significant_figures_supported(post_median, post_lower, post_upper),
            )
        row["unit"] = "t"
        rows.append(row)
    return pd.DataFrame(rows)


def reserve_table(dataset: xr.Dataset, nims: pd.DataFrame) -> pd.DataFrame:
    """Compare the reference-year stock with the world reserves of the NIMS table.

    Per metal: the share stock / reserves as a median and 95 % interval, the
    NIMS share, and the rank of the metal among the run's metals (1 = largest
    share) per draw, with how often it takes the rank NIMS's shares give it.
    Metals without a NIMS row are left out.
    """
    stock = _reference_year_stock(dataset)
    metals = [str(m) for m in dataset["metal"].values if _nims_key(dataset, str(m)) in nims.index]
    if not metals:
        return pd.DataFrame()
    keys = [_nims_key(dataset, metal) for metal in metals]
    reserves = nims.loc[keys, "world_reserves_t"].to_numpy()
    shares = stock.sel(metal=metals).transpose("draw", "metal").values / reserves
    nims_shares = nims.loc[keys, "share_of_reserves"].to_numpy()

    # Rank 1 is the largest share; ties in a draw are broken by position.
    ranks = scipy.stats.rankdata(-shares, axis=1, method="ordinal")
    nims_ranks = scipy.stats.rankdata(-nims_shares, method="ordinal")
    rows = []
    for column, metal in enumerate(metals):
        median, lower, upper = interval_summary(shares[:, column])
        rank_median, rank_lower, rank_upper = interval_summary(ranks[:, column])
        rows.append(
            {
                "metal": metal,
                "nims_key": keys[column],
                "world_reserves_t": reserves[column],
                "share_median": median,
                "share_eti95_lower": lower,
                "share_eti95_upper": upper,
                "nims_share": nims_shares[column],
                "nims_share_inside": bool(lower <= nims_shares[column] <= upper),
                "rank_median": rank_median,
                "rank_eti95_lower": rank_lower,
                "rank_eti95_upper": rank_upper,
                "nims_rank": int(nims_ranks[column]),
                "share_of_draws_at_nims_rank": float(np.mean(ranks[:, column] == nims_ranks[column])),
            }
        )
    table = pd.DataFrame(rows).sort_values("share_median", ascending=False, ignore_index=True)
    table.insert(1, "rank_of_median_share", np.arange(1, len(table) + 1))
    return table


def update_table(dataset: xr.Dataset, updates: dict[str, UpdateResult]) -> pd.DataFrame:
    """Prior and posterior reference-year stock per updated metal, with ESS and k-hat."""
    stock = _reference_year_stock(dataset)
    rows = []
    for metal, result in updates.items():
        draws = stock.sel(metal=metal).values
        prior = interval_summary(draws)
        posterior = interval_summary(draws, result.weights)
        rows.append(
            {
                "metal": metal,
                "year": int(dataset.attrs["reference_year"]),
                "references": ";".join(result.reference_ids),
                "prior_median": prior[0],
                "prior_eti95_lower": prior[1],
                "prior_eti95_upper": prior[2],
                "posterior_median": posterior[0],
                "posterior_eti95_lower": posterior[1],
                "posterior_eti95_upper": posterior[2],
                "draws": draws.size,
                "effective_sample_size": result.ess,
                "pareto_khat": result.khat,
                "reliable": result.reliable,
                "unit": "t",
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# The compare command


@dataclass
class ComparisonOutput:
    """Tables written by :func:`write_comparison` and the folder they are in."""

    folder: Path
    agreement: pd.DataFrame
    verdict: pd.DataFrame
    reserves: pd.DataFrame
    updates: pd.DataFrame


def compare_run(
    dataset: xr.Dataset, data_dir: Path, update_ids: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[Reference]]:
    """Build the agreement, verdict, reserve and update tables of a run.

    Raises ``InputError`` for a defective reference table or an ``--update``
    id that is unknown or not comparable with the run.
    """
    data_dir = Path(data_dir)
    reference_path = data_dir / REFERENCE_FILE
    references = load_references(reference_path, load_source_ids(data_dir))
    nims = load_nims_table(data_dir / NIMS_FILE)

    updates: dict[str, UpdateResult] = {}
    if update_ids:
        groups = select_update_references(dataset, references, update_ids, str(reference_path))
        for metal, chosen in groups.items():
            updates[metal] = update_metal(dataset, chosen, metal)

    agreement = agreement_table(dataset, references, updates)
    verdict = verdict_table(dataset, nims, updates)
    reserves = reserve_table(dataset, nims)
    update_summary = update_table(dataset, updates)
    return agreement, verdict, reserves, update_summary, references


#: File that marks a folder as a complete comparison, which a new one may replace.
COMPARISON_MARKER = "agreement.csv"


def write_comparison(
    dataset: xr.Dataset,
    data_dir: Path,
    out: Path,
    update_ids: list[str] | None = None,
    run_dir: Path | None = None,
) -> ComparisonOutput:
    """Write agreement.csv, verdict.csv, reserves.csv, update.csv and figures into ``out``.

    The folder is written to a temporary folder first and renamed into place.
    ``out`` is replaced whole, so it must be new, empty or an earlier
    comparison, and must not contain the run ``run_dir``. A chunked run has
    no per-draw increments, so it gets no net-import figures.
    """
    from uncertainty.agreement_plots import forest_plot
    from uncertainty.plots import save_figure
    from uncertainty.report import atomic_folder

    out = Path(out)
    _check_comparison_folder(out, run_dir)
    agreement, verdict, reserves, update_summary, _ = compare_run(dataset, data_dir, update_ids)

    with atomic_folder(out, force=True, marker=COMPARISON_MARKER) as staging:
        agreement.to_csv(staging / "agreement.csv", index=False, float_format="%.6g")
        verdict.to_csv(staging / "verdict.csv", index=False, float_format="%.6g")
        reserves.to_csv(staging / "reserves.csv", index=False, float_format="%.6g")
        if not update_summary.empty:
            update_summary.to_csv(staging / "update.csv", index=False, float_format="%.6g")
        figures = staging / "figures"
        figures.mkdir()
        year = int(dataset.attrs["reference_year"])
        save_figure(forest_plot(verdict, year), figures / "forest")
        if not is_chunked_run(dataset):
            _save_net_import_figures(dataset, agreement, figures)
    return ComparisonOutput(out, agreement, verdict, reserves, update_summary)


def _check_comparison_folder(out: Path, run_dir: Path | None) -> None:
    """Raise unless ``out`` may be replaced whole by a comparison."""
    from uncertainty.report import RESULT_MARKER

    if (out / RESULT_MARKER).exists() or (out / CHUNKED_MARKER).exists():
        raise InputError.single(str(out), "--out", f"{out} is a run's result folder; choose a folder of its own")
    if run_dir is not None and Path(run_dir).resolve().is_relative_to(out.resolve()):
        raise InputError.single(
            str(out), "--out", f"{out} contains the run {run_dir}, which replacing it would delete; choose a folder of its own"
        )

    # The folder is replaced whole, so only an earlier comparison may be in it.
    if out.is_dir() and any(out.iterdir()) and not (out / COMPARISON_MARKER).exists():
        raise FileExistsError(
            f"{out} is a folder with other content and no {COMPARISON_MARKER}, so it is not replaced; "
            "choose a new or empty --out folder"
        )


def _save_net_import_figures(dataset: xr.Dataset, agreement: pd.DataFrame, figures: Path) -> None:
    """Draw the yearly net import of every metal with net-import references beside them."""
    from uncertainty.agreement_plots import net_import_plot
    from uncertainty.plots import save_figure

    year = int(dataset.attrs["reference_year"])
    net_rows = agreement[agreement["quantity"] == "net_import"]
    for metal, rows in net_rows.groupby("metal"):
        symbol = _metal_key(dataset, metal)
        if symbol is None:
            continue
        increment = dataset["increment"].sel(metal=symbol)
        quantiles = increment.quantile([0.025, 0.25, 0.5, 0.75, 0.975], dim="draw").values
        # Years without world production have no modelled flows, so they are left blank.
        unmodelled = np.isnan(dataset["world_production"].sel(metal=symbol).values)
        quantiles[:, unmodelled] = np.nan
        bands = {"median": quantiles[2], "eti50": quantiles[[1, 3]], "eti95": quantiles[[0, 4]]}
        first_year = min(int(rows["year"].min()), year) - 15
        figure = net_import_plot(dataset["year"].values, bands, rows, metal, first_year)
        save_figure(figure, figures / f"net_import_{metal}")
