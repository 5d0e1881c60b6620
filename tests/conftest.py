"""Fixtures: small invented boundaries whose stocks can be computed by hand."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uncertainty.data import InputData
from uncertainty.spec import load_models

BOUNDARY_TOML = """
region = "XXX"
name = "invented test boundary"
reference_year = {reference_year}
reference_year_rationale = "test"
first_year = {first_year}
last_year = {last_year}

[reporting_error]
primary = {primary}
secondary = {secondary}
inferred = {inferred}
period_shift = 0.0
rationale = "test values"
"""


#: An invented metal with one import flow, a share of world production
#: anchored on the series refined_import.
IMPORT_MODEL = textwrap.dedent("""
    metal = "Xa"
    name = "invented metal"

    [extrapolation]
    rule = "random_walk"
    before = 1976
    rationale = "test"

    [[flows]]
    name = "import"
    sign = 1
    kind = "share"
    anchors = ["refined_import"]
    walk_step = 0.1
    walk_rationale = "test"
    share_prior = { family = "lognorm", s = 1.0, scale = 0.1, rationale = "test" }
""")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20080111)


def write_models(
    folder: Path,
    metals: dict[str, str],
    first_year: int = 1970,
    reference_year: int = 1979,
    last_year: int | None = None,
    reporting_sd: float = 0.0,
) -> Path:
    """Write boundary.toml and one model file per metal into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "boundary.toml").write_text(
        BOUNDARY_TOML.format(
            reference_year=reference_year,
            first_year=first_year,
            last_year=last_year or reference_year,
            primary=reporting_sd,
            secondary=reporting_sd,
            inferred=reporting_sd,
        )
    )
    for symbol, text in metals.items():
        (folder / f"{symbol}.toml").write_text(textwrap.dedent(text))
    return folder


OBSERVATION_COLUMNS = [
    "region", "metal", "year", "period", "series", "value", "unit", "basis",
    "source", "citation", "confidence", "note", "tonnes",
]


def observation_rows(metal: str, series: str, years, values, basis="metal_content"):
    return [
        {
            "region": "XXX",
            "metal": metal,
            "year": int(year),
            "period": "CY",
            "series": series,
            "value": float(value),
            "unit": "t",
            "basis": basis,
            "source": "test",
            "citation": "invented",
            "confidence": "primary",
            "note": "",
            "tonnes": float(value),
        }
        for year, value in zip(years, values)
    ]


def make_data(world_rows: list[dict], observation_rows_: list[dict], ratios: dict[str, float] | None = None) -> InputData:
    """Build InputData from in-memory rows (already in tonnes)."""
    ratios = ratios or {"S1": 0.5}
    export_ratios = pd.DataFrame(
        {
            "io_code": list(ratios),
            "sector_en": [f"sector {code}" for code in ratios],
            "metals": ["" for _ in ratios],
            "direct_export_ratio": list(ratios.values()),
            "induced_export_ratio": list(ratios.values()),
            "source": "test",
        }
    )
    world = pd.DataFrame(world_rows, columns=OBSERVATION_COLUMNS)
    observations = pd.DataFrame(observation_rows_, columns=OBSERVATION_COLUMNS)
    return InputData(
        world=world,
        observations=observations,
        export_ratios=export_ratios,
        metal_sectors=pd.DataFrame({"metal": [], "io_code": [], "source": []}),
        reference=pd.DataFrame({"metal": ["Xa"], "stock_t": [100.0], "source": ["test"]}),
        sources=pd.DataFrame({"source": ["test"]}),
    )


@pytest.fixture
def fully_observed(tmp_path):
    """One metal whose import and export are observed every year without error.

    World production is 1000 t/yr; imports are 100 + 10 (t - 1970) t/yr and
    exports 20 t/yr from 1970 to 1979, so the stock at the end of year t is
    sum over s <= t of (80 + 10 (s - 1970)).
    """
    years = np.arange(1970, 1980)
    imports = 100.0 + 10.0 * (years - 1970)
    exports = np.full(years.size, 20.0)
    model = IMPORT_MODEL + textwrap.dedent("""
        [[flows]]
        name = "export"
        sign = -1
        kind = "share"
        anchors = ["refined_export"]
        walk_step = 0.1
        walk_rationale = "test"
        share_prior = { family = "lognorm", s = 1.0, scale = 0.02, rationale = "test" }
    """)
    models = load_models(write_models(tmp_path / "models", {"Xa": model}))
    data = make_data(
        [
            {**row, "region": "WLD"}
            for row in observation_rows("Xa", "world_production", years, np.full(years.size, 1000.0))
        ],
        observation_rows("Xa", "refined_import", years, imports)
        + observation_rows("Xa", "refined_export", years, exports),
    )
    return models, data, imports, exports
