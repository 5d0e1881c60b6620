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
    supports_two_significant_figures,
)
from uncertainty.plots import fan_chart, save_figure
from uncertainty.report import atomic_folder, interrupts_deferred

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
    try:
        with interrupts_deferred(), xr.open_dataset(path, engine="netcdf4") as opened:
            dataset = opened.load()
    except (OSError, ValueError) as exc:
        expected = "a netCDF file written by 'urbanmine run --chunk'"
        raise InputError([Problem(str(path), "file", expected, f"an unreadable file ({exc})")]) from exc

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


def chunked_summary_table(dataset: xr.Dataset) -> pd.DataFrame:
    """Flatten a chunked run into one row per metal and year, in the columns of an in-memory summary.

    Means and negative shares are exact. Quantiles come from the histograms,
    except in the reference year, where every draw is kept and they are
    exact (``quantiles_from`` says which). The 95 % highest-density interval
    exists for the reference year only.
    """
    quantile = dataset["stock_quantile"]
    frame = dataset["stock_mean"].to_dataframe(name="mean").reset_index()
    columns = {
        "median": 0.5,
        "eti50_lower": 0.25,
        "eti50_upper": 0.75,
        "eti90_lower": 0.05,
        "eti90_upper": 0.95,
        "eti95_lower": 0.025,
        "eti95_upper": 0.975,
    }
    for name, probability in columns.items():
        frame[name] = quantile.sel(quantile=probability).values.ravel()
    frame["hdi95_lower"] = np.nan
    frame["hdi95_upper"] = np.nan
    frame["quantiles_from"] = "histogram"

    # Reference-year rows from every draw, as a run held in memory computes them.
    stock = dataset["reference_stock"]
    rows = frame["year"] == int(dataset.attrs["reference_year"])
    metals = frame.loc[rows, "metal"].to_numpy()
    frame.loc[rows, "median"] = stock.median("draw").sel(metal=metals).values
    for name in ("eti50", "eti90", "eti95"):
        bounds = equal_tailed(stock, int(name[3:]) / 100).sel(metal=metals)
        frame.loc[rows, f"{name}_lower"] = bounds.sel(bound="lower").values
        frame.loc[rows, f"{name}_upper"] = bounds.sel(bound="upper").values
    hdi = highest_density(stock, 0.95).sel(metal=metals)
    frame.loc[rows, "hdi95_lower"] = hdi.sel(bound="lower").values
    frame.loc[rows, "hdi95_upper"] = hdi.sel(bound="upper").values
    frame.loc[rows, "quantiles_from"] = "draws"

    frame["negative_draw_fraction"] = dataset["negative_draw_fraction"].values.ravel()
    frame["prior_only"] = np.repeat(dataset["prior_only"].values, dataset["year"].size)
    frame["unit"] = "t"
    return frame[[column for column in frame.columns if column != "quantiles_from"] + ["quantiles_from"]]


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
