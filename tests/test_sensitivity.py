"""Rank correlations of inputs with the stock."""

import numpy as np
import pytest

from conftest import make_data, observation_rows, write_models
from test_engine import WALK_MODEL, world_rows
from uncertainty.sensitivity import rank_correlations
from uncertainty.simulate import simulate
from uncertainty.spec import load_models


def test_stock_falls_monotonically_with_mapped_share(tmp_path):
    # Demand and imports are observed without error every year, so the only
    # uncertain input moving the stock is the mapped share of product exports.
    years = np.arange(1970, 1980)
    model = WALK_MODEL.format(rule="random_walk", factor="")
    models = load_models(write_models(tmp_path / "m", {"Xa": model}))
    data = make_data(
        world_rows(years, np.full(years.size, 1000.0)),
        observation_rows("Xa", "domestic_demand", years, np.full(years.size, 50.0))
        + observation_rows("Xa", "refined_import", years, np.full(years.size, 80.0)),
        ratios={"S1": 0.4},
    )
    table = rank_correlations(simulate(models, data, n_draws=400, seed=4), 1979).set_index("input")
    assert table.loc["product_export.mapped_share", "spearman"] == pytest.approx(-1.0, abs=1e-12)
    # Inputs that do not move (fully observed shares) have no correlation.
    assert np.isnan(table.loc["import.share_reference_year", "spearman"])
    assert table["metal"].eq("Xa").all()
