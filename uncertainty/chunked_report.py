"""Tables of a chunked run: exact at the reference year, histogram quantiles elsewhere."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from uncertainty.intervals import (
    equal_tailed,
    highest_density,
    relative_half_width,
    supports_two_significant_figures,
)
from uncertainty.plots import fan_chart, save_figure
from uncertainty.report import atomic_folder

#: File that marks a folder as a complete chunked result.
CHUNKED_MARKER = "chunked.nc"


def chunked_summary_table(dataset: xr.Dataset) -> pd.DataFrame:
    """Flatten a chunked run into one row per metal and year.

    Means and negative shares are exact; quantiles come from the histograms.
    """
    quantile = dataset["stock_quantile"]
    frame = dataset["stock_mean"].to_dataframe(name="mean").reset_index()
    columns = {
        "median": 0.5,
        "eti90_lower": 0.05,
        "eti90_upper": 0.95,
        "eti95_lower": 0.025,
        "eti95_upper": 0.975,
        "eti50_lower": 0.25,
        "eti50_upper": 0.75,
    }
    for name, probability in columns.items():
        frame[name] = quantile.sel(quantile=probability).values.ravel()
    frame["negative_draw_fraction"] = dataset["negative_draw_fraction"].values.ravel()
    frame["quantiles_from"] = "histogram"
    frame["unit"] = "t"
    return frame


def chunked_comparison_table(dataset: xr.Dataset, reference: pd.DataFrame) -> pd.DataFrame:
    """Per metal at the reference year, exact intervals from every draw, beside NIMS."""
    stock = dataset["reference_stock"]
    stock.attrs["units"] = "t"
    eti = equal_tailed(stock, 0.95)
    hdi = highest_density(stock, 0.95)
    median = stock.median("draw")
    share = dataset["observed_share"].median("draw")
    published = reference.set_index("metal")["stock_t"]
    rows = []
    for metal in dataset["metal"].values:
        middle = float(median.sel(metal=metal))
        lower, upper = (float(v) for v in eti.sel(metal=metal).values)
        nims = float(published.get(metal, math.nan))
        rows.append(
            {
                "metal": metal,
                "reference_year": int(dataset.attrs["reference_year"]),
                "median": middle,
                "eti95_lower": lower,
                "eti95_upper": upper,
                "hdi95_lower": float(hdi.sel(metal=metal, bound="lower")),
                "hdi95_upper": float(hdi.sel(metal=metal, bound="upper")),
                "nims_stock": nims,
                "nims_inside_eti95": bool(lower <= nims <= upper) if math.isfinite(nims) else None,
                "observed_share": float(share.sel(metal=metal)),
                "relative_half_width_95": relative_half_width(middle, lower, upper),
                "supports_two_sig_figs": supports_two_significant_figures(middle, lower, upper),
                "prior_only": bool(dataset["prior_only"].sel(metal=metal)),
                "negative_draw_fraction": float((stock.sel(metal=metal) < 0).mean()),
                "n_draws": int(stock.sizes["draw"]),
                "unit": "t",
            }
        )
    return pd.DataFrame(rows)


def band_summary(dataset: xr.Dataset) -> xr.Dataset:
    """Arrange the histogram quantiles as the interval bands a fan chart draws (dims metal, year)."""
    quantile = dataset["stock_quantile"]

    def band(lower: float, upper: float) -> xr.DataArray:
        pair = quantile.sel(quantile=[lower, upper]).rename(quantile="bound")
        return pair.assign_coords(bound=["lower", "upper"])

    return xr.Dataset(
        {
            "median": quantile.sel(quantile=0.5, drop=True),
            "eti50": band(0.25, 0.75),
            "eti90": band(0.05, 0.95),
            "eti95": band(0.025, 0.975),
        }
    )


def write_chunked_result(dataset: xr.Dataset, reference: pd.DataFrame, target: Path, force: bool) -> pd.DataFrame:
    """Write chunked.nc, summary.csv, comparison.csv and fan charts atomically; return the comparison."""
    with atomic_folder(target, force, marker=CHUNKED_MARKER) as staging:
        chunked_summary_table(dataset).to_csv(staging / "summary.csv", index=False, float_format="%.6g")
        comparison = chunked_comparison_table(dataset, reference)
        comparison.to_csv(staging / "comparison.csv", index=False, float_format="%.6g")

        # Fan charts from the histogram quantiles; the observed years are not kept by a chunked run.
        figures = staging / "figures"
        figures.mkdir()
        bands = band_summary(dataset)
        for row in comparison.itertuples():
            figure = fan_chart(
                bands, row.metal, int(dataset.attrs["reference_year"]), np.array([], dtype=int),
                row.nims_stock, "NIMS 2008", row.prior_only,
            )
            save_figure(figure, figures / f"stock_{row.metal}")
        dataset.to_netcdf(staging / CHUNKED_MARKER, engine="netcdf4")
    return comparison
