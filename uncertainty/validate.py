"""Checks across model files and data tables, run before any sampling.

Each file is checked on its own when read (:mod:`uncertainty.spec`,
:mod:`uncertainty.data`). This module checks what only the pair can show: a
metal without world production, a sector absent from the ratio table,
gross-weight anchor rows on a flow without a grade, an anchor series with no
rows. All problems are raised together.
"""

from __future__ import annotations

import difflib
import warnings

import numpy as np
import pandas as pd

from uncertainty.data import InputData
from uncertainty.errors import InputError, Problem
from uncertainty.spec import Boundary, ModelSet, ProductExportFlow, ShareFlow, WORLD_PRODUCTION


class DataCoverageWarning(UserWarning):
    """A model refers to data that exist but cover less than the model needs."""


def check_models_against_data(models: ModelSet, data: InputData) -> None:
    """Raise :class:`InputError` listing every mismatch between models and data.

    Warns with :class:`DataCoverageWarning` for anchors that name a series
    with no rows, since such a flow still runs on its prior.
    """
    problems: list[Problem] = []
    boundary = models.boundary
    sector_codes = set(data.export_ratios["io_code"].astype(str))

    for model in models.metals:
        path = str(model.path)
        world = data.world[(data.world["metal"] == model.metal) & (data.world["basis"] == model.world_basis)]
        if world.empty:
            problems.append(
                Problem(
                    path,
                    "metal",
                    f"a metal with world production on the {model.world_basis} basis in the data",
                    f"{model.metal!r} has none",
                )
            )
            continue
        reference_rows = world[world["year"] == boundary.reference_year]
        if reference_rows.empty:
            problems.append(
                Problem(
                    path,
                    "metal",
                    f"world production in the reference year {boundary.reference_year}",
                    f"years {int(world['year'].min())}-{int(world['year'].max())}",
                )
            )
        elif not np.all(reference_rows["tonnes"] > 0):
            problems.append(
                Problem(path, "metal", f"world production above 0 in {boundary.reference_year}", "0")
            )

        for index, flow in enumerate(model.flows):
            location = f"flows[{index}]"
            if isinstance(flow, ProductExportFlow):
                for code in flow.sectors:
                    if code not in sector_codes:
                        problems.append(
                            Problem(path, f"{location}.sectors", "a sector code of the export-ratio table", repr(code))
                        )
                ratios = data.export_ratios.set_index(data.export_ratios["io_code"].astype(str))
                for code in set(flow.sectors) & sector_codes:
                    value = float(ratios.loc[code, "induced_export_ratio"])
                    if not 0 < value <= 1:
                        problems.append(
                            Problem(
                                str(data.export_ratios.attrs.get("path", "export ratios")),
                                f"io_code {code}",
                                "an induced export ratio in (0, 1]",
                                repr(value),
                            )
                        )
            if isinstance(flow, ShareFlow):
                for reference in flow.anchors:
                    metal, _, series = reference.rpartition(":")
                    metal = metal or model.metal
                    rows = data.observations[
                        (data.observations["metal"] == metal) & (data.observations["series"] == series)
                    ]
                    if rows.empty:
                        known = data.observations.loc[data.observations["metal"] == metal, "series"]
                        close = difflib.get_close_matches(series, sorted(set(known)), n=1)
                        hint = f" (did you mean {close[0]!r}?)" if close else ""
                        warnings.warn(
                            f"{path}: {location}.anchors names {reference!r}, which has no rows "
                            f"in the data{hint}; the flow runs on its share prior",
                            DataCoverageWarning,
                            stacklevel=2,
                        )
                    if flow.grade is None:
                        problems.extend(_gross_rows_without_grade(path, location, reference, rows, boundary))
                if flow.proxy == WORLD_PRODUCTION and model.extrapolation.rule == "constant_share":
                    anchor_year = model.extrapolation.before
                    rows = world[world["year"] == anchor_year]
                    if rows.empty or not np.all(rows["tonnes"] > 0):
                        problems.append(
                            Problem(
                                path,
                                "extrapolation.before",
                                f"a year with world production above 0 (the share is held at {anchor_year})",
                                "no world production" if rows.empty else "0",
                            )
                        )
    if problems:
        raise InputError(problems)


def _gross_rows_without_grade(
    path: str, location: str, reference: str, rows: pd.DataFrame, boundary: Boundary
) -> list[Problem]:
    """Report gross-weight anchor rows on the year grid of a flow that declares no grade.

    The engine cannot turn such a row into metal content, so it would drop it.
    """
    on_grid = rows[(rows["year"] >= boundary.first_year) & (rows["year"] <= boundary.last_year)]
    gross = on_grid[on_grid["basis"] == "gross_weight"]
    if gross.empty:
        return []
    if "file" in gross.columns:
        places = [f"{file} row {line}" for file, line in zip(gross["file"], gross["line"])]
    else:
        places = [f"year {year}" for year in gross["year"]]
    return [
        Problem(
            path,
            f"{location}.grade",
            f"a grade distribution, because anchor {reference!r} has gross_weight rows",
            f"no grade; gross_weight rows: {', '.join(places)}",
        )
    ]
