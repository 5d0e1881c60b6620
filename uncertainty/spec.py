"""Model files (TOML) read into typed, validated objects.

A model folder contains ``boundary.toml`` (settings shared by every metal of one
boundary) and one ``<symbol>.toml`` per metal. ``docs/model-format.md``
describes every key. All problems of all files are collected and raised
together as one :class:`~uncertainty.errors.InputError`.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scipy.stats

from uncertainty.distributions import (
    DESCRIPTIVE_KEYS,
    Distribution,
    family_parameter_names,
    is_continuous_family,
)
from uncertainty.errors import InputError, Problem

FLOW_KINDS = ("share", "product_export", "sum", "missing")
EXTRAPOLATION_RULES = ("random_walk", "constant_share")
CONFIDENCE_LEVELS = ("primary", "secondary", "inferred")
NET_DIRECT_INFLOW = "net_direct_inflow"
WORLD_PRODUCTION = "world_production"

BOUNDARY_KEYS = {
    "region",
    "name",
    "reference_year",
    "reference_year_rationale",
    "first_year",
    "last_year",
    "reporting_error",
}
REPORTING_ERROR_KEYS = {*CONFIDENCE_LEVELS, "period_shift", "rationale", "method"}
# "confidence": every anchor's sd comes from its row's confidence. "pedigree":
# from its source's scores in source_quality.csv (uncertainty/quality.py).
REPORTING_ERROR_METHODS = ("confidence", "pedigree")
METAL_KEYS = {
    "metal", "name", "note", "comparison_key", "world_basis", "extrapolation", "flows", "correlations",
}
CORRELATION_KEYS = {"inputs", "rho", "source", "rationale"}
WORLD_BASES = ("metal_content", "gross_weight")
SHARE_SCALES = ("logit", "log")
EXTRAPOLATION_KEYS = {"rule", "before", "factor", "rationale"}
FLOW_KEYS = {
    "share": {
        "name",
        "sign",
        "kind",
        "anchors",
        "proxy",
        "walk_step",
        "walk_rationale",
        "share_prior",
        "grade",
        "reporting_error",
        "share_scale",
        "note",
    },
    "product_export": {
        "name",
        "sign",
        "kind",
        "demand",
        "sectors",
        "mapped_share",
        "ratio_sigma",
        "ratio_rationale",
        "ratio_step",
        "ratio_step_years",
        "ratio_step_rationale",
        "note",
    },
    "sum": {"name", "sign", "kind", "terms", "note"},
    "missing": {"name", "sign", "kind", "reason"},
}


@dataclass(frozen=True)
class ReportingError:
    """Log-scale standard deviations of an observation, by source confidence.

    With ``method = "pedigree"`` the confidence values are the fallback for
    rows whose source has no pedigree score.
    """

    primary: float
    secondary: float
    inferred: float
    period_shift: float
    rationale: str
    method: str = "confidence"

    def sigma(self, confidence: str, period: str) -> float:
        """Return the log-scale sd of one observation of this confidence and period."""
        base = getattr(self, confidence)
        shift = self.period_shift if period != "CY" else 0.0
        return math.hypot(base, shift)


@dataclass(frozen=True)
class Boundary:
    """Settings shared by all metals of one boundary (a country)."""

    region: str
    name: str
    reference_year: int
    reference_year_rationale: str
    first_year: int
    last_year: int
    reporting_error: ReportingError
    path: Path

    @property
    def key(self) -> str:
        """Name of the boundary's folder (``jp``), which also names its data folder."""
        return self.path.parent.name

    @property
    def years(self) -> range:
        """Years of the stock calculation, ``first_year`` to ``last_year`` inclusive.

        Years after the reference year still count, because their
        observations pin the shares near the reference year.
        """
        return range(self.first_year, self.last_year + 1)


@dataclass(frozen=True)
class Extrapolation:
    """Rule for the share in years before ``before`` (NIMS used 1976).

    ``random_walk`` lets the share wander back in time as in every other year.
    ``constant_share`` keeps it at its value in ``before``, NIMS's
    proportionality to world production, scaled by the uncertain ``factor``.
    """

    rule: str
    before: int
    factor: Distribution | None
    rationale: str


@dataclass(frozen=True)
class ShareFlow:
    """A flow modelled as share x proxy, the log share a random walk on anchors."""

    name: str
    sign: int
    anchors: tuple[str, ...]
    proxy: str
    walk_step: float
    walk_rationale: str
    share_prior: Distribution
    grade: Distribution | None
    reporting_error: float | None
    note: str
    share_scale: str = "logit"


@dataclass(frozen=True)
class ProductExportFlow:
    """Metal leaving inside exported products: demand x mapped share x sector ratios."""

    name: str
    sign: int
    demand: str
    sectors: tuple[str, ...]
    mapped_share: Distribution
    ratio_sigma: float
    ratio_rationale: str
    note: str
    #: Yearly sd of the log ratios' drift outside ``ratio_step_years``; 0 keeps
    #: the ratios of a draw the same in every year.
    ratio_step: float = 0.0
    #: First and last year of the window in which ``ratio_sigma`` was measured.
    ratio_step_years: tuple[int, int] | None = None
    ratio_step_rationale: str = ""


@dataclass(frozen=True)
class MissingFlow:
    """A flow that the model counts as zero because no figure exists; kept for the report."""

    name: str
    sign: int
    reason: str


@dataclass(frozen=True)
class SumFlow:
    """A signed sum of earlier flows, such as apparent consumption = output + imports - exports.

    ``terms`` pairs each flow name with its coefficient, +1 or -1.
    """

    name: str
    sign: int
    terms: tuple[tuple[int, str], ...]
    note: str


Flow = ShareFlow | ProductExportFlow | SumFlow | MissingFlow


@dataclass(frozen=True)
class Correlation:
    """Scalar inputs drawn jointly through a Gaussian copula with equal correlation ``rho``.

    ``inputs`` name scalar input groups such as ``"ore_import.grade"`` or
    ``"product_export.mapped_share"``. They draw from one random stream, so
    a Sobol analysis treats them as one group, as variance-based indices
    need independent groups.
    """

    inputs: tuple[str, ...]
    rho: float
    reason: str

    @property
    def stream(self) -> str:
        """Name of the random stream shared by the inputs."""
        return "copula:" + "+".join(self.inputs)


def scalar_inputs(flows: tuple[Flow, ...] | list[Flow], extrapolation: "Extrapolation | None") -> set[str]:
    """Return the names of the scalar input groups that a copula may correlate."""
    names = set()
    for flow in flows:
        if isinstance(flow, ShareFlow):
            if flow.grade is not None:
                names.add(f"{flow.name}.grade")
            if extrapolation is not None and extrapolation.rule == "constant_share":
                names.add(f"{flow.name}.extrapolation")
        elif isinstance(flow, ProductExportFlow):
            names.add(f"{flow.name}.mapped_share")
    return names


@dataclass(frozen=True)
class MetalModel:
    """The model of one metal: its flows in evaluation order and the extrapolation rule."""

    metal: str
    name: str
    note: str
    comparison_key: str
    world_basis: str
    extrapolation: Extrapolation
    flows: tuple[Flow, ...]
    path: Path
    correlations: tuple[Correlation, ...] = ()

    def correlation_of(self, name: str) -> Correlation | None:
        """Return the correlation that contains the scalar input ``name``, if any."""
        for correlation in self.correlations:
            if name in correlation.inputs:
                return correlation
        return None

    def flow(self, name: str) -> Flow:
        """Return the flow called ``name``."""
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise KeyError(f"metal {self.metal!r} has no flow {name!r}")


@dataclass(frozen=True)
class ModelSet:
    """A boundary and the models of its metals, in file-name order."""

    boundary: Boundary
    metals: tuple[MetalModel, ...]

    def select(self, symbols: list[str]) -> "ModelSet":
        """Return a model set with only the metals ``symbols``, in the order given."""
        by_symbol = {model.metal: model for model in self.metals}
        unknown = [symbol for symbol in symbols if symbol not in by_symbol]
        if unknown:
            raise ValueError(
                f"unknown metal(s) {', '.join(unknown)}; the models define "
                f"{', '.join(sorted(by_symbol))}"
            )
        return ModelSet(self.boundary, tuple(by_symbol[symbol] for symbol in symbols))


def _continuous_families() -> list[str]:
    """Return the names of the continuous distributions of scipy.stats, for spelling hints."""
    return sorted(name for name in dir(scipy.stats) if is_continuous_family(name))


class _Collector:
    """Problems of one file, with helpers that read typed values from a TOML table."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = path
        self.problems = problems

    def add(self, location: str, expected: str, found: str) -> None:
        self.problems.append(Problem(str(self.path), location, expected, found))

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.unknown_key(key, allowed, f"{prefix}{key}", f"one of the keys {', '.join(sorted(allowed))}")

    def unknown_key(self, key: str, allowed: set[str], location: str, expected: str) -> None:
        """Report ``key`` as unknown, with the closest allowed key as a hint."""
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.add(location, expected, f"unknown key {key!r}{hint}")

    def required(self, table: dict[str, Any], key: str, kind: type, prefix: str) -> Any:
        if key not in table:
            self.add(f"{prefix}{key}", f"a {kind.__name__} value", "nothing (key missing)")
            return None
        return self.typed(table[key], kind, f"{prefix}{key}")

    def typed(self, value: Any, kind: type, location: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is float and isinstance(value, float) and not math.isfinite(value):
            self.add(location, "a finite number", repr(value))
            return None
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            self.add(location, f"a {kind.__name__}", f"{value!r} ({type(value).__name__})")
            return None
        return value

    def distribution(
        self,
        table: Any,
        location: str,
        support: tuple[float, float] | None = None,
    ) -> Distribution | None:
        """Read a distribution declaration; ``support`` is the interval its draws must stay in."""
        if not isinstance(table, dict):
            self.add(location, "a table with family, parameters and source", repr(table))
            return None
        family = table.get("family")
        if not isinstance(family, str) or not is_continuous_family(family):
            close = []
            if isinstance(family, str):
                close = difflib.get_close_matches(family, _continuous_families(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.add(
                f"{location}.family",
                "the name of a continuous scipy.stats distribution (for example "
                "'lognorm', 'beta', 'norm', 'truncnorm', 'uniform', 'triang')",
                f"{family!r}{hint}",
            )
            return None
        if not (isinstance(table.get("source"), str) or isinstance(table.get("rationale"), str)):
            self.add(
                location,
                "a 'source' or 'rationale' string saying where the numbers come from",
                "neither",
            )
        allowed = set(family_parameter_names(family))
        parameters: dict[str, float] = {}
        for key, value in table.items():
            if key in DESCRIPTIVE_KEYS:
                continue
            if key not in allowed:
                expected = f"a parameter of scipy.stats.{family}: {', '.join(sorted(allowed))}"
                self.unknown_key(key, allowed, f"{location}.{key}", expected)
                continue
            number = self.typed(value, float, f"{location}.{key}")
            if number is not None:
                parameters[key] = number
        missing = [name for name in allowed - {"loc", "scale"} if name not in parameters]
        for name in missing:
            self.add(f"{location}.{name}", f"shape parameter {name!r} of {family}", "nothing")
        if missing or any(p.location.startswith(location) for p in self.problems):
            return None

        truncate = None
        if "truncate" in table:
            bounds = table["truncate"]
            valid = (
                isinstance(bounds, list)
                and len(bounds) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                and not any(math.isnan(b) for b in bounds)
            )
            if not valid or bounds[0] >= bounds[1]:
                self.add(f"{location}.truncate", "[lower, upper] with lower < upper", repr(bounds))
                return None
            truncate = (float(bounds[0]), float(bounds[1]))

        reason = str(table.get("source") or table.get("rationale") or "")
        try:
            distribution = Distribution(family, parameters, reason, truncate)
        except (TypeError, ValueError) as exc:
            self.add(location, f"valid parameters for {family}", f"{parameters!r} ({exc})")
            return None
        if not distribution.has_valid_parameters():
            self.add(
                location,
                f"parameters inside the domain of scipy.stats.{family} "
                "(positive scale, shapes in range)",
                repr(parameters),
            )
            return None
        if truncate is not None and distribution.support()[0] >= distribution.support()[1]:
            self.add(f"{location}.truncate", "bounds that overlap the support", repr(truncate))
            return None
        if support is not None:
            lower, upper = distribution.support()
            if lower < support[0] or upper > support[1]:
                self.add(
                    location,
                    f"draws within [{support[0]}, {support[1]}] (add truncate = "
                    f"[{support[0]}, {support[1]}] or change the family)",
                    f"support [{lower}, {upper}]",
                )
                return None
        return distribution


def _read_toml(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        problems.append(Problem(str(path), "TOML syntax", "valid TOML", str(exc)))
    except OSError as exc:
        problems.append(Problem(str(path), "file", "a readable file", exc.strerror or str(exc)))
    return None


def _read_boundary(path: Path, problems: list[Problem]) -> Boundary | None:
    table = _read_toml(path, problems)
    if table is None:
        return None
    check = _Collector(path, problems)
    check.unknown_keys(table, BOUNDARY_KEYS, "")
    region = check.required(table, "region", str, "")
    name = check.required(table, "name", str, "")
    reference_year = check.required(table, "reference_year", int, "")
    rationale = check.required(table, "reference_year_rationale", str, "")
    first_year = check.required(table, "first_year", int, "")
    last_year = table.get("last_year", reference_year)
    last_year = check.typed(last_year, int, "last_year") if last_year is not None else None
    if last_year is not None and reference_year is not None and last_year < reference_year:
        check.add("last_year", f"a year not before reference_year {reference_year}", repr(last_year))
    for key, year in (("first_year", first_year), ("reference_year", reference_year)):
        if year is not None and not 1800 <= year <= 2100:
            check.add(key, "a year between 1800 and 2100", repr(year))
    if first_year is not None and reference_year is not None and first_year >= reference_year:
        check.add("first_year", f"a year before reference_year {reference_year}", repr(first_year))

    errors_table = table.get("reporting_error")
    reporting = None
    if not isinstance(errors_table, dict):
        check.add("reporting_error", "a table of log-scale sds by confidence", repr(errors_table))
    else:
        check.unknown_keys(errors_table, REPORTING_ERROR_KEYS, "reporting_error.")
        values = {}
        for key in (*CONFIDENCE_LEVELS, "period_shift"):
            value = check.required(errors_table, key, float, "reporting_error.")
            if value is not None and value < 0:
                check.add(f"reporting_error.{key}", "a sd >= 0", repr(value))
            values[key] = value
        reason = check.required(errors_table, "rationale", str, "reporting_error.")
        method = check.typed(errors_table.get("method", "confidence"), str, "reporting_error.method")
        if method is not None and method not in REPORTING_ERROR_METHODS:
            check.add("reporting_error.method", f"one of {', '.join(REPORTING_ERROR_METHODS)}", repr(method))
            method = None
        if None not in values.values() and reason is not None and method is not None:
            reporting = ReportingError(**values, rationale=reason, method=method)

    fields = (region, name, reference_year, rationale, first_year, last_year, reporting)
    if any(field is None for field in fields):
        return None
    return Boundary(
        region, name, reference_year, rationale, first_year, last_year, reporting, path
    )


def _read_extrapolation(table: Any, check: _Collector) -> Extrapolation | None:
    if not isinstance(table, dict):
        check.add("extrapolation", "a table with rule and before", repr(table))
        return None
    check.unknown_keys(table, EXTRAPOLATION_KEYS, "extrapolation.")
    rule = check.required(table, "rule", str, "extrapolation.")
    before = check.required(table, "before", int, "extrapolation.")
    rationale = check.required(table, "rationale", str, "extrapolation.")
    if rule is not None and rule not in EXTRAPOLATION_RULES:
        check.add("extrapolation.rule", f"one of {', '.join(EXTRAPOLATION_RULES)}", repr(rule))
        return None
    factor = None
    if rule == "constant_share":
        if "factor" not in table:
            check.add("extrapolation.factor", "a distribution for constant_share", "nothing")
            return None
        factor = check.distribution(table["factor"], "extrapolation.factor", (0.0, math.inf))
        if factor is None:
            return None
    elif "factor" in table:
        check.add("extrapolation.factor", "no factor with rule random_walk", "a factor")
    if None in (rule, before, rationale):
        return None
    return Extrapolation(rule, before, factor, rationale)


def _read_share_flow(table: dict, prefix: str, check: _Collector) -> ShareFlow | None:
    anchors = table.get("anchors", [])
    if not isinstance(anchors, list) or not all(isinstance(a, str) for a in anchors):
        check.add(f"{prefix}anchors", "a list of series names", repr(anchors))
        anchors = None

    proxy = table.get("proxy", WORLD_PRODUCTION)
    if not isinstance(proxy, str):
        check.add(f"{prefix}proxy", "a series or flow name", repr(proxy))

    walk_step = check.required(table, "walk_step", float, prefix)
    if walk_step is not None and walk_step < 0:
        check.add(f"{prefix}walk_step", "a sd >= 0 of the yearly change of the share on its walk scale", repr(walk_step))
    walk_rationale = check.required(table, "walk_rationale", str, prefix)

    prior = None
    if "share_prior" not in table:
        check.add(f"{prefix}share_prior", "a lognorm distribution of the share", "nothing")
    else:
        prior = check.distribution(table["share_prior"], f"{prefix}share_prior", (0.0, math.inf))
        if prior is not None and (prior.family != "lognorm" or prior.parameters.get("loc", 0.0)):
            check.add(f"{prefix}share_prior.family", "'lognorm' with loc = 0", repr(prior.family))
            prior = None

    grade = None
    if "grade" in table:
        grade = check.distribution(table["grade"], f"{prefix}grade", (0.0, 1.0))
        if grade is not None and grade.support()[0] <= 0.0 and grade.ppf([1e-12])[0] <= 0.0:
            check.add(f"{prefix}grade", "a grade distribution with draws above 0", "draws of 0")
            grade = None

    reporting_error = table.get("reporting_error")
    if reporting_error is not None:
        reporting_error = check.typed(reporting_error, float, f"{prefix}reporting_error")
        if reporting_error is not None and reporting_error < 0:
            check.add(f"{prefix}reporting_error", "a log-scale sd >= 0", repr(reporting_error))

    note = table.get("note", "")
    default_scale = "logit" if proxy == WORLD_PRODUCTION else "log"
    share_scale = table.get("share_scale", default_scale)
    if share_scale not in SHARE_SCALES:
        check.add(f"{prefix}share_scale", f"one of {', '.join(SHARE_SCALES)}", repr(share_scale))
        return None

    if None in (anchors, walk_step, walk_rationale, prior) or not isinstance(proxy, str):
        return None
    if "grade" in table and grade is None:
        return None
    return ShareFlow(
        table["name"], table["sign"], tuple(anchors), proxy, walk_step, walk_rationale,
        prior, grade, reporting_error, str(note), share_scale,
    )


def _read_product_export(table: dict, prefix: str, check: _Collector) -> ProductExportFlow | None:
    demand = check.required(table, "demand", str, prefix)
    sectors = table.get("sectors", [])
    if not isinstance(sectors, list) or not all(isinstance(s, str) for s in sectors):
        check.add(f"{prefix}sectors", "a list of input-output sector codes (strings)", repr(sectors))
        sectors = None
    mapped = None
    if "mapped_share" not in table:
        check.add(f"{prefix}mapped_share", "a distribution on [0, 1]", "nothing")
    else:
        mapped = check.distribution(table["mapped_share"], f"{prefix}mapped_share", (0.0, 1.0))
    ratio_sigma = check.required(table, "ratio_sigma", float, prefix)
    if ratio_sigma is not None and ratio_sigma < 0:
        check.add(f"{prefix}ratio_sigma", "a log-scale sd >= 0", repr(ratio_sigma))
    ratio_rationale = check.required(table, "ratio_rationale", str, prefix)
    if ratio_rationale is not None and not ratio_rationale.strip():
        check.add(f"{prefix}ratio_rationale", "a text saying where ratio_sigma comes from", "an empty string")
        ratio_rationale = None
    drift = _read_ratio_drift(table, prefix, check)
    if None in (demand, sectors, mapped, ratio_sigma, ratio_rationale, drift):
        return None
    return ProductExportFlow(
        table["name"], table["sign"], demand, tuple(sectors), mapped, ratio_sigma,
        ratio_rationale, str(table.get("note", "")), *drift,
    )


def _read_ratio_drift(table: dict, prefix: str, check: _Collector) -> tuple | None:
    """Read the optional ``ratio_step`` with its window and rationale, or return the no-drift default."""
    keys = ("ratio_step", "ratio_step_years", "ratio_step_rationale")
    if not any(key in table for key in keys):
        return (0.0, None, "")
    step = check.required(table, "ratio_step", float, prefix)
    if step is not None and step < 0:
        check.add(f"{prefix}ratio_step", "a log-scale yearly sd >= 0", repr(step))
        step = None
    years = table.get("ratio_step_years")
    valid_years = (
        isinstance(years, list)
        and len(years) == 2
        and all(isinstance(year, int) and not isinstance(year, bool) for year in years)
        and years[0] <= years[1]
    )
    if not valid_years:
        check.add(f"{prefix}ratio_step_years", "two whole years [first, last], first <= last", repr(years))
    rationale = check.required(table, "ratio_step_rationale", str, prefix)
    if rationale is not None and not rationale.strip():
        check.add(f"{prefix}ratio_step_rationale", "a text saying where ratio_step comes from", "an empty string")
        rationale = None
    if step is None or not valid_years or rationale is None:
        return None
    return (step, (years[0], years[1]), rationale)


def _read_flow(table: Any, index: int, check: _Collector) -> Flow | None:
    prefix = f"flows[{index}]."
    if not isinstance(table, dict):
        check.add(f"flows[{index}]", "a table", repr(table))
        return None
    kind = table.get("kind")
    if kind not in FLOW_KINDS:
        check.add(f"{prefix}kind", f"one of {', '.join(FLOW_KINDS)}", repr(kind))
        return None
    check.unknown_keys(table, FLOW_KEYS[kind], prefix)
    name = check.required(table, "name", str, prefix)
    sign = check.required(table, "sign", int, prefix)
    if sign is not None and sign not in (-1, 0, 1):
        check.add(f"{prefix}sign", "1 (inflow), -1 (outflow) or 0 (auxiliary series)", repr(sign))
        return None
    if name is None or sign is None:
        return None
    if kind == "share":
        return _read_share_flow(table, prefix, check)
    if kind == "product_export":
        return _read_product_export(table, prefix, check)
    if kind == "sum":
        terms = table.get("terms")
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.lstrip("+-") for t in terms):
            check.add(f"{prefix}terms", 'a list of earlier flow names, each optionally prefixed "-"', repr(terms))
            return None
        parsed = tuple((-1 if term.startswith("-") else 1, term.lstrip("+-")) for term in terms)
        return SumFlow(name, sign, parsed, str(table.get("note", "")))
    reason = check.required(table, "reason", str, prefix)
    return None if reason is None else MissingFlow(name, sign, reason)


def _check_references(flows: list[Flow], check: _Collector) -> None:
    """Check that proxies and demands name earlier flows, so one pass evaluates them."""
    seen: set[str] = set()
    for index, flow in enumerate(flows):
        if flow.name in seen:
            check.add(f"flows[{index}].name", "a name not used by an earlier flow", repr(flow.name))
        if isinstance(flow, ShareFlow) and flow.proxy != WORLD_PRODUCTION and flow.proxy not in seen:
            check.add(
                f"flows[{index}].proxy",
                f"{WORLD_PRODUCTION!r} or the name of an earlier flow ({', '.join(sorted(seen)) or 'none'})",
                repr(flow.proxy),
            )
        if isinstance(flow, SumFlow):
            for _, term in flow.terms:
                if term not in seen:
                    check.add(
                        f"flows[{index}].terms",
                        f"names of earlier flows ({', '.join(sorted(seen)) or 'none'})",
                        repr(term),
                    )
        if isinstance(flow, ProductExportFlow) and flow.demand != NET_DIRECT_INFLOW and flow.demand not in seen:
            check.add(
                f"flows[{index}].demand",
                f"{NET_DIRECT_INFLOW!r} or the name of an earlier flow ({', '.join(sorted(seen)) or 'none'})",
                repr(flow.demand),
            )
        seen.add(flow.name)


def _read_metal(path: Path, problems: list[Problem]) -> MetalModel | None:
    table = _read_toml(path, problems)
    if table is None:
        return None
    check = _Collector(path, problems)
    start = len(problems)

    check.unknown_keys(table, METAL_KEYS, "")
    metal = check.required(table, "metal", str, "")
    if metal is not None and metal != path.stem:
        check.add("metal", f"the file name's symbol {path.stem!r}", repr(metal))
    name = check.required(table, "name", str, "")

    extrapolation = None
    if "extrapolation" not in table:
        check.add("extrapolation", "a table with rule and before", "nothing")
    else:
        extrapolation = _read_extrapolation(table["extrapolation"], check)

    raw_flows = table.get("flows")
    flows: list[Flow] = []
    if not isinstance(raw_flows, list) or not raw_flows:
        check.add("flows", "a non-empty array of [[flows]] tables", repr(raw_flows))
    else:
        for index, raw in enumerate(raw_flows):
            flow = _read_flow(raw, index, check)
            if flow is not None:
                flows.append(flow)
        if len(problems) == start:
            _check_references(flows, check)
    if len(problems) > start:
        return None

    comparison_key = table.get("comparison_key", metal)
    if not isinstance(comparison_key, str):
        check.add("comparison_key", "a metal key of the published table", repr(comparison_key))
        return None

    world_basis = table.get("world_basis", "metal_content")
    if world_basis not in WORLD_BASES:
        check.add("world_basis", f"one of {', '.join(WORLD_BASES)}", repr(world_basis))
        return None

    correlations = _read_correlations(table.get("correlations", []), flows, extrapolation, check)
    if correlations is None:
        return None
    return MetalModel(
        metal, name, str(table.get("note", "")), comparison_key, world_basis, extrapolation,
        tuple(flows), path, correlations,
    )


def _read_correlations(raw: Any, flows: list[Flow], extrapolation, check: _Collector):
    """Read ``[[correlations]]`` tables; return None after reporting any problem."""
    if not isinstance(raw, list):
        check.add("correlations", "an array of [[correlations]] tables", repr(raw))
        return None
    allowed = scalar_inputs(flows, extrapolation)
    used: set[str] = set()
    result = []
    start = len(check.problems)
    for index, table in enumerate(raw):
        prefix = f"correlations[{index}]."
        if not isinstance(table, dict):
            check.add(f"correlations[{index}]", "a table with inputs and rho", repr(table))
            continue
        check.unknown_keys(table, CORRELATION_KEYS, prefix)
        inputs = table.get("inputs")
        if not isinstance(inputs, list) or len(inputs) < 2 or not all(isinstance(i, str) for i in inputs):
            check.add(f"{prefix}inputs", "a list of two or more scalar input names", repr(inputs))
            continue
        for name in inputs:
            if name not in allowed:
                check.add(
                    f"{prefix}inputs",
                    f"scalar inputs of this model ({', '.join(sorted(allowed)) or 'none'})",
                    repr(name),
                )
            elif name in used:
                check.add(f"{prefix}inputs", "each input in one correlation at most", repr(name))
            used.add(name)
        rho = check.required(table, "rho", float, prefix)

        # An equicorrelation matrix of size k is positive definite for -1/(k-1) < rho < 1.
        if rho is not None and not -1.0 / (len(inputs) - 1) < rho < 1.0:
            check.add(f"{prefix}rho", f"a correlation in ({-1 / (len(inputs) - 1):.3g}, 1)", repr(rho))
        reason = table.get("source") or table.get("rationale")
        if not isinstance(reason, str) or not reason.strip():
            check.add(prefix.rstrip("."), "a 'source' or 'rationale' string", "neither")
        if rho is not None and isinstance(reason, str):
            result.append(Correlation(tuple(inputs), rho, reason))
    if len(check.problems) > start:
        return None
    return tuple(result)


def load_models(model_dir: Path) -> ModelSet:
    """Read ``boundary.toml`` and every metal model file of ``model_dir``.

    Raises
    ------
    InputError
        With every problem of every file, if any file is invalid.
    """
    model_dir = Path(model_dir)
    problems: list[Problem] = []
    if not model_dir.is_dir():
        raise InputError([Problem(str(model_dir), "folder", "a folder of model files", "no such folder")])
    boundary = _read_boundary(model_dir / "boundary.toml", problems)
    metal_paths = sorted(p for p in model_dir.glob("*.toml") if p.name != "boundary.toml")
    if not metal_paths:
        problems.append(Problem(str(model_dir), "folder", "at least one <metal>.toml", "none"))
    metals = [_read_metal(path, problems) for path in metal_paths]
    if problems:
        raise InputError(problems)
    return ModelSet(boundary, tuple(metals))
