"""Credible intervals of the draws: equal-tailed, highest-density, significant figures.

The arviz calls live here alone: arviz 0.23 (the release for Python 3.11)
emits a FutureWarning on import and on 2-d input, which this module keeps
away from callers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz

#: Probability masses of the equal-tailed intervals that summaries report.
ETI_PROBS = (0.50, 0.90, 0.95)


def equal_tailed(draws: xr.DataArray, prob: float, dim: str = "draw") -> xr.DataArray:
    """Return the equal-tailed interval of mass ``prob`` over ``dim``.

    The ``dim`` dimension is removed and a ``bound`` dimension (``lower``,
    ``upper``) is added; units are those of ``draws``.
    """
    tail = (1.0 - prob) / 2.0
    bounds = draws.quantile([tail, 1.0 - tail], dim=dim).rename(quantile="bound")
    bounds = bounds.assign_coords(bound=["lower", "upper"]).transpose(..., "bound")
    bounds.attrs = dict(draws.attrs)
    return bounds


def highest_density(draws: xr.DataArray, prob: float = 0.95, dim: str = "draw") -> xr.DataArray:
    """Return the highest-density interval of mass ``prob`` over ``dim`` (arviz ``hdi``).

    The ``dim`` dimension is removed and a ``bound`` dimension (``lower``,
    ``upper``) is added; units are those of ``draws``.
    """
    moved = draws.transpose(dim, ...)
    values = moved.values.reshape(1, moved.shape[0], -1)

    # arviz reads a 3-d array as (chain, draw, *shape), so one chain contains every draw.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        interval = arviz.hdi(values, hdi_prob=prob)
    interval = interval.reshape(*moved.shape[1:], 2)
    other = [name for name in moved.dims if name != dim]
    result = xr.DataArray(
        interval,
        dims=(*other, "bound"),
        coords={**{name: moved[name] for name in other}, "bound": ["lower", "upper"]},
        attrs=dict(draws.attrs),
    )
    return result


def second_digit_half_unit(value: float) -> float:
    """Return half a unit of the second significant digit of ``value``.

    For 6,800 the second significant digit is the hundreds, so the result is 50.
    Returns NaN for zero or non-finite values.
    """
    if not math.isfinite(value) or value == 0:
        return math.nan
    exponent = math.floor(math.log10(abs(value)))
    return 0.5 * 10.0 ** (exponent - 1)


def supports_two_significant_figures(median: float, lower: float, upper: float) -> bool:
    """Tell whether the interval lies within half a unit of the median's second digit.

    A stock quoted with two significant figures (6,800 t) claims an error
    below half a unit of the second digit (50 t). The claim is supported when
    the whole 95 % interval is inside median +/- that half unit.
    """
    half = second_digit_half_unit(median)
    if math.isnan(half):
        return False
    return median - half <= lower and upper <= median + half


def summarize(draws: xr.DataArray, dim: str = "draw") -> xr.Dataset:
    """Summarise draws by mean, median, equal-tailed intervals and the 95 % HDI.

    Returns a Dataset with variables ``mean``, ``median``, ``eti50``, ``eti90``,
    ``eti95`` and ``hdi95`` (the intervals with a ``bound`` dimension), over
    the dimensions of ``draws`` except ``dim``, in the units of ``draws``.
    """
    summary = xr.Dataset(
        {
            "mean": draws.mean(dim=dim),
            "median": draws.median(dim=dim),
            **{f"eti{round(100 * p)}": equal_tailed(draws, p, dim) for p in ETI_PROBS},
            "hdi95": highest_density(draws, 0.95, dim),
        }
    )
    for name in summary.data_vars:
        summary[name].attrs["units"] = draws.attrs.get("units", "")
    return summary


def relative_half_width(median: float, lower: float, upper: float) -> float:
    """Return half the interval width divided by the median's magnitude (NaN for a zero median)."""
    if median == 0 or not math.isfinite(median):
        return math.nan
    return (upper - lower) / 2.0 / abs(median)
