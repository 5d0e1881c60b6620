"""Figures of ``urbanmine compare``: a forest plot of all metals and net-import series."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

#: Share of the smallest positive value at which a non-positive bound is drawn on a log axis.
CLIP_FRACTION = 0.2


def forest_plot(verdict: pd.DataFrame, year: int) -> plt.Figure:
    """Draw every metal's 95 % interval and median of the stock beside the NIMS value.

    ``verdict`` is the output of :func:`uncertainty.agreement.verdict_table`,
    in tonnes. The x axis is logarithmic. A lower bound at or below zero is
    drawn at the metal's own left clip point as a left-pointing triangle and
    the metal's label gets "(lower < 0)"; a median at or below zero is not
    drawn, and the label states it. Posterior intervals are drawn below the prior
    ones when the table has them.
    """
    table = verdict.reset_index(drop=True)
    rows = len(table)
    figure, axes = plt.subplots(figsize=(7.5, 0.45 * rows + 1.6), layout="constrained")
    positions = np.arange(rows)[::-1]
    labels = []
    has_posterior = "posterior_median" in table

    for position, row in zip(positions, table.itertuples()):
        positive = [v for v in (row.median, row.eti95_upper, row.nims_stock) if np.isfinite(v) and v > 0]
        clip = CLIP_FRACTION * min(positive) if positive else np.nan
        label = row.metal
        lower = row.eti95_lower
        if lower <= 0:
            label += " (lower < 0)"
            lower = clip
        if row.eti95_upper > 0:
            axes.plot([lower, row.eti95_upper], [position, position], color="tab:blue", linewidth=2.5)
        if row.eti95_lower <= 0 and np.isfinite(clip):
            axes.plot([clip], [position], "<", color="tab:blue", markersize=7)
        if row.median > 0:
            axes.plot([row.median], [position], "o", color="tab:blue", markersize=5)
        else:
            label += " (median <= 0)"
        if np.isfinite(row.nims_stock):
            axes.plot([row.nims_stock], [position], "D", color="tab:red", markersize=5)
        if has_posterior and np.isfinite(getattr(row, "posterior_median", np.nan)):
            post_lower = row.posterior_eti95_lower if row.posterior_eti95_lower > 0 else clip
            axes.plot(
                [post_lower, row.posterior_eti95_upper],
                [position - 0.25, position - 0.25],
                color="tab:green",
                linewidth=2.5,
            )
            axes.plot([row.posterior_median], [position - 0.25], "o", color="tab:green", markersize=4)
            if row.posterior_eti95_lower <= 0:
                axes.plot([clip], [position - 0.25], "<", color="tab:green", markersize=6)
        labels.append(label)

    axes.set_xscale("log")
    axes.set_yticks(positions, labels)
    axes.set_xlabel(f"stock at the end of {year} (t, log scale)")
    axes.set_title("Stock per metal: 95 % interval of the run and the NIMS 2008 value")
    handles = [
        plt.Line2D([], [], color="tab:blue", linewidth=2.5, marker="o", label="run: median and 95 % interval"),
        plt.Line2D([], [], color="tab:red", linestyle="none", marker="D", label="NIMS 2008"),
        plt.Line2D([], [], color="tab:blue", linestyle="none", marker="<", label="lower bound <= 0 (clipped)"),
    ]
    if has_posterior:
        handles.append(plt.Line2D([], [], color="tab:green", linewidth=2.5, marker="o", label="after update"))
    figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small")
    axes.grid(axis="x", which="major", color="0.9")
    return figure


def net_import_plot(
    years: np.ndarray,
    bands: dict[str, np.ndarray],
    references: pd.DataFrame,
    metal: str,
    first_year: int,
) -> plt.Figure:
    """Draw a metal's yearly net import (median, 50 and 95 % bands) beside converted references.

    ``bands`` maps ``median``, ``eti50`` and ``eti95`` to arrays over
    ``years`` (the intervals with a leading axis of lower and upper bound).
    ``references`` contains the ``net_import`` rows of the agreement table with
    ``year``, ``reference_value`` (as published) and the converted median and
    95 % interval, in t/yr. The published values are drawn as open markers and
    the converted ones with their interval as error bars. The y axis is
    symmetric-logarithmic, linear within +/- a tenth of the smallest reference,
    so that negative draws and a wide upper tail both stay visible.
    """
    shown = years >= first_year
    figure, axes = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    for name, alpha in (("eti95", 0.18), ("eti50", 0.35)):
        axes.fill_between(
            years[shown],
            bands[name][0][shown],
            bands[name][1][shown],
            color="tab:blue",
            alpha=alpha,
            linewidth=0,
            label=f"run: {name[3:]} % interval",
        )
    axes.plot(years[shown], bands["median"][shown], color="tab:blue", label="run: median")
    axes.axhline(0, color="0.5", linewidth=0.8)

    compared = references[references["status"].str.startswith("compared")]
    if not compared.empty:
        axes.errorbar(
            compared["year"],
            compared["reference_converted_median"],
            yerr=[
                compared["reference_converted_median"] - compared["reference_converted_lower"],
                compared["reference_converted_upper"] - compared["reference_converted_median"],
            ],
            fmt="D",
            color="tab:red",
            markersize=4,
            capsize=2,
            label="published demand converted to net import (95 %)",
        )
        axes.plot(
            compared["year"],
            compared["reference_value"],
            "o",
            markerfacecolor="none",
            color="0.3",
            label="published demand as printed",
        )
    positive = references["reference_value"][references["reference_value"] > 0]
    linear_threshold = 0.1 * float(positive.min()) if not positive.empty else 1.0
    axes.set_yscale("symlog", linthresh=linear_threshold)
    axes.set_title(f"{metal}: yearly net import (increment) and published demand figures")
    axes.set_xlabel("year")
    axes.set_ylabel(f"t/yr (symmetric log scale, linear within +/- {linear_threshold:.3g})")
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    return figure
