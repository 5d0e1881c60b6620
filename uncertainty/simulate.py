"""Run the stock kernel for every metal and collect the draws in an xarray.Dataset."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable

import numpy as np
import xarray as xr
from tqdm import tqdm

from uncertainty.data import InputData
from uncertainty.engine import (
    Anchor,
    MetalDraws,
    MetalInputs,
    Streams,
    cumulative_stock,
    metal_increment,
    simulate_metal,
)
from uncertainty.quality import anchor_sigma, pedigree_sigmas
from uncertainty.spec import (
    Boundary,
    MetalModel,
    MissingFlow,
    ModelSet,
    ProductExportFlow,
    ShareFlow,
    SumFlow,
)

logger = logging.getLogger(__name__)


#: Number of draws that share one random stream. Draw ``i`` of a metal comes
#: from block ``i // BLOCK_SIZE``, whose streams depend on the seed, the metal
#: and the block index only. So the draws do not depend on how many are
#: requested or how the work is split, and the first N draws of a larger run
#: equal a run of N draws.
BLOCK_SIZE = 1024


def block_streams(seed: int, metal: str, block: int) -> Streams:
    """Return the random streams of one block of draws of one metal.

    Each input group (a flow's walk, grade, mapped share, ...) has its own
    stream, which depends on the seed, the metal's symbol, the block index
    and the group's name only. So a run of a subset of metals reproduces the
    same draws for them, and adding a flow to a model leaves the draws of the
    other flows as they were.
    """

    def stream(group: str) -> np.random.Generator:
        key = (zlib.crc32(metal.encode()), block, zlib.crc32(group.encode()))
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))

    return stream


def simulate_metal_blocks(
    model: MetalModel,
    inputs: MetalInputs,
    n_draws: int,
    seed: int,
    streams_for_block: Callable[[int], Streams] | None = None,
) -> MetalDraws:
    """Draw one metal block by block and join the blocks, keeping ``n_draws`` draws.

    ``streams_for_block`` maps a block index to its random streams; by
    default they come from :func:`block_streams` with ``seed``.
    """
    if streams_for_block is None:
        def streams_for_block(block: int) -> Streams:
            return block_streams(seed, model.metal, block)

    n_blocks = -(-n_draws // BLOCK_SIZE)
    cache: dict = {}
    blocks = [
        simulate_metal(model, inputs, BLOCK_SIZE, streams_for_block(block), cache)
        for block in range(n_blocks)
    ]
    joined = MetalDraws(
        flows={name: np.concatenate([b.flows[name] for b in blocks])[:n_draws] for name in blocks[0].flows},
        observed=blocks[0].observed,
        inputs={name: np.concatenate([b.inputs[name] for b in blocks])[:n_draws] for name in blocks[0].inputs},
        notes=list(dict.fromkeys(note for b in blocks for note in b.notes)),
    )
    for block in blocks:
        for message, (cases, total) in block.tallies.items():
            joined.tally(message, cases, total)
    return joined


def _anchor_key(reference: str, metal: str) -> tuple[str, str]:
    """Split an anchor reference ``series`` or ``METAL:series`` into (metal, series)."""
    if ":" in reference:
        other, series = reference.split(":", 1)
        return other, series
    return metal, reference


def prepare_inputs(model: MetalModel, data: InputData, boundary: Boundary) -> MetalInputs:
    """Place one metal's world production, observations and sector ratios on the year grid."""
    years = np.arange(boundary.first_year, boundary.last_year + 1)

    world = data.world[
        (data.world["metal"] == model.metal)
        & (data.world["period"] == "CY")
        & (data.world["basis"] == model.world_basis)
    ]
    world_by_year = world.groupby("year")["tonnes"].mean()
    world_production = world_by_year.reindex(years).to_numpy(dtype=float)

    anchors: dict[str, list[Anchor]] = {}
    references = {ref for flow in model.flows if isinstance(flow, ShareFlow) for ref in flow.anchors}
    observations = data.observations
    # None unless boundary.toml sets reporting_error.method = "pedigree".
    source_sigmas = pedigree_sigmas(data, boundary.reporting_error)
    for reference in sorted(references):
        metal, series = _anchor_key(reference, model.metal)
        rows = observations[
            (observations["metal"] == metal)
            & (observations["series"] == series)
            & (observations["year"] >= years[0])
            & (observations["year"] <= years[-1])
        ]
        anchors[reference] = [
            Anchor(
                year_index=int(row.year - years[0]),
                tonnes=float(row.tonnes),
                gross=row.basis == "gross_weight",
                sigma=anchor_sigma(boundary.reporting_error, row, source_sigmas),
            )
            for row in rows.itertuples()
        ]

    ratios = data.export_ratios.set_index("io_code")["induced_export_ratio"]
    sector_ratios = {str(code): float(value) for code, value in ratios.items()}
    return MetalInputs(years, world_production, anchors, sector_ratios, boundary.reference_year)


def _flow_names(models: Iterable[MetalModel]) -> list[str]:
    names: list[str] = []
    for model in models:
        for flow in model.flows:
            if flow.name not in names:
                names.append(flow.name)
    return names


def is_prior_only(model: MetalModel, draws: MetalDraws) -> bool:
    """Tell whether no flow of the metal has a single observation."""
    return not any(mask.any() for mask in draws.observed.values())


def simulate(
    models: ModelSet,
    data: InputData,
    n_draws: int,
    seed: int,
    progress: bool = False,
) -> xr.Dataset:
    """Draw every flow of every metal and compute increments and stocks.

    Parameters
    ----------
    models : ModelSet
        Validated model files of one boundary.
    data : InputData
        Validated data tables.
    n_draws : int
        Number of Monte Carlo draws, at least 1.
    seed : int
        Seed of the run; the same seed gives the same arrays.
    progress : bool
        Show a progress bar over metals.

    Returns
    -------
    xarray.Dataset
        ``stock`` and ``increment`` (dims ``draw, metal, year``; t and t/yr),
        ``flows`` (``draw, metal, flow, year``; t/yr, NaN where a metal has no
        such flow), ``sign`` and ``observed`` (``metal, flow[, year]``),
        ``world_production`` (``metal, year``; t/yr), ``input_value``
        (``draw, input``) and per-metal ``prior_only`` and ``notes``.
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, got {n_draws!r}")
    boundary = models.boundary
    years = np.arange(boundary.first_year, boundary.last_year + 1)
    metals = [model.metal for model in models.metals]
    flow_names = _flow_names(models.metals)

    # Flows are kept in float32 (seven significant digits, far below any flow's
    # spread), which halves the largest array; sums are taken in float64.
    flow_values = np.full((n_draws, len(metals), len(flow_names), years.size), np.nan, dtype=np.float32)
    increment = np.zeros((n_draws, len(metals), years.size))
    signs = np.zeros((len(metals), len(flow_names)), dtype=int)
    observed = np.zeros((len(metals), len(flow_names), years.size), dtype=bool)
    kinds = np.full((len(metals), len(flow_names)), "", dtype=object)
    world = np.full((len(metals), years.size), np.nan)
    prior_only = np.zeros(len(metals), dtype=bool)
    notes = []
    input_columns: dict[str, np.ndarray] = {}
    input_metals: list[str] = []

    for position, model in enumerate(tqdm(models.metals, disable=not progress, unit="metal")):
        inputs = prepare_inputs(model, data, boundary)
        draws = simulate_metal_blocks(model, inputs, n_draws, seed)
        world[position] = inputs.world_production
        increment[:, position] = metal_increment(model, draws.flows)
        for flow in model.flows:
            column = flow_names.index(flow.name)
            flow_values[:, position, column] = draws.flows[flow.name]
            signs[position, column] = flow.sign
            observed[position, column] = draws.observed[flow.name]
            kinds[position, column] = _kind(flow)
            if isinstance(flow, MissingFlow):
                draws.notes.append(f"{flow.name}: not counted ({flow.reason})")
        for name, values in draws.inputs.items():
            input_columns[f"{model.metal}:{name}"] = values
            input_metals.append(model.metal)
        prior_only[position] = is_prior_only(model, draws)
        metal_notes = draws.all_notes()
        notes.append("\n".join(metal_notes))
        logger.info("simulated %s: %d flows, %d notes", model.metal, len(model.flows), len(metal_notes))

    stock = cumulative_stock(increment)

    dataset = xr.Dataset(
        {
            "stock": (("draw", "metal", "year"), stock, {"units": "t", "long_name": "cumulative stock at the end of the year"}),
            "increment": (("draw", "metal", "year"), increment, {"units": "t/yr", "long_name": "net inflow of the year"}),
            "flows": (("draw", "metal", "flow", "year"), flow_values, {"units": "t/yr", "long_name": "unsigned flow"}),
            "sign": (("metal", "flow"), signs, {"units": "1", "long_name": "+1 inflow, -1 outflow, 0 auxiliary"}),
            "flow_kind": (("metal", "flow"), kinds.astype(str)),
            "observed": (("metal", "flow", "year"), observed, {"long_name": "flow observed in that year"}),
            "world_production": (("metal", "year"), world, {"units": "t/yr"}),
            "prior_only": (("metal",), prior_only, {"long_name": "no flow of the metal has an observation"}),
            "notes": (("metal",), np.array(notes, dtype=str)),
            "comparison_key": (("metal",), np.array([m.comparison_key for m in models.metals], dtype=str)),
            "input_value": (
                ("draw", "input"),
                np.column_stack(list(input_columns.values())) if input_columns else np.zeros((n_draws, 0)),
            ),
        },
        coords={
            "draw": np.arange(n_draws),
            "metal": metals,
            "flow": flow_names,
            "year": years,
            "input": list(input_columns),
            "input_metal": ("input", input_metals),
        },
        attrs={
            "region": boundary.region,
            "boundary": boundary.name,
            "boundary_key": boundary.key,
            "reference_year": boundary.reference_year,
            "reference_year_rationale": boundary.reference_year_rationale,
            "seed": seed,
            "n_draws": n_draws,
        },
    )
    return dataset


def _kind(flow) -> str:
    if isinstance(flow, ShareFlow):
        return "share"
    if isinstance(flow, ProductExportFlow):
        return "product_export"
    if isinstance(flow, SumFlow):
        return "sum"
    return "missing"


def observed_share(dataset: xr.Dataset, year: int) -> xr.DataArray:
    """Return the share of gross flows up to ``year`` that rests on observed years.

    For each draw the numerator sums the in- and outflows (auxiliary series
    excluded) in years where that flow is observed. The denominator sums all
    in- and outflows. The result has dims ``draw, metal`` and no unit.
    """
    window = dataset.sel(year=slice(None, year))
    counted = window["flows"].fillna(0.0) * np.abs(window["sign"])
    total = counted.sum(dim=("flow", "year"))
    on_observed = counted.where(window["observed"], 0.0).sum(dim=("flow", "year"))
    share = on_observed / total.where(total > 0)
    share.attrs["units"] = "1"
    return share


def negative_stock_fraction(dataset: xr.Dataset) -> xr.DataArray:
    """Return the fraction of draws whose stock is below zero, dims ``metal, year``."""
    fraction = (dataset["stock"] < 0).mean(dim="draw")
    fraction.attrs["units"] = "1"
    return fraction


def log_run(dataset: xr.Dataset) -> None:
    """Log per-metal counts of negative stocks at the reference year."""
    fraction = negative_stock_fraction(dataset).sel(year=dataset.attrs["reference_year"])
    for metal, value in zip(dataset["metal"].values, fraction.values):
        if value > 0:
            logger.warning("%s: %.1f %% of draws have a negative stock", metal, 100 * value)

