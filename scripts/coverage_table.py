"""Print, per metal, how much the shipped data pin the stock of a run.

Columns: cited rows of Japanese data for the metal, the years with at least
one observed flow up to the reference year, the share of gross flows resting
on observed years, the median and 95 % interval of the reference-year stock,
its relative half-width, and the NIMS value. The output is a Markdown table
for the README.

Usage: python scripts/coverage_table.py RUN_DIR [--data DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import xarray as xr

from uncertainty.data import load_data
from uncertainty.report import RESULT_MARKER


def coverage(run_dir: Path, data_dir: Path) -> pd.DataFrame:
    """Return one row per metal of the run with its data coverage and interval."""
    comparison = pd.read_csv(run_dir / "comparison.csv")
    with xr.open_dataset(run_dir / RESULT_MARKER, engine="netcdf4") as dataset:
        year = int(dataset.attrs["reference_year"])
        observed = dataset["observed"].sel(year=slice(None, year)).any(dim="flow").load()
        boundary = dataset.attrs.get("boundary_key", "jp")
    data = load_data(data_dir, boundary)
    rows = []
    for row in comparison.itertuples():
        metal_rows = data.observations[data.observations["metal"] == row.metal]
        rows.append(
            {
                "metal": row.metal,
                "cited rows": len(metal_rows),
                "observed years to 2005": int(observed.sel(metal=row.metal).sum()),
                "observed share": f"{row.observed_share:.0%}",
                "median (t)": f"{row.median:.2g}",
                "95 % interval (t)": f"{row.eti95_lower:.2g} to {row.eti95_upper:.2g}",
                "relative half-width": f"{row.relative_half_width_95:.2f}",
                "NIMS (t)": f"{row.nims_stock:.2g}",
                "NIMS inside": "yes" if row.nims_inside_eti95 else "no",
                "prior only": "yes" if row.prior_only else "",
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="result folder of urbanmine run")
    parser.add_argument("--data", type=Path, default=Path("data"), help="data folder (default: data)")
    args = parser.parse_args()
    print(markdown(coverage(args.run_dir, args.data)))


def markdown(table: pd.DataFrame) -> str:
    """Return ``table`` as a Markdown pipe table."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(value) for value in row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
