"""Grouped Sobol indices against an additive case with analytic indices."""

import numpy as np
import pytest

from conftest import make_data, observation_rows, write_models
from test_engine import world_rows
from uncertainty.sobol import GroupedSobol, SobolWarning, sobol_table, top_groups_stable
from uncertainty.spec import load_models

# Two ore imports observed every year in gross weight without error, so each
# contributes gross tonnage x its grade, and the stock is additive in the grades.
TWO_GRADES = """
    metal = "Xa"
    name = "invented metal"

    [extrapolation]
    rule = "random_walk"
    before = 1976
    rationale = "test"

    [[flows]]
    name = "ore_a"
    sign = 1
    kind = "share"
    anchors = ["ore_import"]
    walk_step = 0.2
    walk_rationale = "test"
    share_prior = {{ family = "lognorm", s = 1.0, scale = 0.01, rationale = "test" }}
    grade = {{ family = "uniform", loc = 0.2, scale = {width_a}, rationale = "test" }}

    [[flows]]
    name = "ore_b"
    sign = 1
    kind = "share"
    anchors = ["ore_import"]
    walk_step = 0.2
    walk_rationale = "test"
    share_prior = {{ family = "lognorm", s = 1.0, scale = 0.01, rationale = "test" }}
    grade = {{ family = "uniform", loc = 0.2, scale = {width_b}, rationale = "test" }}
"""


def two_grade_case(tmp_path, width_a, width_b, extra=""):
    years = np.arange(1970, 1980)
    text = TWO_GRADES.format(width_a=width_a, width_b=width_b) + extra
    models = load_models(write_models(tmp_path / "m", {"Xa": text}))
    data = make_data(
        world_rows(years, np.full(years.size, 1e6)),
        observation_rows("Xa", "ore_import", years, np.full(years.size, 100.0), basis="gross_weight"),
    )
    return models, data


def test_additive_grades_match_analytic_indices(tmp_path):
    # Stock = 1000 t x (grade_a + grade_b); a uniform of width w has variance w^2 / 12,
    # so S_a = ST_a = w_a^2 / (w_a^2 + w_b^2) = 0.8 for widths 0.2 and 0.1.
    models, data = two_grade_case(tmp_path, 0.2, 0.1)
    design = GroupedSobol(models, data, n=4096, seed=3)
    groups = design.evaluate("Xa")
    result = design.indices("Xa", n_bootstrap=200)
    table = dict(zip(groups, zip(result.first, result.total)))
    # Over eight seeds at n = 4096 the sd of the first-order estimate was 0.023
    # and of the total-order estimate 0.011; the tolerances are about 3.5 sd.
    assert table["ore_a.grade"][0] == pytest.approx(0.8, abs=0.08)
    assert table["ore_a.grade"][1] == pytest.approx(0.8, abs=0.04)
    assert table["ore_b.grade"][1] == pytest.approx(0.2, abs=0.04)
    # Noise-free anchors every year leave the walks no influence at all.
    assert table["ore_a.walk"][1] == pytest.approx(0.0, abs=1e-12)
    lower, upper = result.total_interval[groups.index("ore_a.grade")]
    assert lower < 0.8 < upper


def test_prefix_sizes_and_flags(tmp_path):
    models, data = two_grade_case(tmp_path, 0.2, 0.1)
    design = GroupedSobol(models, data, n=2048, seed=5)
    design.evaluate("Xa")
    results = [design.indices("Xa", n=size, n_bootstrap=100) for size in (512, 1024, 2048)]
    table = sobol_table(results)
    assert set(table["n"]) == {512, 1024, 2048}
    walk = table[(table["group"] == "ore_a.walk") & (table["n"] == 2048)]
    assert not walk["total_order_distinguishable"].item()
    grade = table[(table["group"] == "ore_a.grade") & (table["n"] == 2048)]
    assert grade["total_order_distinguishable"].item()
    assert grade["first_order_distinguishable"].item()
    assert top_groups_stable(results, count=1)


def test_zero_variance_gives_nan_and_warning(fully_observed):
    models, data, _, _ = fully_observed
    design = GroupedSobol(models, data, n=256, seed=1)
    design.evaluate("Xa")
    with pytest.warns(SobolWarning, match="zero variance"):
        result = design.indices("Xa", n_bootstrap=10)
    assert np.isnan(result.total).all()


CORRELATED = """
    [[correlations]]
    inputs = ["ore_a.grade", "ore_b.grade"]
    rho = {rho}
    rationale = "test"
"""


def test_copula_correlates_grades(tmp_path):
    # Grades drawn through a Gaussian copula with rho = 0.9: the correlation of
    # their normal scores is 0.9 up to a sampling sd of about 0.002 at n = 8192.
    import scipy.stats

    from test_engine import metal_draws

    models, data = two_grade_case(tmp_path, 0.2, 0.1, extra=CORRELATED.format(rho=0.9))
    draws = metal_draws(models, data, 8192, seed=3)
    scores_a = scipy.stats.norm.ppf((draws.inputs["ore_a.grade"] - 0.2) / 0.2)
    scores_b = scipy.stats.norm.ppf((draws.inputs["ore_b.grade"] - 0.2) / 0.1)
    assert np.corrcoef(scores_a, scores_b)[0, 1] == pytest.approx(0.9, abs=0.01)


def test_correlated_inputs_form_one_sobol_group(tmp_path):
    models, data = two_grade_case(tmp_path, 0.2, 0.1, extra=CORRELATED.format(rho=0.5))
    design = GroupedSobol(models, data, n=2048, seed=2)
    groups = design.evaluate("Xa")
    assert "copula:ore_a.grade+ore_b.grade" in groups
    assert "ore_a.grade" not in groups
    result = design.indices("Xa", n_bootstrap=50)
    # Both grades move together, so their joint group carries all the variance.
    assert result.total[groups.index("copula:ore_a.grade+ore_b.grade")] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    ("block", "location"),
    [
        ('inputs = ["ore_a.grade"]\nrho = 0.5\nrationale = "x"', "correlations[0].inputs"),
        ('inputs = ["ore_a.grade", "nope.grade"]\nrho = 0.5\nrationale = "x"', "correlations[0].inputs"),
        ('inputs = ["ore_a.grade", "ore_b.grade"]\nrho = 1.0\nrationale = "x"', "correlations[0].rho"),
        ('inputs = ["ore_a.grade", "ore_b.grade"]\nrho = 0.5', "correlations[0]"),
    ],
)
def test_invalid_correlation_names_the_key(tmp_path, block, location):
    from uncertainty.errors import InputError

    text = TWO_GRADES.format(width_a=0.2, width_b=0.1) + "\n[[correlations]]\n" + block + "\n"
    with pytest.raises(InputError) as caught:
        load_models(write_models(tmp_path / "m", {"Xa": text}))
    assert location in [problem.location for problem in caught.value.problems]
