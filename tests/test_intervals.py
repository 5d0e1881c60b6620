"""Interval summaries against analytic quantiles of known distributions."""

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from uncertainty.intervals import (
    equal_tailed,
    highest_density,
    relative_half_width,
    second_digit_half_unit,
    summarize,
    supports_two_significant_figures,
)


@pytest.fixture
def normal_draws(rng):
    values = rng.normal(loc=100.0, scale=10.0, size=(40000, 2))
    return xr.DataArray(values, dims=("draw", "metal"), coords={"metal": ["Au", "Ag"]}, attrs={"units": "t"})


def test_equal_tailed_matches_normal_quantiles(normal_draws):
    interval = equal_tailed(normal_draws, 0.95)
    expected = scipy.stats.norm(100.0, 10.0).ppf([0.025, 0.975])
    # The 2.5 % quantile of 40000 normal draws has a standard error of about 0.12.
    np.testing.assert_allclose(interval.sel(metal="Au").values, expected, rtol=0, atol=0.6)
    assert interval.dims == ("metal", "bound")
    assert interval.attrs["units"] == "t"


def test_hdi_of_symmetric_law_matches_eti(normal_draws):
    hdi = highest_density(normal_draws, 0.95)
    eti = equal_tailed(normal_draws, 0.95)
    np.testing.assert_allclose(hdi.values, eti.transpose(*hdi.dims).values, rtol=0, atol=0.8)


def test_hdi_of_skewed_law_is_shorter(rng):
    draws = xr.DataArray(rng.lognormal(0.0, 1.0, size=20000), dims="draw")
    hdi = highest_density(draws, 0.95).values
    eti = equal_tailed(draws, 0.95).values
    assert hdi[1] - hdi[0] < eti[1] - eti[0]
    # The exponential-like left tail makes the HDI start near zero.
    assert hdi[0] < eti[0]


@pytest.mark.parametrize(
    ("value", "half_unit"),
    [(6800.0, 50.0), (60000.0, 500.0), (1.28e9, 5e7), (0.045, 0.0005), (-2500.0, 50.0)],
)
def test_second_digit_half_unit(value, half_unit):
    assert second_digit_half_unit(value) == pytest.approx(half_unit, rel=1e-12)


def test_two_significant_figures_verdict():
    assert supports_two_significant_figures(6800.0, 6760.0, 6840.0)
    assert not supports_two_significant_figures(6800.0, 6700.0, 6840.0)
    assert not supports_two_significant_figures(6800.0, 6760.0, 6900.0)
    assert not supports_two_significant_figures(0.0, -1.0, 1.0)


def test_relative_half_width():
    assert relative_half_width(100.0, 80.0, 130.0) == pytest.approx(0.25)
    assert np.isnan(relative_half_width(0.0, -1.0, 1.0))


def test_summarize_has_every_interval(normal_draws):
    summary = summarize(normal_draws)
    assert set(summary.data_vars) == {"mean", "median", "eti50", "eti90", "eti95", "hdi95"}
    widths = [
        float((summary[name].sel(bound="upper") - summary[name].sel(bound="lower")).sel(metal="Ag"))
        for name in ("eti50", "eti90", "eti95")
    ]
    assert widths[0] < widths[1] < widths[2]
    assert summary["median"].attrs["units"] == "t"
