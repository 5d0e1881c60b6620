"""Agreement with published estimates: importance weights, verdicts and the compare command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from conftest import make_data, observation_rows, write_models
from uncertainty import cli
from uncertainty.agreement import (
    Reference,
    half_width_distance,
    importance_weights,
    load_references,
    log_likelihood,
    parse_conversion,
    round_to_figures,
    significant_figures_supported,
    update_metal,
    weighted_quantiles,
)
from uncertainty.errors import InputError
from uncertainty.intervals import supports_two_significant_figures
from uncertainty.report import write_result
from uncertainty.simulate import simulate
from uncertainty.spec import load_models

ROOT = Path(__file__).resolve().parents[1]


def make_reference(tonnes: float, sd: float, conversion: str = "1", ident: str = "r1") -> Reference:
    distribution, factor = parse_conversion(conversion)
    return Reference(
        id=ident, metal="Xa", quantity="stock", year=1979, period="CY", tonnes=tonnes, basis="test",
        conversion_text=conversion, conversion=distribution, factor=factor, error_sd_log=sd,
        source="test", citation="invented", note="",
    )


# ---------------------------------------------------------------------------
# Importance weights against an analytic posterior


def test_importance_weights_match_conjugate_normal():
    """Log-normal prior and likelihood: log Q is normal before and after the update.

    Prior log Q ~ N(mu0, tau^2); published value y with log error sd sigma,
    so log Q | y ~ N(mu1, s1^2) with 1/s1^2 = 1/tau^2 + 1/sigma^2 and
    mu1 = s1^2 (mu0/tau^2 + log y/sigma^2). Tolerance: 4 Monte Carlo standard
    errors, s1 / sqrt(ESS) for the mean and s1 / sqrt(2 ESS) for the sd.
    """
    rng = np.random.default_rng(11)
    mu0, tau, sigma, y = math.log(1000.0), 0.3, 0.2, 1200.0
    log_q = rng.normal(mu0, tau, 40_000)
    weights, ess, khat = importance_weights(log_likelihood(np.exp(log_q), make_reference(y, sigma)))

    s1 = 1.0 / math.sqrt(1 / tau**2 + 1 / sigma**2)
    mu1 = s1**2 * (mu0 / tau**2 + math.log(y) / sigma**2)
    mean = float(np.sum(weights * log_q))
    sd = math.sqrt(float(np.sum(weights * (log_q - mean) ** 2)))
    assert abs(mean - mu1) < 4 * s1 / math.sqrt(ess)
    assert abs(sd - s1) < 4 * s1 / math.sqrt(2 * ess)
    assert khat < 0.7
    assert 0.3 * log_q.size < ess < log_q.size


def test_weighted_median_matches_posterior_median():
    rng = np.random.default_rng(12)
    mu0, tau, sigma, y = 0.0, 1.0, 0.5, math.exp(0.8)
    log_q = rng.normal(mu0, tau, 40_000)
    weights, ess, _ = importance_weights(log_likelihood(np.exp(log_q), make_reference(y, sigma)))
    s1 = 1.0 / math.sqrt(1 / tau**2 + 1 / sigma**2)
    mu1 = s1**2 * (mu0 / tau**2 + math.log(y) / sigma**2)
    lower, median, upper = weighted_quantiles(log_q, [0.025, 0.5, 0.975], weights)
    # A quantile's Monte Carlo error is about sqrt(p(1-p)/ESS) / density; 4 of them at the tails.
    tail_error = 4 * math.sqrt(0.025 * 0.975 / ess) / scipy.stats.norm.pdf(1.96) * s1
    assert abs(median - mu1) < 4 * s1 * math.sqrt(math.pi / 2 / ess)
    assert abs(lower - (mu1 - 1.96 * s1)) < tail_error
    assert abs(upper - (mu1 + 1.96 * s1)) < tail_error


def test_uncertain_conversion_widens_likelihood():
    quantity = np.array([800.0, 1000.0, 1250.0])
    exact = log_likelihood(quantity, make_reference(1000.0, 0.1))
    uncertain = log_likelihood(quantity, make_reference(1000.0, 0.1, "lognorm(s=0.3, scale=1.0)"))
    # A wider likelihood falls less steeply away from its centre.
    assert exact[1] - exact[0] > uncertain[1] - uncertain[0]


def test_nonpositive_quantity_has_zero_likelihood():
    values = log_likelihood(np.array([-5.0, 0.0, 10.0]), make_reference(10.0, 0.1))
    assert values[0] == -np.inf
    assert values[1] == -np.inf
    assert np.isfinite(values[2])


def test_weights_keep_zero_for_impossible_draws():
    rng = np.random.default_rng(13)
    quantity = rng.normal(10.0, 3.0, 5000)
    weights, _, _ = importance_weights(log_likelihood(quantity, make_reference(10.0, 0.3)))
    assert np.all(weights[quantity <= 0] == 0)
    assert math.isclose(weights.sum(), 1.0)


# ---------------------------------------------------------------------------
# Pareto k-hat and the unreliable-update warning


def invented_dataset(log_q: np.ndarray):
    import xarray as xr

    stock = np.exp(log_q)[:, None, None]
    return xr.Dataset(
        {
            "stock": (("draw", "metal", "year"), stock),
            "increment": (("draw", "metal", "year"), stock),
        },
        coords={"draw": np.arange(log_q.size), "metal": ["Xa"], "year": [1979]},
        attrs={"reference_year": 1979},
    )


def test_khat_reported_for_good_proposal():
    rng = np.random.default_rng(14)
    dataset = invented_dataset(rng.normal(0.0, 1.0, 4000))
    result = update_metal(dataset, [make_reference(1.0, 1.0)], "Xa")
    assert result.khat < 0.7
    assert result.reliable


def test_bad_proposal_warns_with_khat():
    rng = np.random.default_rng(15)
    # The published value sits 5 prior sds away and is 20 times sharper than the prior.
    dataset = invented_dataset(rng.normal(0.0, 1.0, 4000))
    with pytest.warns(RuntimeWarning, match="unreliable: Pareto k-hat"):
        result = update_metal(dataset, [make_reference(math.exp(5.0), 0.05)], "Xa")
    assert result.khat > 0.7
    assert not result.reliable
    assert result.ess < 100


# ---------------------------------------------------------------------------
# Significant figures


@pytest.mark.parametrize(
    ("median", "lower", "upper", "figures"),
    [
        (6800.0, 6760.0, 6840.0, 2),  # +/- 50 contains the interval, +/- 5 does not
        (6800.0, 6700.0, 6840.0, 1),  # below 6750: only the thousands hold
        (6800.0, 6200.0, 7400.0, 0),  # wider than +/- 500
        (9.96, 9.92, 10.0, 2),  # digits of 9.96 itself: units, tenths (+/- 0.05)
        (9.96, 9.955, 9.964, 3),  # +/- 0.005
        (9.96, 9.90, 10.0, 1),  # 9.90 is below 9.91
        (9.96, 9.50, 10.40, 1),  # inside +/- 0.5 about 9.96
        (9.96, 9.40, 10.40, 0),
        (1.04, 0.995, 1.085, 2),  # +/- 0.05
        (1.04, 0.98, 1.09, 1),
        (1.04, 1.0395, 1.0405, 4),  # +/- 0.0005 holds, +/- 0.00005 does not
        (1.04, 0.50, 1.50, 0),  # 0.50 is below 0.54
        (-250.0, -254.0, -246.0, 2),  # sign does not matter
        (0.0, -1.0, 1.0, 0),
        (5.0, 5.0, 5.0, 15),  # a point interval supports every figure tried
    ],
)
def test_significant_figures_at_digit_boundaries(median, lower, upper, figures):
    assert significant_figures_supported(median, lower, upper) == figures


@pytest.mark.parametrize(
    ("median", "lower", "upper"),
    [(6800.0, 6760.0, 6840.0), (6800.0, 6700.0, 6840.0), (1.04, 0.995, 1.085), (9.96, 9.90, 10.0)],
)
def test_two_figures_agree_with_report_check(median, lower, upper):
    supported = significant_figures_supported(median, lower, upper) >= 2
    assert supported == supports_two_significant_figures(median, lower, upper)


def test_exact_half_unit_bound_counts_as_inside():
    # 1.0 - 0.05 is not exactly 0.95 in binary floating point.
    assert significant_figures_supported(1.0, 0.95, 1.05) == 2


def test_round_to_figures():
    assert round_to_figures(6812.0, 2) == 6800.0
    assert round_to_figures(9.96, 2) == 10.0
    assert math.isnan(round_to_figures(9.96, 0))


def test_half_width_distance_sides():
    assert half_width_distance(12.0, 10.0, 9.0, 14.0) == 0.5
    assert half_width_distance(7.0, 10.0, 9.0, 14.0) == -3.0
    assert half_width_distance(10.0, 10.0, 10.0, 10.0) == 0.0
    assert half_width_distance(11.0, 10.0, 10.0, 10.0) == math.inf


# ---------------------------------------------------------------------------
# Reference table checks


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nosuchlaw(a=1)", "not a continuous distribution"),
        ("norm(loc=1, scale=0.5)", "below 0"),
        ("uniform(loc=0.9, scale=-1)", "outside the domain"),
        ("-2", "positive number"),
        ("lognorm s=0.2", "expected a number or family"),
    ],
)
def test_invalid_conversion_is_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_conversion(text)


def test_shipped_reference_table_loads():
    from uncertainty.agreement import load_nims_table, load_source_ids

    data = ROOT / "data"
    references = load_references(data / "reference" / "agreement_references.csv", load_source_ids(data))
    ids = {reference.id for reference in references}
    assert {"nims2008_Fe", "nims2008_PGM", "tetsugen_fy2003", "jm_ptpd_1999", "jm_pt_2005"} <= ids
    nims = load_nims_table(data / "reference" / "nims2008_stocks.csv")
    assert {f"nims2008_{metal}" for metal in nims.index} <= ids
    for reference in references:
        assert reference.citation.strip(), reference.id
        assert reference.tonnes > 0, reference.id


def test_reference_table_reports_every_defect(tmp_path):
    path = tmp_path / "references.csv"
    header = "id,metal,quantity,year,period,value,unit,basis,conversion,conversion_rationale,error_sd_log,source,citation,note\n"
    path.write_text(
        header
        + "a,Xa,stock,1979,CY,10,t,b,1,r,0.1,test,c,\n"
        + "a,Xa,flow,1979,XY,-1,tons,b,foo(,r,x,nosource,c,\n"
    )
    with pytest.raises(InputError) as caught:
        load_references(path, {"test"})
    found = " ".join(str(problem) for problem in caught.value.problems)
    for expected in ("unique id", "quantity", "period", "unit", "positive number", "error_sd_log", "conversion", "nosource"):
        assert expected in found


# ---------------------------------------------------------------------------
# The compare command on a small invented run


INVENTED_METAL = """
    metal = "{symbol}"
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
    share_prior = {{ family = "lognorm", s = 1.0, scale = 0.1, rationale = "test" }}

    [[flows]]
    name = "export"
    sign = -1
    kind = "share"
    anchors = ["refined_export"]
    walk_step = 0.1
    walk_rationale = "test"
    share_prior = {{ family = "lognorm", s = 1.0, scale = 0.02, rationale = "test" }}
"""

REFERENCES = """\
id,metal,quantity,year,period,value,unit,basis,conversion,conversion_rationale,error_sd_log,source,citation,note
nims_Xa,Xa,stock,,,4500,t,metal,1,same,0.1,test,invented,no year
nims_Xb,Xb,stock,,,3,kt,metal,1,same,0.5,test,invented,no year
gross_Xa_1978,Xa,stock,1978,FY,4000,t,gross,"uniform(loc=0.95, scale=0.04)",invented,0.1,test,invented,
net_Xa_1975,Xa,net_import,1975,CY,150,t,gross demand,"lognorm(s=0.2, scale=0.8)",invented,0.1,test,invented,
net_Xa_1990,Xa,net_import,1990,CY,150,t,gross demand,"lognorm(s=0.2, scale=0.8)",invented,0.1,test,invented,outside the run
ghost_Zz,Zz,stock,,,10,t,metal,1,same,0.1,test,invented,metal not in run
"""

NIMS = """\
metal,stock_t,world_reserves_t,share_of_reserves,source
Xa,4500,30000,0.15,test
Xb,3000,400000,0.0075,test
"""


@pytest.fixture(scope="module")
def invented_run(tmp_path_factory):
    """A run of two invented metals, Xa observed every year and Xb on its prior, and a data folder."""
    root = tmp_path_factory.mktemp("compare")
    metals = {symbol: INVENTED_METAL.format(symbol=symbol) for symbol in ("Xa", "Xb")}
    models = load_models(write_models(root / "models", metals, reporting_sd=0.05))
    years = np.arange(1970, 1980)
    world = [
        {**row, "region": "WLD"}
        for symbol in ("Xa", "Xb")
        for row in observation_rows(symbol, "world_production", years, np.full(years.size, 1000.0 * (1 + 3 * (symbol == "Xb"))))
    ]
    observed = observation_rows("Xa", "refined_import", years, 100.0 + 10.0 * (years - 1970)) + observation_rows(
        "Xa", "refined_export", years, np.full(years.size, 20.0)
    )
    dataset = simulate(models, make_data(world, observed), 1500, seed=3)
    run = root / "run"
    write_result(dataset, make_data(world, observed).reference, run)

    data = root / "data"
    (data / "reference").mkdir(parents=True)
    (data / "sources.csv").write_text("source,publisher,title,url,year,licence\ntest,invented,invented,,,\n")
    (data / "reference" / "agreement_references.csv").write_text(REFERENCES)
    (data / "reference" / "nims2008_stocks.csv").write_text(NIMS)
    return run, data


def test_compare_writes_every_file(invented_run, tmp_path):
    run, data = invented_run
    out = tmp_path / "agreement"
    status = cli.main(["compare", str(run), "--data", str(data), "--out", str(out)])
    assert status == 0
    for name in ("agreement.csv", "verdict.csv", "reserves.csv"):
        assert (out / name).is_file(), name
    for stem in ("forest", "net_import_Xa"):
        for suffix in (".svg", ".png"):
            assert (out / "figures" / f"{stem}{suffix}").is_file(), stem + suffix
    assert not (out / "update.csv").exists()


def test_compare_default_folder_is_inside_run(invented_run):
    run, data = invented_run
    assert cli.main(["compare", str(run), "--data", str(data)]) == 0
    assert (run / "agreement" / "agreement.csv").is_file()
    assert (run / "stocks.nc").is_file()


def test_agreement_rows_and_statuses(invented_run, tmp_path):
    run, data = invented_run
    out = tmp_path / "agreement"
    assert cli.main(["compare", str(run), "--data", str(data), "--out", str(out)]) == 0
    table = pd.read_csv(out / "agreement.csv").set_index("id")
    assert table.loc["nims_Xa", "year"] == 1979
    assert "no year stated" in table.loc["nims_Xa", "status"]
    assert table.loc["ghost_Zz", "status"] == "metal not in run"
    assert table.loc["net_Xa_1990", "status"].startswith("year outside run")
    assert (table["role"] == "check").all()

    # Xa's stock at the end of 1979 is 80 + 90 + ... + 170 = 1250 t, observed with small error.
    row = table.loc["nims_Xa"]
    assert row["eti95_lower"] < 1250 < row["eti95_upper"]
    assert not row["inside"]
    assert row["distance_half_widths"] > 1

    # The converted net import of 1975: 150 x 0.8 = 120 t, against 80 + 10 x 5 = 130 t.
    net = table.loc["net_Xa_1975"]
    assert net["reference_converted_median"] == pytest.approx(120, rel=0.05)
    assert net["eti95_lower"] < 130 < net["eti95_upper"]


def test_net_import_without_world_production_is_skipped(invented_run):
    import xarray as xr

    from uncertainty.agreement import quantity_draws

    run, _ = invented_run
    dataset = xr.open_dataset(run / "stocks.nc").load()
    dataset["world_production"].loc[{"metal": "Xa", "year": 1975}] = np.nan
    reference = Reference(
        id="n", metal="Xa", quantity="net_import", year=1975, period="CY", tonnes=100.0, basis="test",
        conversion_text="1", conversion=None, factor=1.0, error_sd_log=0.1, source="test", citation="", note="",
    )
    draws, year, status = quantity_draws(dataset, reference)
    assert draws is None
    assert year == 1975
    assert status.startswith("no world production in 1975")


def test_verdict_and_reserves(invented_run, tmp_path):
    run, data = invented_run
    out = tmp_path / "agreement"
    assert cli.main(["compare", str(run), "--data", str(data), "--out", str(out)]) == 0
    verdict = pd.read_csv(out / "verdict.csv").set_index("metal")
    assert set(verdict.index) == {"Xa", "Xb"}
    assert verdict.loc["Xa", "significant_figures"] >= 1
    assert verdict.loc["Xb", "significant_figures"] == 0  # prior only: wide
    reserves = pd.read_csv(out / "reserves.csv").set_index("metal")
    assert set(reserves.index) == {"Xa", "Xb"}
    assert reserves.loc["Xa", "nims_rank"] == 1
    assert 0 <= reserves.loc["Xa", "share_of_draws_at_nims_rank"] <= 1
    share = reserves.loc["Xa"]
    assert share["share_eti95_lower"] < 1250 / 30000 < share["share_eti95_upper"]


def test_update_marks_roles_and_narrows(invented_run, tmp_path):
    run, data = invented_run
    out = tmp_path / "agreement"
    status = cli.main(["compare", str(run), "--data", str(data), "--out", str(out), "--update", "nims_Xb"])
    assert status == 0
    table = pd.read_csv(out / "agreement.csv").set_index("id")
    assert table.loc["nims_Xb", "role"] == "update"
    assert table.loc["nims_Xa", "role"] == "check"
    assert np.isnan(table.loc["nims_Xa", "posterior_median"])
    update = pd.read_csv(out / "update.csv").set_index("metal")
    assert update.loc["Xb", "references"] == "nims_Xb"
    prior_width = update.loc["Xb", "prior_eti95_upper"] - update.loc["Xb", "prior_eti95_lower"]
    posterior_width = update.loc["Xb", "posterior_eti95_upper"] - update.loc["Xb", "posterior_eti95_lower"]
    assert posterior_width < prior_width
    assert update.loc["Xb", "effective_sample_size"] > 0
    assert np.isfinite(update.loc["Xb", "pareto_khat"])


def test_unknown_update_id_exits_2(invented_run, tmp_path, capsys):
    run, data = invented_run
    status = cli.main(["compare", str(run), "--data", str(data), "--out", str(tmp_path / "a"), "--update", "nims_Xa,no_such_ref"])
    assert status == 2
    error = capsys.readouterr().err
    assert "no_such_ref" in error
    assert "nims_Xa" not in error
    assert not (tmp_path / "a").exists()


def test_update_outside_run_exits_2(invented_run, tmp_path, capsys):
    run, data = invented_run
    status = cli.main(["compare", str(run), "--data", str(data), "--out", str(tmp_path / "a"), "--update", "ghost_Zz"])
    assert status == 2
    assert "metal not in run" in capsys.readouterr().err


def test_compare_refuses_run_folder_as_out(invented_run, capsys):
    run, data = invented_run
    status = cli.main(["compare", str(run), "--data", str(data), "--out", str(run)])
    assert status == 2
    assert "result folder" in capsys.readouterr().err
    assert (run / "stocks.nc").is_file()


def test_compare_missing_run_exits_2(tmp_path, capsys):
    status = cli.main(["compare", str(tmp_path / "nothing")])
    assert status == 2
    assert "stocks.nc" in capsys.readouterr().err


def test_compare_out_never_replaces_other_folders(invented_run, tmp_path):
    run, data = invented_run
    assert cli.main(["compare", str(run), "--data", str(data), "--out", str(run.parent)]) == 2
    assert (run / "stocks.nc").is_file()
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter.txt").write_text("draft")
    assert cli.main(["compare", str(run), "--data", str(data), "--out", str(foreign)]) == 2
    assert (foreign / "chapter.txt").read_text() == "draft"
    fresh = tmp_path / "fresh"
    assert cli.main(["compare", str(run), "--data", str(data), "--out", str(fresh)]) == 0
    # An earlier comparison may be replaced.
    assert cli.main(["compare", str(run), "--data", str(data), "--out", str(fresh)]) == 0
