"""Tables of a chunked run: exact at the reference year, histogram quantiles elsewhere."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from uncertainty.chunked import QUANTILES
from uncertainty.errors import InputError, Problem
from uncertainty.intervals import (
    equal_tailed,
    highest_density,
    relative_half_width,
    summarize,
    supports_two_significant_figures,
)
from uncertainty.plots import fan_chart, save_figure
from uncertainty.report import atomic_folder, interrupts_deferred, load_netcdf, summary_table

#: File that marks a folder as a complete chunked result.
CHUNKED_MARKER = "chunked.nc"

#: Variables of chunked.nc that the tables and ``urbanmine compare`` read, with their dimensions.
CHUNKED_VARIABLES = {
    "reference_stock": ("draw", "metal"),
    "observed_share": ("draw", "metal"),
    "stock_mean": ("metal", "year"),
    "negative_draw_fraction": ("metal", "year"),
    "stock_quantile": ("metal", "year", "quantile"),
    "prior_only": ("metal",),
}


def is_chunked_run(dataset: xr.Dataset) -> bool:
    """Tell whether ``dataset`` contains the summaries of a chunked run rather than every draw."""
    return "reference_stock" in dataset.data_vars and "stock" not in dataset.data_vars


def open_chunked_result(path: Path) -> xr.Dataset:
    """Load a chunked run's ``chunked.nc`` into memory and check that it has what the tables read.

    Raises ``InputError`` naming the file and every missing variable,
    attribute or quantile, or the reason the file cannot be read.
    """
    path = Path(path)
    dataset = load_netcdf(path, "a netCDF file written by 'urbanmine run --chunk'")

    problems = []
    for name, dims in CHUNKED_VARIABLES.items():
        if name not in dataset.data_vars:
            problems.append(Problem(str(path), f"variable {name!r}", f"dimensions {dims}", "no such variable"))
        elif dataset[name].dims != dims:
            problems.append(Problem(str(path), f"variable {name!r}", f"dimensions {dims}", repr(dataset[name].dims)))
    year = dataset.attrs.get("reference_year")
    if year is None:
        problems.append(Problem(str(path), "attribute 'reference_year'", "the reference year", "no such attribute"))
    elif "year" in dataset.coords and int(year) not in dataset["year"].values:
        problems.append(Problem(str(path), "attribute 'reference_year'", "a year of the coordinate 'year'", repr(year)))
    if "quantile" in dataset.coords:
        stored = dataset["quantile"].values
        missing = [q for q in QUANTILES if not np.any(np.isclose(stored, q, rtol=0, atol=1e-9))]
        if missing:
            found = f"{stored.tolist()}, without {missing}"
            problems.append(Problem(str(path), "coordinate 'quantile'", f"the probabilities {list(QUANTILES)}", found))
    if problems:
        raise InputError(problems)
    return dataset


def chunked_stock_summary(dataset: xr.Dataset) -> xr.Dataset:
    """Summarise a chunked run's stock per metal and year, as :func:`uncertainty.intervals.summarize` does.

    Means are exact. Quantiles come from the histograms, except in the
    reference year, where every draw is kept and they are exact. The 95 %
    highest-density interval exists for the reference year only (NaN elsewhere).
    """
    quantile = dataset["stock_quantile"]

    def interval(lower: float, upper: float) -> xr.DataArray:
        bounds = xr.concat(
            [quantile.sel(quantile=lower, drop=True), quantile.sel(quantile=upper, drop=True)], dim="bound"
        )
        return bounds.assign_coords(bound=["lower", "upper"]).transpose(..., "bound")

    summary = xr.Dataset(
        {
            "mean": dataset["stock_mean"],
            "median": quantile.sel(quantile=0.5, drop=True),
            "eti50": interval(0.25, 0.75),
            "eti90": interval(0.05, 0.95),
            "eti95": interval(0.025, 0.975),
        }
    )
    summary["hdi95"] = xr.full_like(summary["eti95"], np.nan)

    # The mean stays the exact running mean, and every other statistic of the
    # reference year is recomputed from its draws.
    exact = summarize(dataset["reference_stock"])
    year = int(dataset.attrs["reference_year"])
    for name in ("median", "eti50", "eti90", "eti95", "hdi95"):
        summary[name].loc[{"year": year}] = exact[name].transpose(*summary[name].sel(year=year).dims)
    return summary


def chunked_summary_table(dataset: xr.Dataset) -> pd.DataFrame:
    """Flatten a chunked run into the rows and columns of an in-memory ``summary.csv``.

    The extra column ``quantiles_from`` is ``draws`` in the reference year and
    ``histogram`` in every other year.
    """
    frame = summary_table(
        chunked_stock_summary(dataset), dataset["negative_draw_fraction"], prior_only=dataset["prior_only"]
    )
    reference_year = frame["year"] == int(dataset.attrs["reference_year"])
    frame["quantiles_from"] = np.where(reference_year, "draws", "histogram")
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
    # A chunked.nc without comparison keys (older runs) matches metals by symbol.
    keys = dataset["comparison_key"].values if "comparison_key" in dataset else dataset["metal"].values
    not_counted = {}
    if "flows_not_counted" in dataset:
        not_counted = dict(zip(dataset["metal"].values, (str(v) for v in dataset["flows_not_counted"].values)))
    rows = []
    for metal, key in zip(dataset["metal"].values, keys):
        middle = float(median.sel(metal=metal))
        lower, upper = (float(v) for v in eti.sel(metal=metal).values)
        nims = float(published.get(str(key), math.nan))
        rows.append(
            {
                "metal": metal,
                "reference_year": int(dataset.attrs["reference_year"]),
                "median": middle,
                "eti95_lower": lower,
                "eti95_upper": upper,
                "hdi95_lower": float(hdi.sel(metal=metal, bound="lower")),
                "hdi95_upper": float(hdi.sel(metal=metal, bound="upper")),
                "nims_key": str(key),
                "nims_stock": nims,
                "nims_inside_eti95": bool(lower <= nims <= upper) if math.isfinite(nims) else None,
                "observed_share": float(share.sel(metal=metal)),
                "relative_half_width_95": relative_half_width(middle, lower, upper),
                "supports_two_sig_figs": supports_two_significant_figures(middle, lower, upper),
                "prior_only": bool(dataset["prior_only"].sel(metal=metal)),
                "negative_draw_fraction": float((stock.sel(metal=metal) < 0).mean()),
                "flows_not_counted": not_counted.get(metal, ""),
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


def write_chunked_tables_and_figures(dataset: xr.Dataset, reference: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Write summary.csv, comparison.csv and fan charts of a chunked run into ``folder`` and return the comparison."""
    folder = Path(folder)
    chunked_summary_table(dataset).to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    comparison = chunked_comparison_table(dataset, reference)
    comparison.to_csv(folder / "comparison.csv", index=False, float_format="%.6g")

    # Fan charts from the histogram quantiles; the observed years are not kept by a chunked run.
    figures = folder / "figures"
    figures.mkdir(exist_ok=True)
    bands = band_summary(dataset)
    for row in comparison.itertuples():
        figure = fan_chart(
            bands, row.metal, int(dataset.attrs["reference_year"]), np.array([], dtype=int),
            row.nims_stock, "NIMS 2008", row.prior_only,
        )
        save_figure(figure, figures / f"stock_{row.metal}")
    return comparison


def write_chunked_result(dataset: xr.Dataset, reference: pd.DataFrame, target: Path, force: bool) -> pd.DataFrame:
    """Write chunked.nc, summary.csv, comparison.csv and fan charts atomically; return the comparison."""
    with atomic_folder(target, force, marker=CHUNKED_MARKER) as staging:
        comparison = write_chunked_tables_and_figures(dataset, reference, staging)
        with interrupts_deferred():
            dataset.to_netcdf(staging / CHUNKED_MARKER, engine="netcdf4")
    return comparison
