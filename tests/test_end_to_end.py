"""The shipped models and data, end to end through the command line."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from uncertainty import cli
from uncertainty.data import load_data
from uncertainty.spec import load_models

ROOT = Path(__file__).resolve().parents[1]
NIMS_METALS = {
    "Al", "Sb", "Cr", "Co", "Cu", "Au", "In", "Fe", "Pb", "Li",
    "Mo", "Ni", "PGM", "RE", "Ag", "Ta", "Sn", "W", "V", "Zn",
}


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "result"
    status = cli.main(["run", "--draws", "300", "--seed", "7", "--out", str(out), "--no-progress"])
    assert status == 0
    return out


def test_models_cover_every_nims_metal():
    models = load_models(ROOT / "models" / "jp")
    assert {model.metal for model in models.metals} == NIMS_METALS


def test_every_model_value_has_a_reason():
    models = load_models(ROOT / "models" / "jp")
    for model in models.metals:
        for flow in model.flows:
            for name in ("share_prior", "grade", "mapped_share"):
                distribution = getattr(flow, name, None)
                if distribution is not None:
                    assert distribution.reason.strip(), f"{model.metal} {flow.name}.{name} has no source"
            for name in ("walk_rationale", "ratio_rationale", "reason"):
                text = getattr(flow, name, None)
                if text is not None:
                    assert text.strip(), f"{model.metal} {flow.name}.{name} is empty"


def test_run_writes_every_output(shipped_run):
    for name in ("stocks.nc", "summary.csv", "comparison.csv", "flows.csv", "notes.txt"):
        assert (shipped_run / name).is_file(), name
    for metal in NIMS_METALS:
        assert (shipped_run / "figures" / f"stock_{metal}.svg").is_file()
        assert (shipped_run / "figures" / f"stock_{metal}.png").is_file()


def test_comparison_has_one_row_per_metal(shipped_run):
    comparison = pd.read_csv(shipped_run / "comparison.csv")
    assert set(comparison["metal"]) == NIMS_METALS
    assert comparison["nims_stock"].notna().all()
    assert (comparison["eti95_lower"] <= comparison["median"]).all()
    assert (comparison["median"] <= comparison["eti95_upper"]).all()
    assert comparison["observed_share"].between(0, 1).all()
    required = {"supports_two_sig_figs", "prior_only", "relative_half_width_95", "nims_inside_eti95"}
    assert required <= set(comparison.columns)


def test_real_data_mass_balance(shipped_run):
    with xr.open_dataset(shipped_run / "stocks.nc", engine="netcdf4") as dataset:
        stock = dataset["stock"].values
        increment = dataset["increment"].values
    # Increments are stored as float32, so the check allows float32 rounding.
    np.testing.assert_allclose(np.diff(stock, axis=-1), increment[..., 1:], rtol=1e-5, atol=1e-3 * np.abs(stock).max())


def test_summary_has_every_year_and_metal(shipped_run):
    boundary = load_models(ROOT / "models" / "jp").boundary
    summary = pd.read_csv(shipped_run / "summary.csv")
    assert set(summary["metal"]) == NIMS_METALS
    spans = summary.groupby("metal")["year"].agg(["min", "max"])
    assert (spans["min"] == boundary.first_year).all()
    assert (spans["max"] == boundary.last_year).all()
    columns = {"metal", "year", "mean", "median", "eti95_lower", "eti95_upper", "hdi95_lower", "hdi95_upper", "unit"}
    assert columns <= set(summary.columns)


def test_report_redraws_tables(shipped_run):
    before = pd.read_csv(shipped_run / "comparison.csv")
    (shipped_run / "comparison.csv").unlink()
    assert cli.main(["report", str(shipped_run)]) == 0
    after = pd.read_csv(shipped_run / "comparison.csv")
    pd.testing.assert_frame_equal(before, after)


def test_every_observation_row_has_a_source():
    data = load_data(ROOT / "data", "jp")
    known = set(data.sources["source"])
    assert set(data.observations["source"]) <= known
    assert set(data.world["source"]) <= known


def test_observed_flow_follows_its_data(shipped_run):
    # Zinc mine output is published for every year 1950-2006 (Clio-Infra via
    # OWID, a secondary source with a reporting sd of 0.10 in log units), so
    # the drawn flow of 1970 must sit on the published 280 kt.
    data = load_data(ROOT / "data", "jp")
    published = data.observations.query(
        "metal == 'Zn' and series == 'mine_production' and year == 1970 and period == 'CY'"
    )["tonnes"].item()
    with xr.open_dataset(shipped_run / "stocks.nc", engine="netcdf4") as dataset:
        drawn = dataset["flows"].sel(metal="Zn", flow="mine_production", year=1970).values
    assert np.median(drawn) == pytest.approx(published, rel=0.05)
    assert np.all(np.abs(np.log(drawn / published)) < 0.5)
