"""Print, per metal, how much the shipped data pin the stock of a run.

Columns: anchor rows (cited data rows, any year, of the series that the
metal's flows list as anchors, other metals' rows included where a model
names them), the years up to the reference year in which at least one flow
is pinned by an observation, the share of gross flows resting on observed
years, the median and 95 % interval of the reference-year stock, its
relative half-width, and the NIMS value. The output is a Markdown table for
the README.

Usage: python scripts/coverage_table.py RUN_DIR [--data DIR] [--models DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import xarray as xr

from uncertainty.data import load_data
from uncertainty.report import RESULT_MARKER
from uncertainty.spec import MetalModel, load_models


def anchor_rows(model: MetalModel, observations: pd.DataFrame) -> int:
    """Count the data rows of every series that the model's flows list as anchors."""
    keys = set()
    for flow in model.flows:
        for reference in getattr(flow, "anchors", ()):
            metal, _, series = reference.rpartition(":")
            keys.add((metal or model.metal, series))
    pairs = list(zip(observations["metal"], observations["series"]))
    return sum(pair in keys for pair in pairs)


def coverage(run_dir: Path, data_dir: Path, model_dir: Path | None = None) -> pd.DataFrame:
    """Return one row per metal of the run with its data coverage and interval."""
    comparison = pd.read_csv(run_dir / "comparison.csv")
    with xr.open_dataset(run_dir / RESULT_MARKER, engine="netcdf4") as dataset:
        year = int(dataset.attrs["reference_year"])
        observed = dataset["observed"].sel(year=slice(None, year)).any(dim="flow").load()
        boundary = dataset.attrs.get("boundary_key", "jp")
    data = load_data(data_dir, boundary)
    models = load_models(model_dir or Path(__file__).resolve().parents[1] / "models" / boundary)
    by_symbol = {model.metal: model for model in models.metals}
    rows = []
    for row in comparison.itertuples():
        rows.append(
            {
                "metal": row.metal,
                "anchor rows": anchor_rows(by_symbol[row.metal], data.observations),
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
    parser.add_argument("--models", type=Path, help="model folder (default: models/BOUNDARY of the run)")
    args = parser.parse_args()
    if not (args.run_dir / RESULT_MARKER).is_file():
        parser.exit(
            2,
            f"{args.run_dir}: {RESULT_MARKER} not found; the table needs every draw's flows, "
            "so run 'urbanmine run' without --chunk\n",
        )
    print(markdown(coverage(args.run_dir, args.data, args.models)))


def markdown(table: pd.DataFrame) -> str:
    """Return ``table`` as a Markdown pipe table."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(value) for value in row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
