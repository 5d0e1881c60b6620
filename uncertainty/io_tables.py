"""Export ratios of sectors from input-output tables, and their year-to-year drift.

The share of a sector's output that leaves the country, directly or inside other
exported products, comes from the Leontief model of a competitive-import table
(intermediate matrix Z of domestic plus imported goods, imports deducted in final
demand):

* input coefficients ``A = Z / X`` (column j divided by the output X_j of sector j);
* plain form ``z = (I - A)^-1 e``: output induced by exports e when every input is
  assumed to be made at home;
* domestic form ``z = (I - (I - M) A)^-1 e`` with ``M = diag(m_i / (sum_j Z_ij + f_i))``,
  the share of imports m_i in the domestic demand for product i (intermediate use
  plus domestic final demand f_i, which excludes exports);
* direct ratio ``e_j / X_j`` and induced ratio ``z_j / X_j``.

The plain form counts imported inputs as domestic output, so its induced ratio can
exceed 1. Such values are flagged and reported with a RuntimeWarning, never clipped.

The layers are: numpy kernels on plain arrays, loaders of the CSV tables in
``data/jp/io/``, an ``xarray.Dataset`` of ratios per table, and the comparison with
the published 2000 ratios and the drift over the WIOD years.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "jp" / "io"

# Valid table names: file prefix in data/jp/io/ -> units of money values.
TABLE_UNITS = {
    "jp2005_13": "billion JPY",
    "jp2005_34": "billion JPY",
    "jp2005_188": "billion JPY",
    "jp2011_37": "billion JPY",
    "wiod2013_jpn": "million USD",
    # United States block of the same WIOD release, shipped in data/us/io/.
    "wiod2013_usa": "million USD",
}
TABLES = tuple(TABLE_UNITS)
INVERSES = ("plain", "domestic")
WIOD_TABLE = "wiod2013_jpn"
NATIONAL_2005_TABLE = "jp2005_188"
NATIONAL_2011_TABLE = "jp2011_37"
COMPARISON_YEAR = 2000


# --- numpy kernels -------------------------------------------------------------


def input_coefficients(intermediate: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Compute input coefficients A[i, j] = Z[i, j] / X[j].

    intermediate has shape (n, n) with rows selling to columns, output shape (n,).
    Columns of sectors with zero output get zero coefficients.
    """
    intermediate = np.asarray(intermediate, dtype=float)
    output = np.asarray(output, dtype=float)
    if intermediate.ndim != 2 or intermediate.shape != (output.size, output.size):
        raise ValueError(f"intermediate must have shape ({output.size}, {output.size}), got {intermediate.shape}")
    safe_output = np.where(output == 0, 1.0, output)
    return np.where(output == 0, 0.0, intermediate / safe_output)


def import_shares(
    intermediate: np.ndarray, domestic_final_demand: np.ndarray, imports: np.ndarray
) -> np.ndarray:
    """Compute import shares M_i = m_i / (sum_j Z[i, j] + f_i) of domestic demand, shape (n,).

    domestic_final_demand f excludes exports. A product with no domestic demand and
    no imports gets share 0. Raises ValueError where imports exist but domestic
    demand is not positive, because the share is then undefined. A share above 1
    (imports re-exported, as for 0629 in the 2005 188-sector table) is kept.
    """
    imports = np.asarray(imports, dtype=float)
    demand = np.asarray(intermediate, dtype=float).sum(axis=1) + np.asarray(domestic_final_demand, dtype=float)
    undefined = (demand <= 0) & (imports != 0)
    if undefined.any():
        raise ValueError(f"import share undefined for products at positions {np.flatnonzero(undefined).tolist()}: "
                         "imports without positive domestic demand")
    safe_demand = np.where(demand > 0, demand, 1.0)
    return np.where(demand > 0, imports / safe_demand, 0.0)


def induced_output(
    coefficients: np.ndarray, demand: np.ndarray, import_share: np.ndarray | None = None
) -> np.ndarray:
    """Solve for the output induced by a demand vector.

    With import_share None this is the plain form z = (I - A)^-1 d, otherwise the
    domestic form z = (I - (I - M) A)^-1 d with M = diag(import_share).
    coefficients has shape (n, n); demand has shape (n,) or (n, k) for k demand
    vectors; the result has the shape of demand. Uses a linear solve, no inverse.
    """
    coefficients = np.asarray(coefficients, dtype=float)
    n = coefficients.shape[0]
    if import_share is not None:
        coefficients = (1.0 - np.asarray(import_share, dtype=float))[:, None] * coefficients
    return np.linalg.solve(np.eye(n) - coefficients, np.asarray(demand, dtype=float))


def export_ratios(
    intermediate: np.ndarray,
    output: np.ndarray,
    exports: np.ndarray,
    domestic_final_demand: np.ndarray,
    imports: np.ndarray,
) -> dict[str, np.ndarray]:
    """Compute direct and induced export ratios of one table; all inputs are (n,) except intermediate (n, n).

    Returns arrays of shape (n,): ``direct`` (e / X), ``induced_plain`` and
    ``induced_domestic`` (z / X), and ``induced_output_plain`` and
    ``induced_output_domestic`` (z, in the units of the table). Ratios of sectors
    with zero output are NaN.
    """
    output = np.asarray(output, dtype=float)
    exports = np.asarray(exports, dtype=float)
    coefficients = input_coefficients(intermediate, output)
    shares = import_shares(intermediate, domestic_final_demand, imports)
    z_plain = induced_output(coefficients, exports)
    z_domestic = induced_output(coefficients, exports, shares)
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = np.where(output == 0, np.nan, output)
        return {
            "direct": exports / denominator,
            "induced_plain": z_plain / denominator,
            "induced_domestic": z_domestic / denominator,
            "induced_output_plain": z_plain,
            "induced_output_domestic": z_domestic,
        }


# --- loading -------------------------------------------------------------------


def check_table_name(table: str) -> str:
    if table not in TABLE_UNITS:
        raise ValueError(f"invalid table {table!r}: expected one of {', '.join(TABLES)}")
    return table


def check_inverse_name(inverse: str | None) -> str | None:
    if inverse is not None and inverse not in INVERSES:
        raise ValueError(f"invalid inverse {inverse!r}: expected one of {', '.join(INVERSES)}")
    return inverse


def load_table(table: str = NATIONAL_2005_TABLE, data_dir: Path = DEFAULT_DATA_DIR) -> xr.Dataset:
    """Load one table from ``<table>_sectors.csv`` and ``<table>_intermediate.csv``.

    Returns a Dataset with dims ``year``, ``sector`` and ``using_sector`` and the
    variables ``intermediate`` (sales of sector to using_sector), ``output``,
    ``exports``, ``imports`` and ``domestic_final_demand``, in the table's units.
    """
    check_table_name(table)
    data_dir = Path(data_dir)
    sectors = pd.read_csv(data_dir / f"{table}_sectors.csv", dtype={"sector": str})
    matrix = pd.read_csv(data_dir / f"{table}_intermediate.csv", dtype={"row": str, "col": str})
    codes = list(dict.fromkeys(sectors["sector"]))
    years = sorted(sectors["year"].unique().tolist())

    indexed = sectors.set_index(["year", "sector"])
    variables = {}
    for name in ["output", "exports", "imports", "domestic_final_demand"]:
        values = indexed[name].unstack("sector").reindex(index=years, columns=codes)
        variables[name] = (("year", "sector"), values.to_numpy())

    dense = np.zeros((len(years), len(codes), len(codes)))
    year_position = {year: i for i, year in enumerate(years)}
    code_position = {code: i for i, code in enumerate(codes)}
    dense[
        matrix["year"].map(year_position).to_numpy(),
        matrix["row"].map(code_position).to_numpy(),
        matrix["col"].map(code_position).to_numpy(),
    ] = matrix["value"].to_numpy()
    variables["intermediate"] = (("year", "sector", "using_sector"), dense)

    names = sectors.drop_duplicates("sector").set_index("sector")["sector_name"].reindex(codes)
    dataset = xr.Dataset(
        variables,
        coords={"year": years, "sector": codes, "using_sector": codes, "sector_name": ("sector", names.to_numpy())},
        attrs={"table": table, "units": TABLE_UNITS[table]},
    )
    for name in dataset.data_vars:
        dataset[name].attrs["units"] = TABLE_UNITS[table]
    return dataset


# --- export ratios as a Dataset --------------------------------------------------


def ratios_from_table(io_table: xr.Dataset) -> xr.Dataset:
    """Compute export ratios for every year of a table loaded by ``load_table``.

    Returns a Dataset with dims ``sector``, ``year``, ``inverse`` (plain, domestic):
    ``direct_ratio`` (sector, year), ``induced_ratio`` (sector, year, inverse),
    ``output``, ``exports``, ``induced_output`` (z), and the flags
    ``direct_ratio_above_one`` and ``induced_ratio_above_one``. Does not warn.
    """
    units = io_table.attrs["units"]
    n_sectors, n_years = io_table.sizes["sector"], io_table.sizes["year"]
    direct = np.empty((n_sectors, n_years))
    induced = np.empty((n_sectors, n_years, len(INVERSES)))
    induced_out = np.empty_like(induced)
    for t, year in enumerate(io_table["year"].values):
        one_year = io_table.sel(year=year)
        result = export_ratios(
            one_year["intermediate"].values,
            one_year["output"].values,
            one_year["exports"].values,
            one_year["domestic_final_demand"].values,
            one_year["imports"].values,
        )
        direct[:, t] = result["direct"]
        for k, inverse in enumerate(INVERSES):
            induced[:, t, k] = result[f"induced_{inverse}"]
            induced_out[:, t, k] = result[f"induced_output_{inverse}"]

    coords = {
        "sector": io_table["sector"].values,
        "year": io_table["year"].values,
        "inverse": list(INVERSES),
        "sector_name": ("sector", io_table["sector_name"].values),
    }
    dataset = xr.Dataset(
        {
            "direct_ratio": (("sector", "year"), direct, {"units": "1", "long_name": "exports / output"}),
            "induced_ratio": (
                ("sector", "year", "inverse"), induced,
                {"units": "1", "long_name": "output induced by exports / output"},
            ),
            "output": (("sector", "year"), io_table["output"].values.T, {"units": units}),
            "exports": (("sector", "year"), io_table["exports"].values.T, {"units": units}),
            "induced_output": (
                ("sector", "year", "inverse"), induced_out,
                {"units": units, "long_name": "output induced by exports"},
            ),
        },
        coords=coords,
        attrs={"table": io_table.attrs["table"], "units": units},
    )
    dataset["direct_ratio_above_one"] = dataset["direct_ratio"] > 1
    dataset["induced_ratio_above_one"] = dataset["induced_ratio"] > 1
    return dataset


def warn_ratios_above_one(ratios: xr.Dataset, stacklevel: int) -> None:
    """Emit one RuntimeWarning listing the sectors whose ratio exceeds 1."""
    messages = []
    for flag, ratio in [("direct_ratio_above_one", "direct_ratio"), ("induced_ratio_above_one", "induced_ratio")]:
        flagged = ratios[flag]
        if not bool(flagged.any()):
            continue
        stacked = ratios[ratio].where(flagged).to_dataframe(name="value")["value"].dropna()
        cases = ", ".join(f"{'/'.join(str(part) for part in key)}={value:.3f}" for key, value in stacked.items())
        messages.append(f"{ratio} above 1 in table {ratios.attrs['table']} ({cases})")
    if messages:
        warnings.warn("; ".join(messages) + "; values are kept as computed", RuntimeWarning, stacklevel=stacklevel + 1)


def export_ratio_dataset(table: str = NATIONAL_2005_TABLE, data_dir: Path = DEFAULT_DATA_DIR) -> xr.Dataset:
    """Load a table from data_dir and compute its export ratios (see ``ratios_from_table``).

    Warns with RuntimeWarning when a ratio exceeds 1; the value is kept and flagged.
    """
    ratios = ratios_from_table(load_table(table, data_dir))
    warn_ratios_above_one(ratios, stacklevel=2)
    return ratios


def export_ratios_frame(
    table: str = NATIONAL_2005_TABLE, inverse: str | None = None, data_dir: Path = DEFAULT_DATA_DIR
) -> pd.DataFrame:
    """Compute export ratios of a table as a long DataFrame, one row per sector, year and inverse.

    Columns: sector, sector_name, year, inverse, direct_ratio, induced_ratio,
    output, exports, induced_output, units, above_one. inverse selects ``plain`` or
    ``domestic``; None keeps both. Warns with RuntimeWarning when a ratio exceeds 1.
    """
    check_table_name(table)
    check_inverse_name(inverse)
    ratios = ratios_from_table(load_table(table, data_dir))
    if inverse is not None:
        ratios = ratios.sel(inverse=[inverse])
    warn_ratios_above_one(ratios, stacklevel=2)

    frame = ratios[["induced_ratio", "induced_output", "induced_ratio_above_one"]].to_dataframe().reset_index()
    per_year = ratios[["direct_ratio", "output", "exports", "direct_ratio_above_one"]].to_dataframe().reset_index()
    frame = frame.drop(columns="sector_name").merge(per_year, on=["sector", "year"])
    frame["above_one"] = frame.pop("induced_ratio_above_one") | frame.pop("direct_ratio_above_one")
    frame["units"] = ratios.attrs["units"]
    columns = ["sector", "sector_name", "year", "inverse", "direct_ratio", "induced_ratio",
               "output", "exports", "induced_output", "units", "above_one"]
    order = {name: i for i, name in enumerate(ratios["sector"].values)}
    frame = frame.sort_values(["year", "inverse"], kind="stable")
    frame = frame.sort_values("sector", key=lambda codes: codes.map(order), kind="stable")
    return frame[columns].reset_index(drop=True)


# --- groups of sectors, published comparison and drift ---------------------------


def group_ratios(ratios: xr.Dataset, sectors: list[str]) -> xr.Dataset:
    """Compute the ratios of a group of sectors from summed outputs, exports and induced outputs.

    Returns ``direct_ratio`` (year) and ``induced_ratio`` (year, inverse).
    """
    missing = sorted(set(sectors) - set(ratios["sector"].values.tolist()))
    if missing:
        raise ValueError(f"sectors {missing} not found in table {ratios.attrs['table']}")
    group = ratios.sel(sector=sectors).sum("sector")
    return xr.Dataset({
        "direct_ratio": group["exports"] / group["output"],
        "induced_ratio": group["induced_output"] / group["output"],
    })


def load_sector_map(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Load ``sector_map_2000.csv``: published 2000 sectors, their ratios and mapped sector codes."""
    return pd.read_csv(Path(data_dir) / "sector_map_2000.csv", dtype=str, keep_default_na=False).astype(
        {"published_direct_ratio": float, "published_induced_ratio": float}
    )


def split_codes(codes: str) -> list[str]:
    return [code for code in codes.split(";") if code]


def compare_published_ratios(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Put the published 2000 ratios beside ratios computed from the shipped tables.

    One row per published sector: published direct and induced ratio, the 2005
    188-sector table (sum over the mapped sectors, plain and domestic form) and WIOD
    2000 (mapped industry, plain and domestic form). A sector without a mapping gets
    NaN and keeps its note.
    """
    sector_map = load_sector_map(data_dir)
    national = ratios_from_table(load_table(NATIONAL_2005_TABLE, data_dir))
    wiod = ratios_from_table(load_table(WIOD_TABLE, data_dir)).sel(year=COMPARISON_YEAR)

    rows = []
    for entry in sector_map.itertuples(index=False):
        row = {
            "io_code": entry.io_code,
            "sector_en": entry.sector_en,
            "metals": entry.metals,
            "published_direct": entry.published_direct_ratio,
            "published_induced": entry.published_induced_ratio,
        }
        codes = split_codes(entry.jp2005_188)
        if codes:
            group = group_ratios(national, codes).isel(year=0)
            row["jp2005_direct"] = float(group["direct_ratio"])
            row["jp2005_plain"] = float(group["induced_ratio"].sel(inverse="plain"))
            row["jp2005_domestic"] = float(group["induced_ratio"].sel(inverse="domestic"))
        if entry.wiod_industry:
            industry = wiod.sel(sector=entry.wiod_industry)
            row["wiod2000_direct"] = float(industry["direct_ratio"])
            row["wiod2000_plain"] = float(industry["induced_ratio"].sel(inverse="plain"))
            row["wiod2000_domestic"] = float(industry["induced_ratio"].sel(inverse="domestic"))
        row["jp2005_188"] = entry.jp2005_188
        row["wiod_industry"] = entry.wiod_industry
        row["note"] = entry.note
        rows.append(row)
    columns = ["io_code", "sector_en", "metals", "published_direct", "published_induced",
               "jp2005_direct", "jp2005_plain", "jp2005_domestic",
               "wiod2000_direct", "wiod2000_plain", "wiod2000_domestic",
               "jp2005_188", "wiod_industry", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def log_ratio_statistics(log_ratio: np.ndarray, reference_index: int) -> dict[str, float]:
    """Summarise a series of log ratios over consecutive calendar years.

    Returns the sample sd between years, the sample sd of the year-to-year steps,
    the root mean square deviation from the value at reference_index, and the
    number of years with a value. NaN years are dropped, and a step is taken only
    between neighbouring years that both have a value.
    """
    log_ratio = np.asarray(log_ratio, dtype=float)
    finite = np.isfinite(log_ratio)
    steps = np.diff(log_ratio)
    steps = steps[np.isfinite(steps)]
    deviations = np.delete(log_ratio, reference_index) - log_ratio[reference_index]
    deviations = deviations[np.isfinite(deviations)]
    return {
        "log_ratio_sd_between_years": float(np.std(log_ratio[finite], ddof=1)) if finite.sum() > 1 else np.nan,
        "log_ratio_step_sd": float(np.std(steps, ddof=1)) if steps.size > 1 else np.nan,
        "log_ratio_rms_from_2000": float(np.sqrt(np.mean(deviations**2))) if deviations.size else np.nan,
        "n_years": int(finite.sum()),
    }


def export_ratio_drift(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Measure how much each published sector's induced ratio moves between years and inverse forms.

    Per published sector, from its mapped WIOD industry over all WIOD years
    (plain form): sd of the log induced ratio between years, sd of its year-to-year
    changes, root mean square of its deviation from 2000, and the mean and sd over
    years of the log ratio of domestic to plain form. From the national
    tables: the log change of the induced ratio (plain form) from 2005 (188-sector
    table, summed over the scope of the 2011 sector) to 2011 (37-sector table).
    """
    sector_map = load_sector_map(data_dir)
    wiod = ratios_from_table(load_table(WIOD_TABLE, data_dir))
    national_2005 = ratios_from_table(load_table(NATIONAL_2005_TABLE, data_dir))
    national_2011 = ratios_from_table(load_table(NATIONAL_2011_TABLE, data_dir))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_induced = np.log(wiod["induced_ratio"].where(wiod["induced_ratio"] > 0))

    rows = []
    for entry in sector_map.itertuples(index=False):
        row = {
            "io_code": entry.io_code,
            "sector_en": entry.sector_en,
            "published_induced_ratio": entry.published_induced_ratio,
            "wiod_industry": entry.wiod_industry,
        }
        if entry.wiod_industry:
            industry = log_induced.sel(sector=entry.wiod_industry)
            reference_index = int(np.flatnonzero(industry["year"].values == COMPARISON_YEAR)[0])
            row.update(log_ratio_statistics(industry.sel(inverse="plain").values, reference_index))
            difference = industry.sel(inverse="domestic") - industry.sel(inverse="plain")
            row["log_inverse_difference"] = float(difference.mean(skipna=True))
            row["log_inverse_difference_sd"] = float(difference.std(ddof=1, skipna=True))
        else:
            row["n_years"] = 0
        if entry.jp2011_37 and entry.jp2005_188_as_2011:
            ratio_2005 = group_ratios(national_2005, split_codes(entry.jp2005_188_as_2011)).isel(year=0)
            ratio_2011 = group_ratios(national_2011, split_codes(entry.jp2011_37)).isel(year=0)
            row["jp2011_37"] = entry.jp2011_37
            row["jp_log_change_2005_2011"] = float(
                np.log(ratio_2011["induced_ratio"].sel(inverse="plain") / ratio_2005["induced_ratio"].sel(inverse="plain"))
            )
        row["note"] = entry.note
        rows.append(row)
    columns = ["io_code", "sector_en", "published_induced_ratio", "wiod_industry",
               "log_ratio_sd_between_years", "log_ratio_step_sd", "log_ratio_rms_from_2000", "log_inverse_difference",
               "log_inverse_difference_sd", "n_years", "jp2011_37", "jp_log_change_2005_2011", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def industry_ratio_drift(table: str, data_dir: Path, reference_year: int = COMPARISON_YEAR) -> pd.DataFrame:
    """Measure the drift of every industry's induced ratio in a table with several years.

    Unlike ``export_ratio_drift``, which follows the published Japanese sectors
    through a sector map, this works on the table's own sectors (the 35 WIOD
    industries), so it serves any country's WIOD block. One row per sector: the
    direct and induced ratios (plain and domestic form) in reference_year, the
    statistics of ``log_ratio_statistics`` on the plain-form log induced ratio
    over all years (``log_ratio_rms_from_2000`` is the deviation from
    reference_year), and the mean and sd over years of the log ratio of domestic
    to plain form.
    """
    ratios = ratios_from_table(load_table(table, data_dir))
    years = ratios["year"].values
    if reference_year not in years:
        raise ValueError(f"year {reference_year} not found in table {table}: years are {years.min()}-{years.max()}")
    reference_index = int(np.flatnonzero(years == reference_year)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_induced = np.log(ratios["induced_ratio"].where(ratios["induced_ratio"] > 0))

    rows = []
    for sector in ratios["sector"].values:
        one = ratios.sel(sector=sector)
        log_one = log_induced.sel(sector=sector)
        difference = log_one.sel(inverse="domestic") - log_one.sel(inverse="plain")
        row = {
            "sector": str(sector),
            "sector_name": str(one["sector_name"].values),
            "direct_ratio": float(one["direct_ratio"].sel(year=reference_year)),
            "induced_ratio_plain": float(one["induced_ratio"].sel(year=reference_year, inverse="plain")),
            "induced_ratio_domestic": float(one["induced_ratio"].sel(year=reference_year, inverse="domestic")),
        }
        row.update(log_ratio_statistics(log_one.sel(inverse="plain").values, reference_index))
        row["log_inverse_difference"] = float(difference.mean(skipna=True))
        row["log_inverse_difference_sd"] = float(difference.std(ddof=1, skipna=True))
        rows.append(row)
    return pd.DataFrame(rows)
