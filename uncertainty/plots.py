"""Figures of a run: a fan chart of the stock per metal."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

#: Band fill opacity by interval mass; wider bands are lighter.
BAND_ALPHA = {"eti95": 0.15, "eti90": 0.25, "eti50": 0.45}


def fan_chart(
    summary: xr.Dataset,
    metal: str,
    reference_year: int,
    anchor_years: np.ndarray,
    published: float | None,
    published_label: str,
    prior_only: bool,
) -> plt.Figure:
    """Draw the stock of one metal over the years: median and 50/90/95 % bands.

    Parameters
    ----------
    summary : xarray.Dataset
        Output of :func:`uncertainty.intervals.summarize` for the stock, dims
        ``metal, year`` (and ``bound`` for intervals), in tonnes.
    metal : str
        Chemical symbol of the metal to draw.
    reference_year : int
        Year marked by a vertical line.
    anchor_years : ndarray of int
        Years with at least one observed flow, marked as ticks on the x axis.
    published : float or None
        Published stock at the reference year (t), drawn as a point.
    published_label : str
        Legend text of the published point.
    prior_only : bool
        Adds "prior only" to the title when no flow of the metal is observed.
    """
    stock = summary.sel(metal=metal)
    years = stock["year"].values
    figure, axes = plt.subplots(figsize=(7.0, 4.2), layout="constrained")

    for name, alpha in BAND_ALPHA.items():
        axes.fill_between(
            years,
            stock[name].sel(bound="lower").values,
            stock[name].sel(bound="upper").values,
            color="tab:blue",
            alpha=alpha,
            linewidth=0,
            label=f"{name[3:]} % interval",
        )
    axes.plot(years, stock["median"].values, color="tab:blue", label="median")
    axes.axvline(reference_year, color="0.4", linestyle=":", linewidth=1)

    if published is not None and np.isfinite(published):
        axes.plot([reference_year], [published], "o", color="tab:red", label=published_label)
    if len(anchor_years):
        axes.plot(
            anchor_years,
            np.zeros(len(anchor_years)),
            "|",
            color="black",
            markersize=8,
            transform=axes.get_xaxis_transform(),
            label="years with observed flows",
            clip_on=False,
        )

    title = f"{metal}: cumulative stock"
    if prior_only:
        title += " (prior only: no observed flow)"
    axes.set_title(title)
    axes.set_xlabel("year")
    axes.set_ylabel("stock (t)")
    axes.legend(loc="upper left", fontsize="small")
    return figure


def save_figure(figure: plt.Figure, stem: Path) -> list[Path]:
    """Save ``figure`` as ``stem.svg`` and ``stem.png`` and close it."""
    paths = [stem.with_suffix(".svg"), stem.with_suffix(".png")]
    for path in paths:
        figure.savefig(path, dpi=120)
    plt.close(figure)
    return paths
