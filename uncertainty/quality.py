"""Pedigree scores of data sources and the reporting error they imply.

``source_quality.csv`` in a data folder scores each source on the five
indicators of the pedigree matrix of life cycle inventory data (reliability,
completeness, temporal, geographical and further technological correlation),
1 (best) to 5. ``docs/data-quality.md`` defines the scores as this project
reads them and gives the reasoning behind the mapping below.

Mapping from scores to a log-scale sd, as implemented here:

1. Each score is looked up in :data:`UNCERTAINTY_FACTORS`, the ecoinvent
   version 2 factors.
2. Each factor ``U`` is read as a multiplier of the 95 % range (about two
   sds), so the indicator contributes a log-scale sd ``ln(U) / 2`` and a
   coefficient of variation ``sqrt(exp(sd**2) - 1)``. This reading is this
   project's assumption: the ecoinvent text that defines the factors' use was
   not opened.
3. The errors of the indicators and a basic error (:data:`BASIC_SIGMA`) are
   independent multiplicative factors, so ``1 + CV**2`` is the product of
   their ``1 + CV_i**2``.
4. The anchor's sd is ``sqrt(log(1 + CV**2))``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from uncertainty.data import FIRST_DATA_LINE, InputData, read_table
from uncertainty.errors import InputError, Problem
from uncertainty.spec import ReportingError

logger = logging.getLogger(__name__)

#: File name of the source scores inside a data folder.
QUALITY_FILE = "source_quality.csv"

INDICATORS = ("reliability", "completeness", "temporal", "geographical", "technological")
QUALITY_COLUMNS = ("source", *INDICATORS, "rationale")
MIN_SCORE, MAX_SCORE = 1, 5

#: Uncertainty factors of the ecoinvent version 2 pedigree matrix, by
#: indicator and score 1 to 5. Transcribed from openLCA's copy in
#: GreenDelta/olca-modules, olca-io/src/main/java/org/openlca/io/ecospold2/
#: input/PedigreeDQSystem.java (commit 2304e3e8d18be7163ef6cc5cb1cad40bde1c5fff).
UNCERTAINTY_FACTORS: dict[str, tuple[float, ...]] = {
    "reliability": (1.00, 1.05, 1.10, 1.20, 1.50),
    "completeness": (1.00, 1.02, 1.05, 1.10, 1.20),
    "temporal": (1.00, 1.03, 1.10, 1.20, 1.50),
    "geographical": (1.00, 1.01, 1.02, 1.05, 1.10),
    "technological": (1.00, 1.05, 1.20, 1.50, 2.00),
}

#: Log-scale sd of a figure that scores 1 on every indicator: revisions
#: between editions of a statistical table and rounding to three or four
#: significant figures. This project's own estimate, not a published value.
BASIC_SIGMA = 0.02


@dataclass(frozen=True)
class SourceQuality:
    """Pedigree scores of one source, each 1 (best) to 5, with the reason for them."""

    source: str
    reliability: int
    completeness: int
    temporal: int
    geographical: int
    technological: int
    rationale: str

    def scores(self) -> dict[str, int]:
        """Return the five scores keyed by indicator name."""
        return {indicator: getattr(self, indicator) for indicator in INDICATORS}

    @property
    def cv(self) -> float:
        """Coefficient of variation of one figure of this source."""
        return pedigree_cv(self.scores())

    @property
    def sigma(self) -> float:
        """Log-scale sd of one figure of this source."""
        return cv_to_sigma(self.cv)


def sigma_to_cv(sigma: float) -> float:
    """Return the coefficient of variation of a log-normal factor with log-scale sd ``sigma``."""
    return math.sqrt(math.expm1(sigma**2))


def cv_to_sigma(cv: float) -> float:
    """Return the log-scale sd of a log-normal factor with coefficient of variation ``cv``."""
    return math.sqrt(math.log1p(cv**2))


def indicator_cv(indicator: str, score: int) -> float:
    """Return the coefficient of variation that one indicator's score contributes.

    Raises ``ValueError`` for an unknown indicator or a score outside 1 to 5.
    """
    if indicator not in UNCERTAINTY_FACTORS:
        raise ValueError(f"unknown indicator {indicator!r}; expected one of {', '.join(INDICATORS)}")
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise ValueError(f"invalid {indicator} score {score!r}: expected a whole number from {MIN_SCORE} to {MAX_SCORE}")
    factor = UNCERTAINTY_FACTORS[indicator][score - 1]
    return sigma_to_cv(math.log(factor) / 2.0)


def pedigree_cv(scores: Mapping[str, int], basic_sigma: float = BASIC_SIGMA) -> float:
    """Return the coefficient of variation of a figure with these five scores.

    The basic error and the indicators' errors are independent multiplicative
    factors of mean one, so ``1 + CV**2`` is the product of their
    ``1 + CV_i**2``.
    """
    missing = [indicator for indicator in INDICATORS if indicator not in scores]
    if missing:
        raise ValueError(f"missing score(s) for {', '.join(missing)}; expected all of {', '.join(INDICATORS)}")
    product = 1.0 + sigma_to_cv(basic_sigma) ** 2
    for indicator in INDICATORS:
        product *= 1.0 + indicator_cv(indicator, scores[indicator]) ** 2
    return math.sqrt(product - 1.0)


def pedigree_sigma(scores: Mapping[str, int], basic_sigma: float = BASIC_SIGMA) -> float:
    """Return the log-scale sd of a figure with these five scores."""
    return cv_to_sigma(pedigree_cv(scores, basic_sigma))


def _parse_score(text: str) -> int | None:
    """Return the integer score in ``text``, or None unless it is a whole number 1 to 5."""
    stripped = text.strip()
    if not stripped.isdigit():
        return None
    score = int(stripped)
    return score if MIN_SCORE <= score <= MAX_SCORE else None


def load_source_quality(path: Path) -> dict[str, SourceQuality]:
    """Read and check one ``source_quality.csv``, keyed by source id.

    Every score must be a whole number from 1 to 5, every source id must be
    present and unique, and every row must give a rationale. Raises
    ``InputError`` that names the file and the row of every defect.
    """
    path = Path(path)
    table = read_table(path, QUALITY_COLUMNS)
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    qualities: dict[str, SourceQuality] = {}
    for index, row in table.iterrows():
        line = index + FIRST_DATA_LINE
        location = f"row {line}"
        source = row["source"].strip()
        if not source:
            problems.append(Problem(str(path), location, "a source id", "an empty cell"))
        elif source in first_line:
            problems.append(
                Problem(str(path), location, "one row per source", f"{source!r}, also on line {first_line[source]}")
            )
        else:
            first_line[source] = line
        scores = {}
        for indicator in INDICATORS:
            score = _parse_score(row[indicator])
            if score is None:
                problems.append(
                    Problem(
                        str(path),
                        f"{location}, column {indicator!r}",
                        f"a whole number from {MIN_SCORE} (best) to {MAX_SCORE}",
                        repr(row[indicator]),
                    )
                )
            scores[indicator] = score
        if not row["rationale"].strip():
            problems.append(Problem(str(path), f"{location}, column 'rationale'", "a reason for the scores", "an empty cell"))
        if source and None not in scores.values():
            qualities[source] = SourceQuality(source, **scores, rationale=row["rationale"].strip())
    if problems:
        raise InputError(problems)
    return qualities


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, modified_ns: int) -> dict[str, SourceQuality]:
    """Load a quality file once per version, because prepare_inputs reads it for every metal of a run."""
    return load_source_quality(Path(path))


def load_quality_folders(folders: Iterable[Path]) -> dict[str, SourceQuality]:
    """Combine the ``source_quality.csv`` of every data folder that has one.

    Raises ``InputError`` if a file is invalid or if two folders score the
    same source.
    """
    combined: dict[str, SourceQuality] = {}
    scored_in: dict[str, Path] = {}
    problems = []
    for folder in folders:
        path = Path(folder) / QUALITY_FILE
        if not path.is_file():
            continue
        for source, quality in _load_cached(str(path), path.stat().st_mtime_ns).items():
            if source in combined:
                problems.append(
                    Problem(str(path), "source", "each source scored in one data folder only", f"{source!r}, also in {scored_in[source]}")
                )
                continue
            combined[source] = quality
            scored_in[source] = path
    if problems:
        raise InputError(problems)
    return combined


def _data_folders(observations: pd.DataFrame) -> list[Path]:
    """Return the data folders of the observation files, in the order the loader read them.

    Observation files lie at ``<data folder>/<boundary>/observations*.csv``.
    """
    if "file" not in observations.columns:
        return []
    files = dict.fromkeys(observations["file"])
    return list(dict.fromkeys(Path(file).parent.parent for file in files))


@functools.lru_cache(maxsize=None)
def _note_unscored(sources: tuple[str, ...]) -> None:
    """Log the unscored sources once, because the note would repeat for every metal."""
    logger.info(
        "%d observation source(s) have no pedigree score, so their rows use the confidence table: %s",
        len(sources),
        ", ".join(sources),
    )


def pedigree_sigmas(data: InputData, reporting: ReportingError) -> dict[str, float] | None:
    """Return the log-scale sd of each scored source, or None unless the boundary uses pedigree scores.

    Scores come from ``source_quality.csv`` in the data folders of the
    observation files. Sources of observation rows without a score are noted
    in the log at INFO level, not warned about, because the confidence table
    is a documented fallback.
    """
    if reporting.method != "pedigree":
        return None
    qualities = load_quality_folders(_data_folders(data.observations))
    unscored = sorted(set(data.observations["source"]) - set(qualities))
    if unscored:
        _note_unscored(tuple(unscored))
    return {source: quality.sigma for source, quality in qualities.items()}


def anchor_sigma(reporting: ReportingError, row, source_sigmas: Mapping[str, float] | None) -> float:
    """Return the log-scale sd of one observation row used as an anchor.

    ``row`` needs the attributes ``source``, ``confidence`` and ``period``.
    With ``source_sigmas`` (pedigree mode), a scored source gives its sd,
    combined in quadrature with the period shift for fiscal and November to
    October years. Otherwise, and for an unscored source, the confidence
    table of ``reporting`` gives the sd.
    """
    if source_sigmas is None or row.source not in source_sigmas:
        return reporting.sigma(row.confidence, row.period)
    shift = reporting.period_shift if row.period != "CY" else 0.0
    return math.hypot(source_sigmas[row.source], shift)
