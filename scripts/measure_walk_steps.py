"""Measure how fast Japanese shares of world series move from year to year.

The stock model draws every sparsely observed Japanese flow as share x proxy,
with the log share a Gaussian random walk. For a random walk with step sd
sigma, the root mean square of the h-year change divided by sqrt(h) equals
sigma at every lag h. Real shares are noisy from year to year and trend over
decades, so this scaled RMS differs between lags; the script reports it at
lags 1, 5, 10 and 20 years on the Japanese series observed every year over
1950-2005 and writes data/jp/share_walk_steps.csv, which the model files cite.

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
LAGS = (1, 5, 10, 20)


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
        log_share = np.log(share).reindex(range(share.index.min(), share.index.max() + 1))
        row = {
            "metal": metal,
            "series": series,
            "proxy": f"world_production {world_key}",
            "first_year": int(share.index.min()),
            "last_year": int(share.index.max()),
            "n_years": int(share.size),
        }
        for lag in LAGS:
            change = (log_share.shift(-lag) - log_share).dropna().to_numpy()
            row[f"scaled_rms_lag{lag}"] = float(np.sqrt(np.mean(change**2) / lag))
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> int:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data")
    table = measure(data_dir)
    path = data_dir / "jp" / "share_walk_steps.csv"
    table.to_csv(path, index=False, float_format="%.4f")
    print(table.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
    medians = ", ".join(f"lag {lag}: {table[f'scaled_rms_lag{lag}'].median():.3f}" for lag in LAGS)
    print(f"median over series: {medians}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
