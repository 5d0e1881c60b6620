"""Measure how fast Japanese shares of world series move from year to year.

The stock model draws every sparsely observed Japanese flow as share x proxy,
with the log share a Gaussian random walk. This script measures the walk's
yearly step sd on the Japanese series that are observed every year, as the
sample sd of (log share[t] - log share[t-1]) / sqrt(gap) over 1950-2005, and
writes the result to data/jp/share_walk_steps.csv, which the model files cite.

Usage: python scripts/measure_walk_steps.py [DATA_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from uncertainty.data import load_data

#: Dense series used for the measurement: (metal, series, world metal key).
#: Sn and W mine output are left out because the source rounds them to whole kt.
DENSE_SERIES = (
    ("Zn", "mine_production", "Zn"),
    ("Pb", "mine_production", "Pb"),
    ("Ag", "mine_production", "Ag"),
    ("Au", "mine_production", "Au"),
    ("Al", "smelter_production", "Al"),
    ("Fe", "refined_export", "Fe"),
    ("Fe", "refined_import", "Fe"),
)
FIRST_YEAR, LAST_YEAR = 1950, 2005


def measure(data_dir: Path) -> pd.DataFrame:
    """Return one row per dense series with the step sd of its log share of world production."""
    data = load_data(data_dir, "jp")
    rows = []
    for metal, series, world_key in DENSE_SERIES:
        japan = data.observations[
            (data.observations["metal"] == metal)
            & (data.observations["series"] == series)
            & (data.observations["period"] == "CY")
        ].groupby("year")["tonnes"].mean()
        world = data.world[data.world["metal"] == world_key].groupby("year")["tonnes"].mean()
        share = (japan / world).dropna()
        share = share[(share.index >= FIRST_YEAR) & (share.index <= LAST_YEAR) & (share > 0)]
        log_share = np.log(share.to_numpy())
        gaps = np.diff(share.index.to_numpy())
        steps = np.diff(log_share) / np.sqrt(gaps)
        rows.append(
            {
                "metal": metal,
                "series": series,
                "proxy": f"world_production {world_key}",
                "first_year": int(share.index.min()),
                "last_year": int(share.index.max()),
                "n_years": int(share.size),
                "step_sd": float(np.std(steps, ddof=1)),
                "median_abs_step": float(np.median(np.abs(steps))),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data")
    table = measure(data_dir)
    path = data_dir / "jp" / "share_walk_steps.csv"
    table.to_csv(path, index=False, float_format="%.4f")
    print(table.to_string(index=False))
    print(f"median step sd: {table['step_sd'].median():.3f}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
