"""Tables and figures of a run, written atomically into one result folder.

A result folder contains ``stocks.nc`` (every draw), ``summary.csv`` (intervals
per metal and year), ``comparison.csv`` (per metal at the reference year,
beside the published NIMS stock), ``flows.csv`` (cumulative flows and their
observed years), ``rank_correlations.csv`` (Spearman correlation of each
scalar input with the reference-year stock), ``notes.txt`` and ``figures/``.
The folder of a chunked run contains ``chunked.nc``, ``summary.csv``,
``comparison.csv`` and ``figures/`` instead (:mod:`uncertainty.chunked_report`).

Files are first written to a temporary folder beside the target, which is
renamed into place only when complete. So an interrupted run never leaves a
half-written result.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from uncertainty.engine import year_ranges
from uncertainty.errors import InputError, Problem
from uncertainty.intervals import (
    relative_half_width,
    summarize,
    supports_two_significant_figures,
)
from uncertainty.plots import fan_chart, save_figure
from uncertainty.sensitivity import rank_correlations
from uncertainty.simulate import negative_stock_fraction, observed_share

logger = logging.getLogger(__name__)

#: File that marks a folder as a complete result.
RESULT_MARKER = "stocks.nc"

#: Files that mark a folder as written by urbanmine (a run, a chunked run, a
#: Sobol analysis), so that --force may replace it.
RESULT_MARKERS = (RESULT_MARKER, "chunked.nc", "sobol.csv")

#: Every file and folder that urbanmine writes into a result folder. --force
#: replaces a result folder whole, so it refuses one that contains anything else.
RESULT_CONTENTS = frozenset({
    *RESULT_MARKERS, "summary.csv", "comparison.csv", "flows.csv", "rank_correlations.csv", "notes.txt",
    "figures", "agreement", "convergence.csv", "agreement.csv", "verdict.csv", "reserves.csv", "update.csv",
})

#: Encoding of the per-draw flows and increments: float32 on disk halves the
#: file and keeps about seven significant digits, far below any flow's spread.
#: The stock stays float64 so that intervals redrawn from the file match the run.
FLOW_ENCODING = {"zlib": True, "complevel": 1, "dtype": "float32"}


class OutputExistsError(FileExistsError):
    """The output folder already contains a result and overwriting was not requested."""


def check_output_folder(target: Path, force: bool, marker: str = RESULT_MARKER) -> None:
    """Check that a result can be written to ``target``, before any work is done.

    ``target`` may be absent, an empty folder, or with ``force`` a folder
    containing a result (a file of :data:`RESULT_MARKERS` or ``marker``) and
    nothing but the files of :data:`RESULT_CONTENTS`. Any other folder is
    rejected even with ``force``, because writing the result replaces the
    folder whole.

    Raises
    ------
    OutputExistsError
        If ``target`` contains a result and ``force`` is false.
    FileExistsError
        If ``target`` or one of its parents is a file, or ``target`` is a
        folder with other content, or a result folder with files urbanmine
        does not write.
    PermissionError
        If the nearest existing folder on the way to ``target`` is not writable.
    """
    target = Path(target)
    check_replaceable(target, force, marker)

    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise FileExistsError(f"{existing} is a file, not a folder; choose another --out folder")
    parent = existing if existing != target else target.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{parent} is not writable, so no result can be written there; "
            "choose another --out folder"
        )


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block ends, then raise KeyboardInterrupt.

    A KeyboardInterrupt raised inside xarray's netCDF4 backend can leave its
    file lock held, so a write hangs, or be lost during a read (seen with
    xarray 2026.9.0 and netCDF4 1.7.5). Deferring the signal lets the read
    or write finish or fail on its own first. Outside the main thread
    signals cannot be handled, so the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def check_replaceable(target: Path, force: bool, marker: str = RESULT_MARKER) -> None:
    """Check that a new result may take the place of ``target``; see :func:`check_output_folder`."""
    found = [name for name in dict.fromkeys((marker, *RESULT_MARKERS)) if (target / name).exists()]
    if found and not force:
        raise OutputExistsError(
            f"{target} already contains a result ({found[0]}); choose another --out "
            "folder or pass --force to replace it"
        )
    if not found and target.is_dir() and any(target.iterdir()):
        raise FileExistsError(
            f"{target} is a folder with other content and no {marker}, so it is not replaced; "
            "choose a new or empty --out folder"
        )
    if found:
        foreign = _foreign_entries(target)
        if foreign:
            raise FileExistsError(
                f"{target} contains files that urbanmine does not write ({', '.join(foreign[:3])}), "
                "which --force would delete; move them or choose another --out folder"
            )


def _foreign_entries(folder: Path, prefix: str = "") -> list[str]:
    """Return the paths under ``folder`` that urbanmine does not write, sorted.

    A result folder contains the files of :data:`RESULT_CONTENTS`, figures
    (PNG and SVG) in ``figures/``, and a comparison in ``agreement/``.
    """
    foreign = []
    for entry in sorted(folder.iterdir()):
        name = f"{prefix}{entry.name}"
        if entry.name not in RESULT_CONTENTS:
            foreign.append(name)
        elif entry.name == "figures" and entry.is_dir():
            foreign += [
                f"{name}/{figure.name}"
                for figure in sorted(entry.iterdir())
                if not (figure.is_file() and figure.suffix in (".png", ".svg"))
            ]
        elif entry.name == "agreement" and entry.is_dir():
            foreign += _foreign_entries(entry, f"{name}/")
    return foreign


@contextmanager
def atomic_folder(target: Path, force: bool, marker: str = RESULT_MARKER) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` when the block succeeds.

    Raises
    ------
    OutputExistsError
        If ``target`` contains a result and ``force`` is false, at the start
        or when the block ends (another run wrote it meanwhile).
    FileExistsError
        If ``target`` contains anything urbanmine does not write.
    """
    target = Path(target)
    check_replaceable(target, force, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))

    # mkdtemp makes the folder private (0700); a result gets the user's usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    # Another run may have written the target since the start; check again.
    # NOTE: no lock is taken, so two runs that pass this check within the same
    # few microseconds can both rename, and the later one replaces the other.
    try:
        check_replaceable(target, force, marker)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    # Move an old result aside first, so that the target is never half old, half new.
    retired = None
    try:
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, retired / target.name)
        os.replace(staging, target)
    except BaseException:
        # Put the old result back, so that a failed or interrupted rename loses nothing.
        if retired is not None and (retired / target.name).exists() and not target.exists():
            os.replace(retired / target.name, target)
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def stock_summary(dataset: xr.Dataset) -> xr.Dataset:
    """Summarise the stock draws per metal and year (see :func:`summarize`)."""
    return summarize(dataset["stock"])


def summary_table(
    summary: xr.Dataset,
    negative: xr.DataArray,
    world_production: xr.DataArray | None = None,
    prior_only: xr.DataArray | None = None,
) -> pd.DataFrame:
    """Flatten a stock summary into one row per metal and year.

    With ``world_production`` (dims ``metal, year``), the column
    ``world_production_missing`` marks years whose flows shared in world
    production were counted as 0 because the proxy has no value. With
    ``prior_only`` (dim ``metal``), the column ``prior_only`` marks metals
    without any observed flow.
    """
    frame = pd.DataFrame(
        {
            "metal": np.repeat(summary["metal"].values, summary["year"].size),
            "year": np.tile(summary["year"].values, summary["metal"].size),
            "mean": summary["mean"].values.ravel(),
            "median": summary["median"].values.ravel(),
        }
    )
    for name in ("eti50", "eti90", "eti95", "hdi95"):
        for bound in ("lower", "upper"):
            frame[f"{name}_{bound}"] = summary[name].sel(bound=bound).values.ravel()
    frame["negative_draw_fraction"] = negative.values.ravel()
    if world_production is not None:
        missing = world_production.transpose("metal", "year").isnull()
        frame["world_production_missing"] = missing.values.ravel()
    if prior_only is not None:
        frame["prior_only"] = np.repeat(prior_only.sel(metal=summary["metal"]).values, summary["year"].size)
    frame["unit"] = "t"
    return frame


def comparison_table(
    dataset: xr.Dataset, summary: xr.Dataset, reference: pd.DataFrame
) -> pd.DataFrame:
    """Compare each metal at the reference year with the published NIMS stock.

    ``reference`` has columns ``metal`` and ``stock_t`` (the NIMS table). A
    metal's published row is the one named by its ``comparison_key`` in the
    dataset, which defaults to the symbol.
    """
    year = int(dataset.attrs["reference_year"])
    at_year = summary.sel(year=year)
    share = observed_share(dataset, year).median(dim="draw")
    negative = negative_stock_fraction(dataset).sel(year=year)
    published = reference.set_index("metal")["stock_t"]
    keys = dataset["comparison_key"].values if "comparison_key" in dataset else dataset["metal"].values

    rows = []
    for position, metal in enumerate(dataset["metal"].values):
        median = float(at_year["median"].sel(metal=metal))
        lower, upper = (float(v) for v in at_year["eti95"].sel(metal=metal).values)
        nims = float(published.get(keys[position], math.nan))
        missing = [
            str(flow)
            for flow in dataset["flow"].values
            if dataset["flow_kind"].sel(metal=metal, flow=flow).item() == "missing"
        ]
        rows.append(
            {
                "metal": metal,
                "reference_year": year,
                "median": median,
                "eti95_lower": lower,
                "eti95_upper": upper,
                "hdi95_lower": float(at_year["hdi95"].sel(metal=metal, bound="lower")),
                "hdi95_upper": float(at_year["hdi95"].sel(metal=metal, bound="upper")),
                "nims_key": keys[position],
                "nims_stock": nims,
                "nims_inside_eti95": bool(lower <= nims <= upper) if math.isfinite(nims) else None,
                "observed_share": float(share.sel(metal=metal)),
                "relative_half_width_95": relative_half_width(median, lower, upper),
                "supports_two_sig_figs": supports_two_significant_figures(median, lower, upper),
                "prior_only": bool(dataset["prior_only"].sel(metal=metal)),
                "negative_draw_fraction": float(negative.sel(metal=metal)),
                "flows_not_counted": ";".join(missing),
                "unit": "t",
            }
        )
    return pd.DataFrame(rows)


def flow_table(dataset: xr.Dataset) -> pd.DataFrame:
    """Cumulative flows to the reference year per metal and flow, with observed years."""
    year = int(dataset.attrs["reference_year"])
    window = dataset.sel(year=slice(None, year))
    cumulative = window["flows"].sum(dim="year", skipna=False)
    rows = []
    for metal in dataset["metal"].values:
        for flow in dataset["flow"].values:
            kind = dataset["flow_kind"].sel(metal=metal, flow=flow).item()
            if not kind:
                continue
            values = cumulative.sel(metal=metal, flow=flow)
            observed_years = window["year"].values[window["observed"].sel(metal=metal, flow=flow).values]
            lower, upper = values.quantile([0.025, 0.975]).values
            rows.append(
                {
                    "metal": metal,
                    "flow": flow,
                    "kind": kind,
                    "sign": int(dataset["sign"].sel(metal=metal, flow=flow)),
                    "cumulative_median": float(values.median()),
                    "cumulative_eti95_lower": float(lower),
                    "cumulative_eti95_upper": float(upper),
                    "observed_years": _compress_years(observed_years),
                    "n_observed_years": int(observed_years.size),
                    "prior_only": bool(dataset["prior_only"].sel(metal=metal)),
                    "unit": "t",
                }
            )
    return pd.DataFrame(rows)


def _compress_years(years: np.ndarray) -> str:
    """Write sorted years as ranges, for example ``1950-1975;1984``."""
    return year_ranges(years).replace(", ", ";") if years.size else ""


def write_tables_and_figures(
    dataset: xr.Dataset,
    reference: pd.DataFrame,
    folder: Path,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Write summary.csv, comparison.csv, flows.csv, notes.txt and figures into ``folder``.

    Returns the comparison table.
    """
    summary = stock_summary(dataset)
    negative = negative_stock_fraction(dataset)
    table = summary_table(summary, negative, dataset["world_production"], dataset["prior_only"])
    table.to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    comparison = comparison_table(dataset, summary, reference)
    comparison.to_csv(folder / "comparison.csv", index=False, float_format="%.6g")
    flow_table(dataset).to_csv(folder / "flows.csv", index=False, float_format="%.6g")
    year = int(dataset.attrs["reference_year"])
    correlations = rank_correlations(dataset, year)
    correlations.to_csv(folder / "rank_correlations.csv", index=False, float_format="%.4g")

    with (folder / "notes.txt").open("w", encoding="utf-8") as stream:
        for metal, text in zip(dataset["metal"].values, dataset["notes"].values):
            stream.write(f"[{metal}]\n{text}\n\n" if text else f"[{metal}]\n(no notes)\n\n")

    figures = folder / "figures"
    figures.mkdir(exist_ok=True)
    for row in comparison.itertuples():
        observed_any = dataset["observed"].sel(metal=row.metal).any(dim="flow")
        figure = fan_chart(
            summary,
            row.metal,
            year,
            dataset["year"].values[observed_any.values],
            row.nims_stock,
            f"NIMS 2008 ({row.nims_key})",
            row.prior_only,
        )
        save_figure(figure, figures / f"stock_{row.metal}")
        if progress is not None:
            progress(row.metal)
    return comparison


def write_result(
    dataset: xr.Dataset,
    reference: pd.DataFrame,
    target: Path,
    force: bool = False,
) -> pd.DataFrame:
    """Write a whole result folder atomically; return the comparison table."""
    check_output_folder(target, force)
    with atomic_folder(target, force) as staging:
        comparison = write_tables_and_figures(dataset, reference, staging)
        encoding = {"flows": FLOW_ENCODING, "increment": FLOW_ENCODING}
        try:
            with interrupts_deferred():
                dataset.to_netcdf(staging / RESULT_MARKER, engine="netcdf4", encoding=encoding)
        except RuntimeError as exc:
            # netCDF4 reports a full disk as a generic HDF error; name it when
            # the free space is smaller than the data to write.
            if shutil.disk_usage(staging).free < dataset.nbytes:
                raise OSError(errno.ENOSPC, "No space left on device", str(staging / RESULT_MARKER)) from exc
            raise
    logger.info("wrote %s", target)
    return comparison


def rewrite_tables(dataset: xr.Dataset, reference: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Redraw the tables and figures of a result folder from its draws, or from a chunked run's summaries.

    The new files are written to a temporary folder first and then moved over
    the old ones one by one. ``stocks.nc`` or ``chunked.nc`` is left as it is.
    """
    from uncertainty.chunked_report import is_chunked_run, write_chunked_tables_and_figures

    writer = write_chunked_tables_and_figures if is_chunked_run(dataset) else write_tables_and_figures
    folder = Path(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tables.", dir=folder.parent))
    try:
        comparison = writer(dataset, reference, staging)
        for item in staging.iterdir():
            destination = folder / item.name
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(item, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return comparison


def load_netcdf(path: Path, expected: str) -> xr.Dataset:
    """Load a netCDF file into memory, or raise ``InputError`` naming it and ``expected``."""
    try:
        # A Ctrl-C raised inside the netCDF4 reader can be lost, so it waits for the load.
        with interrupts_deferred(), xr.open_dataset(path, engine="netcdf4") as dataset:
            return dataset.load()
    except (OSError, ValueError) as exc:
        raise InputError([Problem(str(path), "file", expected, f"an unreadable file ({exc})")]) from exc


def open_result(folder: Path) -> xr.Dataset:
    """Load a result folder into memory: every draw from ``stocks.nc``, or a chunked run's ``chunked.nc``.

    Raises ``FileNotFoundError`` when the folder contains neither, and
    ``InputError`` when a file cannot be read or ``chunked.nc`` lacks what
    the tables read.
    """
    from uncertainty.chunked_report import CHUNKED_MARKER, open_chunked_result

    path = Path(folder) / RESULT_MARKER
    if path.exists():
        return load_netcdf(path, "a netCDF file written by 'urbanmine run'")
    if (Path(folder) / CHUNKED_MARKER).exists():
        return open_chunked_result(Path(folder) / CHUNKED_MARKER)
    raise FileNotFoundError(
        f"{folder} contains no result: {RESULT_MARKER} not found, nor {CHUNKED_MARKER} of a chunked run"
    )
