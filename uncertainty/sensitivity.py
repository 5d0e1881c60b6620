"""Sensitivity of each metal's stock to its scalar inputs, from an ordinary run."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr


def rank_correlations(dataset: xr.Dataset, year: int) -> pd.DataFrame:
    """Return Spearman's rank correlation of each scalar input with the stock in ``year``.

    One row per input, with columns ``metal, input, spearman, p_value,
    n_draws``. Inputs are those recorded per draw by the engine: grades,
    mapped shares, sector export ratios, extrapolation factors and the share
    of each flow in the reference year. A constant input (zero variance) has
    NaN correlation. These are a first look only: correlations do not split
    variance the way Sobol indices do.
    """
    stock = dataset["stock"].sel(year=year)
    rows = []
    for name in dataset["input"].values:
        metal = str(dataset["input_metal"].sel(input=name).item())
        values = dataset["input_value"].sel(input=name).values
        target = stock.sel(metal=metal).values
        if np.ptp(values) == 0 or np.ptp(target) == 0:
            correlation, p_value = np.nan, np.nan
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                correlation, p_value = scipy.stats.spearmanr(values, target)
        rows.append(
            {
                "metal": metal,
                "input": str(name).split(":", 1)[1],
                "spearman": float(correlation),
                "p_value": float(p_value),
                "n_draws": int(values.size),
            }
        )
    frame = pd.DataFrame(rows, columns=["metal", "input", "spearman", "p_value", "n_draws"])
    order = frame["spearman"].abs().fillna(-1.0)
    return frame.assign(order=order).sort_values(["metal", "order"], ascending=[True, False]).drop(columns="order")
