"""Stock kernel invariants: mass balance, hand-computed stocks, seeds, pre-1976 rule."""

import numpy as np
import pytest

from conftest import make_data, observation_rows, write_models
from uncertainty.engine import cumulative_stock, metal_increment
from uncertainty.simulate import observed_share, prepare_inputs, simulate, simulate_metal_blocks
from uncertainty.spec import load_models

WALK_MODEL = """
    metal = "Xa"
    name = "invented metal"

    [extrapolation]
    rule = "{rule}"
    before = 1976
    rationale = "test"
    {factor}

    [[flows]]
    name = "import"
    sign = 1
    kind = "share"
    anchors = ["refined_import"]
    walk_step = 0.2
    walk_rationale = "test"
    share_prior = {{ family = "lognorm", s = 1.0, scale = 0.1, rationale = "test" }}

    [[flows]]
    name = "demand"
    sign = 0
    kind = "share"
    anchors = ["domestic_demand"]
    walk_step = 0.0
    walk_rationale = "test"
    share_prior = {{ family = "lognorm", s = 0.5, scale = 0.05, rationale = "test" }}

    [[flows]]
    name = "product_export"
    sign = -1
    kind = "product_export"
    demand = "demand"
    sectors = ["S1"]
    mapped_share = {{ family = "uniform", loc = 0.4, scale = 0.2, rationale = "test" }}
    ratio_sigma = 0.0
    ratio_rationale = "test"
"""


def metal_draws(models, data, n_draws, seed):
    """Draw the first metal of ``models`` in float64, as the kernel returns it."""
    model = models.metals[0]
    return simulate_metal_blocks(model, prepare_inputs(model, data, models.boundary), n_draws, seed)


def world_rows(years, values):
    return [{**row, "region": "WLD"} for row in observation_rows("Xa", "world_production", years, values)]


def walk_case(tmp_path, rule="random_walk", factor="", anchor_years=(1985, 1995)):
    years = np.arange(1960, 2001)
    world = 1000.0 * 1.03 ** (years - 1960)
    model = WALK_MODEL.format(rule=rule, factor=factor)
    models = load_models(write_models(tmp_path / "m", {"Xa": model}, 1960, 2000))
    anchor_years = np.array(anchor_years)
    imports = 0.1 * world[anchor_years - 1960]
    data = make_data(world_rows(years, world), observation_rows("Xa", "refined_import", anchor_years, imports))
    return models, data, years, world


def test_stock_difference_equals_net_inflow(tmp_path):
    models, data, _, _ = walk_case(tmp_path)
    result = simulate(models, data, n_draws=300, seed=3)
    stock = result["stock"].sel(metal="Xa").values
    increment = result["increment"].sel(metal="Xa").values
    np.testing.assert_allclose(np.diff(stock, axis=1), increment[:, 1:], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(stock[:, 0], increment[:, 0], rtol=1e-12, atol=1e-9)

    # Flows are stored in float32, so the signed sum matches to float32 precision.
    signs = result["sign"].sel(metal="Xa").values
    flows = result["flows"].sel(metal="Xa").fillna(0.0).values.astype(float)
    net = np.einsum("f,dfy->dy", signs, flows)
    np.testing.assert_allclose(net, increment, rtol=1e-6, atol=1e-6 * np.abs(flows).max())


def test_noise_free_observations_give_hand_stock(fully_observed):
    models, data, imports, exports = fully_observed
    result = simulate(models, data, n_draws=50, seed=1)
    expected = np.cumsum(imports - exports)
    stock = result["stock"].sel(metal="Xa").values
    # Every year is a noise-free anchor, so every draw equals the hand-computed stock.
    np.testing.assert_allclose(stock, np.broadcast_to(expected, stock.shape), rtol=1e-6, atol=0)


def test_fully_observed_share_is_one(fully_observed):
    models, data, _, _ = fully_observed
    result = simulate(models, data, n_draws=10, seed=1)
    share = observed_share(result, 1979).sel(metal="Xa").values
    np.testing.assert_allclose(share, 1.0, rtol=0, atol=1e-12)


def test_constant_flows_give_linear_stock(tmp_path):
    years = np.arange(1970, 1980)
    model = WALK_MODEL.format(rule="random_walk", factor="").split("[[flows]]\n    name = \"demand\"")[0]
    models = load_models(write_models(tmp_path / "m", {"Xa": model}))
    data = make_data(
        world_rows(years, np.full(years.size, 500.0)),
        observation_rows("Xa", "refined_import", years, np.full(years.size, 40.0)),
    )
    stock = simulate(models, data, n_draws=20, seed=5)["stock"].sel(metal="Xa").values
    expected = 40.0 * np.arange(1, years.size + 1)
    np.testing.assert_allclose(stock, np.broadcast_to(expected, stock.shape), rtol=1e-6, atol=0)


def test_same_seed_same_arrays(tmp_path):
    models, data, _, _ = walk_case(tmp_path)
    first = simulate(models, data, n_draws=200, seed=42)
    second = simulate(models, data, n_draws=200, seed=42)
    other = simulate(models, data, n_draws=200, seed=43)
    np.testing.assert_array_equal(first["stock"].values, second["stock"].values)
    np.testing.assert_array_equal(first["input_value"].values, second["input_value"].values)
    assert not np.array_equal(first["stock"].values, other["stock"].values)


def test_constant_share_rule_is_proportional(tmp_path):
    factor = 'factor = { family = "lognorm", s = 0.3, scale = 1.0, rationale = "test" }'
    models, data, years, world = walk_case(tmp_path, "constant_share", factor)
    draws = metal_draws(models, data, 200, seed=9)
    imports = draws.flows["import"]
    share = imports / world
    early = years < 1976
    # Before 1976 each draw's flow is a fixed share of world production.
    first = np.broadcast_to(share[:, :1], share[:, early].shape)
    np.testing.assert_allclose(share[:, early], first, rtol=1e-10, atol=0)
    # The extrapolation factor scales the odds of the early share against 1976.
    odds = share / (1.0 - share)
    ratio = odds[:, early][:, 0] / odds[:, years == 1976][:, 0]
    factor_draws = draws.inputs["import.extrapolation_factor"]
    np.testing.assert_allclose(ratio, factor_draws, rtol=1e-10)


def test_share_passes_through_anchors_and_spreads(tmp_path):
    models, data, years, world = walk_case(tmp_path)
    imports = metal_draws(models, data, 4000, seed=11).flows["import"]
    assert np.all(imports < world)
    # A share of world production walks on the logit scale, so it stays below 1.
    logit_share = np.log(imports / (world - imports))
    np.testing.assert_allclose(logit_share[:, years == 1985], np.log(0.1 / 0.9), rtol=0, atol=1e-6)
    np.testing.assert_allclose(logit_share[:, years == 1995], np.log(0.1 / 0.9), rtol=0, atol=1e-6)
    spread = logit_share.std(axis=0)
    # Moving away from the anchors the sd grows: 1990 (bridge) < 1980 < 1970 < 1960.
    at = {year: spread[years == year][0] for year in (1960, 1970, 1980, 1990, 1998, 2000)}
    assert at[1990] < at[1980] < at[1970] < at[1960]
    assert at[1998] < at[2000]
    # Unpinned walk beyond an anchor: sd = step * sqrt(distance); 25 years before 1985.
    assert at[1960] == pytest.approx(0.2 * np.sqrt(25), rel=0.05)


def test_product_export_is_demand_times_factor(tmp_path):
    years = np.arange(1970, 1980)
    models = load_models(write_models(tmp_path / "m", {"Xa": WALK_MODEL.format(rule="random_walk", factor="")}))
    data = make_data(
        world_rows(years, np.full(years.size, 1000.0)),
        observation_rows("Xa", "domestic_demand", years, np.full(years.size, 50.0)),
        ratios={"S1": 0.4},
    )
    draws = metal_draws(models, data, 100, seed=2)
    exported = draws.flows["product_export"]
    mapped = draws.inputs["product_export.mapped_share"]
    np.testing.assert_allclose(exported, 50.0 * 0.4 * mapped[:, None] * np.ones(years.size), rtol=1e-6)


def test_increment_and_cumsum_kernels(tmp_path):
    models, _, _, _ = walk_case(tmp_path)
    model = models.metals[0]
    flows = {
        "import": np.full((2, 4), 10.0),
        "demand": np.full((2, 4), 99.0),
        "product_export": np.arange(8.0).reshape(2, 4),
    }
    increment = metal_increment(model, flows)
    # The auxiliary demand (sign 0) does not count.
    np.testing.assert_array_equal(increment, 10.0 - flows["product_export"])
    np.testing.assert_array_equal(cumulative_stock(increment)[..., -1], increment.sum(axis=-1))


def test_draws_do_not_depend_on_run_size(tmp_path):
    models, data, _, _ = walk_case(tmp_path)
    small = simulate(models, data, n_draws=300, seed=42)
    large = simulate(models, data, n_draws=700, seed=42)
    np.testing.assert_array_equal(small["stock"].values, large["stock"].values[:300])
    np.testing.assert_array_equal(small["input_value"].values, large["input_value"].values[:300])


def test_dropped_observation_is_not_observed(tmp_path):
    years = np.arange(1960, 2001)
    world = 1000.0 * 1.03 ** (years - 1960)
    models = load_models(write_models(tmp_path / "m", {"Xa": WALK_MODEL.format(rule="random_walk", factor="")}, 1960, 2000))
    # World production is missing in 1990, so the 1990 import cannot pin a share.
    kept = years != 1990
    data = make_data(
        world_rows(years[kept], world[kept]),
        observation_rows("Xa", "refined_import", [1985, 1990], [100.0, 120.0]),
    )
    draws = metal_draws(models, data, 10, seed=1)
    assert draws.observed["import"][1985 - 1960]
    assert not draws.observed["import"][1990 - 1960]
    assert any("1990 dropped" in note for note in draws.notes)


def test_sum_flow_is_apparent_consumption(fully_observed, tmp_path):
    import textwrap

    models, data, imports, exports = fully_observed
    text = (models.metals[0].path.read_text() + textwrap.dedent("""
        [[flows]]
        name = "apparent"
        sign = 0
        kind = "sum"
        terms = ["import", "-export"]

        [[flows]]
        name = "product_export"
        sign = -1
        kind = "product_export"
        demand = "apparent"
        sectors = ["S1"]
        mapped_share = { family = "uniform", loc = 0.4, scale = 0.2, rationale = "test" }
        ratio_sigma = 0.0
        ratio_rationale = "test"
    """))
    models = load_models(write_models(tmp_path / "sum", {"Xa": text}))
    draws = metal_draws(models, data, 50, seed=1)
    np.testing.assert_allclose(draws.flows["apparent"], np.broadcast_to(imports - exports, (50, imports.size)), rtol=1e-9)
    assert draws.observed["apparent"].all()
    mapped = draws.inputs["product_export.mapped_share"]
    expected = (imports - exports)[None, :] * 0.5 * mapped[:, None]
    np.testing.assert_allclose(draws.flows["product_export"], expected, rtol=1e-9)
