"""Large runs in bounded memory: draws in chunks, summaries without every draw.

A run of 10^6 draws cannot keep every flow of every draw (about 190 GB for
20 metals, 17 flows and 120 years). This module runs the draws in chunks and
keeps, per metal:

- the stock of the reference year for every draw, so its intervals are exact;
- the observed share of every draw (see :func:`uncertainty.simulate.observed_share`);
- the mean, the share of negative draws, and the smallest and largest draw
  of every year's stock, exactly;
- a histogram of every year's stock, from which quantiles of the other years
  are read. The bins are fixed by the first chunk (``pilot``), with equal widths
  in ``asinh(stock / scale)``, with ``scale`` the pilot's median absolute
  stock, spanning the pilot's range widened by ``MARGIN`` on each side, plus
  two overflow bins. A quantile is interpolated linearly inside its bin, so
  its error is below one bin width, and it is clipped to the exact range of
  the draws. Quantiles that fall in an overflow bin are NaN with a warning.
  ``tests/test_chunked.py`` measures the error against exact quantiles.

Chunks are independent tasks. They run one after the other, on dask's local
threaded scheduler, or on a ``dask.distributed`` cluster when a scheduler
address is given. A chunk simulates the blocks
(:data:`uncertainty.simulate.BLOCK_SIZE` draws each) that overlap it and
keeps its own draws, so the draws are the same bits whatever the chunk size
or the number of workers. A chunk size that is not a multiple of the block
size costs extra time, because a block cut by a chunk boundary is simulated
by both chunks.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from uncertainty.data import InputData
from uncertainty.errors import InputError
from uncertainty.engine import MetalInputs, cumulative_stock, metal_increment, simulate_metal
from uncertainty.simulate import BLOCK_SIZE, _flow_names, block_streams, prepare_inputs
from uncertainty.spec import Boundary, MetalModel, MissingFlow, ModelSet

logger = logging.getLogger(__name__)

#: Probabilities of the quantiles read from the histograms.
QUANTILES = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975)
#: Number of regular bins per metal and year.
N_BINS = 2048
#: Widening of the pilot range on each side, as a fraction of its width in asinh units.
MARGIN = 0.5
#: Draws binned at a time when a chunk's histogram is counted.
HISTOGRAM_ROWS = 8192


class HistogramOverflowWarning(RuntimeWarning):
    """A quantile fell outside the histogram range fixed by the pilot chunk."""


@dataclass
class ChunkSummary:
    """Reduced results of one chunk of draws, for every metal.

    Attributes
    ----------
    start : int
        Index of the chunk's first draw.
    reference_stock : ndarray, shape (n_chunk, n_metals)
        Stock at the end of the reference year, t.
    observed_share : ndarray, shape (n_chunk, n_metals)
        Share of gross flows up to the reference year in observed years.
    stock_sum : ndarray, shape (n_metals, n_years)
        Sum of the stock over the chunk's draws, t.
    negative : ndarray of int, shape (n_metals, n_years)
        Number of draws with a negative stock.
    stock_min, stock_max : ndarray, shape (n_metals, n_years)
        Smallest and largest stock of the chunk's draws, t (NaN draws ignored).
    counts : ndarray of int, shape (n_metals, n_years, N_BINS + 2)
        Histogram counts; the first and last bins count under- and overflow.
    edges, scales : ndarray or None
        The histogram bins, set by the first chunk (see :func:`histogram_bins`).
    """

    start: int
    reference_stock: np.ndarray
    observed_share: np.ndarray
    stock_sum: np.ndarray
    negative: np.ndarray
    stock_min: np.ndarray
    stock_max: np.ndarray
    counts: np.ndarray | None = None
    edges: np.ndarray | None = None
    scales: np.ndarray | None = None


@dataclass(frozen=True)
class PreparedMetal:
    """A metal's model, its inputs on the year grid and its conditioned walks.

    The walks depend on the model and the data only, so they are computed
    once per run and shipped to every chunk.
    """

    model: MetalModel
    inputs: MetalInputs
    walks: dict


def prepare_metals(models: ModelSet, data: InputData, seed: int) -> list[PreparedMetal]:
    """Place every metal's data on the grid and condition its walks once."""
    prepared = []
    for model in models.metals:
        inputs = prepare_inputs(model, data, models.boundary)
        walks: dict = {}
        simulate_metal(model, inputs, 1, block_streams(seed, model.metal, 0), walks)
        prepared.append(PreparedMetal(model, inputs, walks))
    return prepared


def _chunk_stocks(prepared: list[PreparedMetal], reference_year: int, start: int, stop: int, seed: int):
    """Yield (metal index, stock, observed share) for draws ``start`` to ``stop``, block by block."""
    for position, metal in enumerate(prepared):
        model, inputs = metal.model, metal.inputs
        # Years are sorted, so the years up to the reference year are a prefix.
        upto = int(np.searchsorted(inputs.years, reference_year, side="right"))
        cache = dict(metal.walks)
        stock = np.empty((stop - start, inputs.years.size))
        share = np.empty(stop - start)
        for block in range(start // BLOCK_SIZE, -(-stop // BLOCK_SIZE)):
            draws = simulate_metal(model, inputs, BLOCK_SIZE, block_streams(seed, model.metal, block), cache)

            # The block's draws first..last-1 are the chunk's rows first+shift..last+shift-1.
            shift = block * BLOCK_SIZE - start
            first, last = max(0, -shift), min(BLOCK_SIZE, stop - start - shift)
            stock[first + shift : last + shift] = cumulative_stock(metal_increment(model, draws.flows))[first:last]

            # Observed share: gross in- and outflows in observed years over all of them.
            total = np.zeros(BLOCK_SIZE)
            on_observed = np.zeros(BLOCK_SIZE)
            for flow in (f for f in model.flows if f.sign):
                magnitude = np.abs(draws.flows[flow.name][:, :upto])
                total += magnitude.sum(axis=1)
                on_observed += magnitude @ draws.observed[flow.name][:upto].astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                share[first + shift : last + shift] = np.where(total > 0, on_observed / total, np.nan)[first:last]
        yield position, stock, share


def summarize_chunk(
    prepared: list[PreparedMetal],
    boundary: Boundary,
    start: int,
    stop: int,
    seed: int,
    edges: np.ndarray | None,
    scales: np.ndarray | None,
) -> ChunkSummary:
    """Draw ``start`` to ``stop`` and reduce them to a :class:`ChunkSummary`.

    ``edges`` (shape (n_metals, n_years, N_BINS + 1), asinh units) and
    ``scales`` (shape (n_metals, n_years), t) fix the histogram. With None
    the chunk is the pilot: it fixes the bins from its own draws, one metal at
    a time, and returns them in the summary.
    """
    years = np.arange(boundary.first_year, boundary.last_year + 1)
    reference_index = int(np.searchsorted(years, boundary.reference_year))
    n_metals, n_chunk = len(prepared), stop - start
    summary = ChunkSummary(
        start=start,
        reference_stock=np.empty((n_chunk, n_metals)),
        observed_share=np.empty((n_chunk, n_metals)),
        stock_sum=np.empty((n_metals, years.size)),
        negative=np.empty((n_metals, years.size), dtype=np.int64),
        stock_min=np.empty((n_metals, years.size)),
        stock_max=np.empty((n_metals, years.size)),
        counts=np.zeros((n_metals, years.size, N_BINS + 2), dtype=np.int64),
        edges=np.empty((n_metals, years.size, N_BINS + 1)) if edges is None else edges,
        scales=np.empty((n_metals, years.size)) if scales is None else scales,
    )
    for position, stock, share in _chunk_stocks(prepared, boundary.reference_year, start, stop, seed):
        if edges is None:
            summary.edges[position], summary.scales[position] = histogram_bins(stock)
        summary.reference_stock[:, position] = stock[:, reference_index]
        summary.observed_share[:, position] = share
        summary.stock_sum[position] = stock.sum(axis=0)
        summary.negative[position] = (stock < 0).sum(axis=0)
        with warnings.catch_warnings():
            # A year whose draws are all NaN keeps NaN bounds.
            warnings.simplefilter("ignore", RuntimeWarning)
            summary.stock_min[position] = np.nanmin(stock, axis=0)
            summary.stock_max[position] = np.nanmax(stock, axis=0)
        summary.counts[position] = _histogram(stock, summary.edges[position], summary.scales[position])
    if edges is not None:
        # The bins travel back from workers only with the pilot chunk.
        summary.edges = summary.scales = None
    return summary


def _histogram(stock: np.ndarray, edges: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Count draws per bin for every year; stock (n, n_years), edges (n_years, N_BINS + 1).

    The edges of a year are equally spaced (see :func:`histogram_bins`), so a
    draw's bin is computed from its offset instead of searched. Bin 0 counts
    draws below the first edge, bin N_BINS + 1 draws at or above the last
    edge and NaN draws.
    """
    n_years = stock.shape[1]
    low = edges[:, 0]
    width = (edges[:, -1] - low) / N_BINS
    offsets = np.arange(n_years) * (N_BINS + 2) + 1
    counts = np.zeros(n_years * (N_BINS + 2), dtype=np.int64)
    # Rows go in slices, in place, so the temporaries stay small beside the chunk.
    for rows in range(0, stock.shape[0], HISTOGRAM_ROWS):
        position = np.arcsinh(stock[rows : rows + HISTOGRAM_ROWS] / scales)
        position -= low
        position /= width
        np.floor(position, out=position)
        np.nan_to_num(position, copy=False, nan=N_BINS)
        np.clip(position, -1, N_BINS, out=position)
        index = position.astype(np.int64)
        index += offsets
        counts += np.bincount(index.ravel(), minlength=counts.size)
    return counts.reshape(n_years, N_BINS + 2)


def histogram_bins(pilot_stock: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fix scales and bin edges per year from pilot draws of one metal, shape (n, n_years)."""
    scales = np.median(np.abs(pilot_stock), axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    transformed = np.arcsinh(pilot_stock / scales)
    low, high = transformed.min(axis=0), transformed.max(axis=0)
    width = np.maximum(high - low, 1e-9)
    low, high = low - MARGIN * width, high + MARGIN * width
    edges = np.linspace(low, high, N_BINS + 1, axis=-1)
    return edges, scales


def histogram_quantiles(counts: np.ndarray, edges: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Read :data:`QUANTILES` from histograms; counts (..., N_BINS + 2) → (..., n_quantiles), t."""
    total = counts.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(counts, axis=-1) / total
    result = np.full((*counts.shape[:-1], len(QUANTILES)), np.nan)
    overflow = False
    for flat in np.ndindex(counts.shape[:-1]):
        cdf = cumulative[flat]
        for q_index, probability in enumerate(QUANTILES):
            # Bin k (1..N_BINS) spans edges[k-1] to edges[k]; 0 and N_BINS + 1 overflow.
            k = int(np.searchsorted(cdf, probability, side="left"))
            if k == 0 or k == N_BINS + 1:
                overflow = True
                continue
            below = cdf[k - 1]
            inside = cdf[k] - below
            fraction = (probability - below) / inside if inside > 0 else 0.5
            value = edges[flat][k - 1] + fraction * (edges[flat][k] - edges[flat][k - 1])
            result[flat + (q_index,)] = np.sinh(value) * scales[flat]
    if overflow:
        warnings.warn(
            "some quantiles fell outside the histogram range fixed by the first chunk and are "
            "NaN; run with a larger --chunk so that the first chunk spans the tails",
            HistogramOverflowWarning,
            stacklevel=2,
        )
    return result


def run_chunked(
    models: ModelSet,
    data: InputData,
    n_draws: int,
    seed: int,
    chunk_draws: int,
    scheduler: str | None = None,
    use_dask: bool = False,
) -> xr.Dataset:
    """Run ``n_draws`` draws in chunks of ``chunk_draws`` and return their summaries.

    Parameters
    ----------
    chunk_draws : int
        Draws per chunk, at least 1. Multiples of
        :data:`uncertainty.simulate.BLOCK_SIZE` run fastest.
    scheduler : str or None
        Address of a ``dask.distributed`` scheduler; the chunks run on its
        workers. With None and ``use_dask`` the local threaded scheduler
        runs them; with neither they run one after the other.

    Returns
    -------
    xarray.Dataset
        ``reference_stock`` and ``observed_share`` (dims ``draw, metal``; t
        and 1), ``stock_mean`` and ``negative_draw_fraction`` (``metal,
        year``), ``stock_quantile`` (``metal, year, quantile``; t, read from
        histograms), and per-metal ``prior_only``.
    """
    if chunk_draws < 1:
        raise ValueError(f"chunk_draws must be a positive number of draws, got {chunk_draws!r}")
    if chunk_draws % BLOCK_SIZE:
        logger.info(
            "chunks of %d draws are not whole blocks of %d; blocks cut by a chunk boundary "
            "are simulated twice", chunk_draws, BLOCK_SIZE
        )
    boundary = models.boundary
    years = np.arange(boundary.first_year, boundary.last_year + 1)
    starts = list(range(0, n_draws, chunk_draws))

    # The first chunk fixes the histogram bins of every metal and year.
    prepared = prepare_metals(models, data, seed)
    tasks = [(start, min(start + chunk_draws, n_draws)) for start in starts]
    pilot = summarize_chunk(prepared, boundary, *tasks[0], seed, None, None)
    edges, scales = pilot.edges, pilot.scales

    # Summaries are added up as they arrive, so memory keeps one total, not one per chunk.
    reference_stock = np.empty((n_draws, len(prepared)))
    observed = np.empty((n_draws, len(prepared)))
    stock_sum = np.zeros_like(pilot.stock_sum)
    negative = np.zeros_like(pilot.negative)
    stock_min = pilot.stock_min.copy()
    stock_max = pilot.stock_max.copy()
    counts = np.zeros_like(pilot.counts)

    def add(summary: ChunkSummary) -> None:
        stop = summary.start + summary.reference_stock.shape[0]
        reference_stock[summary.start : stop] = summary.reference_stock
        observed[summary.start : stop] = summary.observed_share
        # Sums in chunk order keep the mean the same bits whatever order chunks finish in.
        pending[summary.start] = summary.stock_sum
        negative[...] += summary.negative
        np.fmin(stock_min, summary.stock_min, out=stock_min)
        np.fmax(stock_max, summary.stock_max, out=stock_max)
        counts[...] += summary.counts

    pending: dict[int, np.ndarray] = {}
    add(pilot)
    _run_tasks(prepared, boundary, tasks[1:], seed, edges, scales, scheduler, use_dask, add)
    for start in sorted(pending):
        stock_sum += pending[start]
    stock_mean = stock_sum / n_draws
    negative = negative / n_draws
    # A quantile lies between the smallest and the largest draw, so clipping
    # to the exact range removes the bin error there (a year whose draws are
    # all 0 gets quantiles of exactly 0).
    quantiles = histogram_quantiles(counts, edges, scales)
    quantiles = np.clip(quantiles, stock_min[..., None], stock_max[..., None])

    prior_only = [
        not any(np.any(walk_observed) for walk_observed in _observed_masks(metal))
        for metal in prepared
    ]

    metals = [model.metal for model in models.metals]
    flow_order = _flow_names(models.metals)
    return xr.Dataset(
        {
            "reference_stock": (("draw", "metal"), reference_stock, {"units": "t"}),
            "observed_share": (("draw", "metal"), observed, {"units": "1"}),
            "stock_mean": (("metal", "year"), stock_mean, {"units": "t"}),
            "negative_draw_fraction": (("metal", "year"), negative, {"units": "1"}),
            "stock_min": (("metal", "year"), stock_min, {"units": "t"}),
            "stock_max": (("metal", "year"), stock_max, {"units": "t"}),
            "stock_quantile": (("metal", "year", "quantile"), quantiles, {"units": "t"}),
            "prior_only": (("metal",), np.array(prior_only)),
            "comparison_key": (("metal",), np.array([m.comparison_key for m in models.metals], dtype=str)),
            "flows_not_counted": (
                ("metal",),
                np.array(
                    [";".join(_missing_flow_names(m, flow_order)) for m in models.metals],
                    dtype=str,
                ),
            ),
        },
        coords={"draw": np.arange(n_draws), "metal": metals, "year": years, "quantile": list(QUANTILES)},
        attrs={
            "boundary_key": boundary.key,
            "reference_year": boundary.reference_year,
            "seed": seed,
            "n_draws": n_draws,
            "chunk_draws": chunk_draws,
            "histogram_bins": N_BINS,
        },
    )


def _missing_flow_names(model: MetalModel, flow_order: list[str]) -> list[str]:
    """Return the names of the model's flows that are not counted, in the run's flow order."""
    missing = {flow.name for flow in model.flows if isinstance(flow, MissingFlow)}
    return [name for name in flow_order if name in missing]


def _observed_masks(metal: PreparedMetal) -> list[np.ndarray]:
    probe = simulate_metal(metal.model, metal.inputs, 1, block_streams(0, metal.model.metal, 0), dict(metal.walks))
    return list(probe.observed.values())


def _run_tasks(prepared, boundary, tasks, seed, edges, scales, scheduler, use_dask, add) -> None:
    """Run every chunk, locally, on dask threads, or on a dask.distributed cluster, passing each summary to ``add``."""
    if scheduler is None and not use_dask:
        for start, stop in tasks:
            logger.info("chunk of draws %d-%d", start, stop - 1)
            add(summarize_chunk(prepared, boundary, start, stop, seed, edges, scales))
        return

    if scheduler is None:
        import os

        import dask

        # A few chunks per thread at a time, so finished summaries are added
        # up before the next ones are computed.
        batch = 2 * (os.cpu_count() or 1)
        for first in range(0, len(tasks), batch):
            delayed = [
                dask.delayed(summarize_chunk)(prepared, boundary, start, stop, seed, edges, scales)
                for start, stop in tasks[first : first + batch]
            ]
            for summary in dask.compute(*delayed, scheduler="threads"):
                add(summary)
        return

    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError.single("--scheduler", "address", f"no dask scheduler responded at {scheduler!r} ({exc})") from exc
    with client:
        # Send the prepared metals and bins to every worker once, not with every task.
        shared = client.scatter([prepared, boundary, edges, scales], broadcast=True)
        futures = [
            client.submit(summarize_chunk, shared[0], shared[1], start, stop, seed, shared[2], shared[3], pure=False)
            for start, stop in tasks
        ]
        finished = as_completed(futures)
        # Dropping the list lets each result be released once it has been added.
        del futures
        for future in finished:
            add(future.result())
            future.release()
