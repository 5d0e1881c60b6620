"""Grouped Sobol indices of each metal's stock, with bootstrap intervals in chunks.

Every input group of the engine (a flow's share walk, its grade, a product
export's mapped share, split or sector ratios, an extrapolation factor) draws
from its own random stream. A pick-freeze design therefore needs no input
matrix: sample A takes every stream from seed A, sample B from seed B, and
the mixed sample AB_g takes group g's stream from B and the rest from A. The
same object builds the design, evaluates the model and computes the indices,
so outputs cannot be paired with the wrong design.

Estimators (Saltelli et al. 2010, Comput. Phys. Commun. 181:259-270,
doi:10.1016/j.cpc.2009.09.018): first order S_g = mean(f_B (f_AB_g - f_A)) /
V and total ST_g = mean((f_A - f_AB_g)^2) / (2 V) (Jansen 1999), with V the
variance of f_A and f_B pooled. Variance-based indices assume independent
groups, so inputs that share a stream (the years of one share walk, the
sectors of one product export, the inputs of one copula) are one group.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uncertainty.data import InputData
from uncertainty.engine import MetalDraws, Streams, metal_increment, simulate_metal
from uncertainty.simulate import BLOCK_SIZE, block_streams, prepare_inputs
from uncertainty.spec import MetalModel, ModelSet

#: Offset between the seeds of samples A and B.
SEED_B_OFFSET = 7_919


class SobolWarning(RuntimeWarning):
    """A Sobol index could not be estimated reliably (zero variance, too few draws)."""


def input_groups(model: MetalModel, data: InputData, models: ModelSet) -> list[str]:
    """Return the names of the random streams the engine draws for ``model``, in call order."""
    names: list[str] = []

    def recording(group: str) -> np.random.Generator:
        names.append(group)
        return block_streams(0, model.metal, 0)(group)

    inputs = prepare_inputs(model, data, models.boundary)
    simulate_metal(model, inputs, 2, recording)
    return names


def _mixed_streams(seed_a: int, seed_b: int, metal: str, swapped: str | None):
    """Return a block-to-streams map taking group ``swapped`` from seed B, the rest from A."""

    def for_block(block: int) -> Streams:
        from_a = block_streams(seed_a, metal, block)
        from_b = block_streams(seed_b, metal, block)

        def stream(group: str) -> np.random.Generator:
            return from_b(group) if group == swapped else from_a(group)

        return stream

    return for_block


def reference_stock(model: MetalModel, draws: MetalDraws, years: np.ndarray, year: int) -> np.ndarray:
    """Return the stock at the end of ``year`` for each draw (t), from a metal's flows."""
    return metal_increment(model, draws.flows)[:, years <= year].sum(axis=1)


def first_order(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Return Saltelli's first-order estimator; f_ab has shape (..., n_groups, n)."""
    return np.mean(f_b[..., None, :] * (f_ab - f_a[..., None, :]), axis=-1) / variance[..., None]


def total_order(f_a: np.ndarray, f_ab: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Return Jansen's total-order estimator; f_ab has shape (..., n_groups, n)."""
    return 0.5 * np.mean((f_a[..., None, :] - f_ab) ** 2, axis=-1) / variance[..., None]


def _pooled_variance(f_a: np.ndarray, f_b: np.ndarray) -> np.ndarray:
    return np.var(np.concatenate([f_a, f_b], axis=-1), axis=-1, ddof=1)


@dataclass(frozen=True)
class SobolResult:
    """Indices of one metal at one sample size, with bootstrap intervals."""

    metal: str
    groups: tuple[str, ...]
    n: int
    first: np.ndarray
    total: np.ndarray
    first_interval: np.ndarray
    total_interval: np.ndarray
    variance: float


class GroupedSobol:
    """Pick-freeze design over a metal's input groups, its evaluation and its indices.

    Parameters
    ----------
    models, data : ModelSet, InputData
        Validated model files and data.
    n : int
        Base sample size per design matrix, rounded up to whole blocks; the
        model runs ``(2 + n_groups) * n`` draws per metal.
    seed : int
        Seed of sample A; sample B uses ``seed + SEED_B_OFFSET``.
    year : int
        Year whose stock is analysed (the boundary's reference year by default).
    """

    def __init__(self, models: ModelSet, data: InputData, n: int, seed: int, year: int | None = None):
        if n < 2:
            raise ValueError(f"n must be at least 2, got {n!r}")
        self.models = models
        self.data = data
        self.n = n
        self.seed = seed
        self.year = models.boundary.reference_year if year is None else year
        self._outputs: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate(self, metal: str) -> tuple[str, ...]:
        """Run samples A, B and every AB_g of one metal; return its groups."""
        model = next(m for m in self.models.metals if m.metal == metal)
        inputs = prepare_inputs(model, self.data, self.models.boundary)
        groups = tuple(dict.fromkeys(input_groups(model, self.data, self.models)))
        seed_b = self.seed + SEED_B_OFFSET

        walks: dict = {}

        def run(swapped: str | None, seed_a: int) -> np.ndarray:
            # Block by block, keeping only the stock of the analysed year, so
            # memory stays at one block of flows whatever n is.
            streams = _mixed_streams(seed_a, seed_b, metal, swapped)
            stocks = [
                reference_stock(model, simulate_metal(model, inputs, BLOCK_SIZE, streams(block), walks),
                                inputs.years, self.year)
                for block in range(-(-self.n // BLOCK_SIZE))
            ]
            return np.concatenate(stocks)[: self.n]

        f_a = run(None, self.seed)
        f_b = run(None, seed_b)
        f_ab = np.stack([run(group, self.seed) for group in groups])
        self._outputs[metal] = (groups, f_a, f_b, f_ab)
        return groups

    def indices(self, metal: str, n: int | None = None, n_bootstrap: int = 1000,
                chunk: int = 32, rng: np.random.Generator | None = None) -> SobolResult:
        """Return the indices of ``metal`` from its first ``n`` draws, with 95 % bootstrap intervals.

        The bootstrap resamples draws ``n_bootstrap`` times, ``chunk``
        replicates at a time, so memory stays at ``chunk * n_groups * n``
        floats whatever ``n_bootstrap`` is. Indices are never clipped: a
        negative estimate or an interval that contains zero is reported as
        computed. A zero output variance gives NaN indices and a SobolWarning.
        """
        groups, f_a, f_b, f_ab = self._outputs[metal]
        n = self.n if n is None else n

        # Centring on the pooled mean leaves the estimators' expectations
        # unchanged but removes the term mean * (f_AB - f_A) from the
        # first-order sum, whose variance dominates when the mean is large.
        centre = np.mean(np.concatenate([f_a[:n], f_b[:n]]))
        f_a, f_b, f_ab = f_a[:n] - centre, f_b[:n] - centre, f_ab[:, :n] - centre
        rng = np.random.default_rng(self.seed) if rng is None else rng

        variance = _pooled_variance(f_a, f_b)

        # Equal outputs give a variance of rounding size only (about 1e-25 t^2).
        scale = max(abs(centre), np.abs(np.concatenate([f_a, f_b])).max())
        if not variance > (1e-12 * scale) ** 2:
            warnings.warn(
                f"{metal}: the stock has zero variance over {n} draws, so Sobol indices are undefined",
                SobolWarning,
                stacklevel=2,
            )
            nan = np.full(len(groups), np.nan)
            intervals = np.full((len(groups), 2), np.nan)
            return SobolResult(metal, groups, n, nan, nan, intervals, intervals, float(variance))

        first = first_order(f_a, f_b, f_ab, np.asarray(variance))
        total = total_order(f_a, f_ab, np.asarray(variance))

        replicates_first, replicates_total = [], []
        for start in range(0, n_bootstrap, chunk):
            size = min(chunk, n_bootstrap - start)
            index = rng.integers(0, n, size=(size, n))
            a, b = f_a[index], f_b[index]
            ab = np.take_along_axis(f_ab[None, :, :], index[:, None, :], axis=-1)
            boot_variance = _pooled_variance(a, b)
            replicates_first.append(first_order(a, b, ab, boot_variance))
            replicates_total.append(total_order(a, ab, boot_variance))
        first_interval = np.percentile(np.concatenate(replicates_first), [2.5, 97.5], axis=0).T
        total_interval = np.percentile(np.concatenate(replicates_total), [2.5, 97.5], axis=0).T
        return SobolResult(metal, groups, n, first, total, first_interval, total_interval, float(variance))


def sobol_table(results: list[SobolResult]) -> pd.DataFrame:
    """Flatten results into one row per metal, sample size and group."""
    rows = []
    for result in results:
        for position, group in enumerate(result.groups):
            lower, upper = result.total_interval[position]
            first_lower, first_upper = result.first_interval[position]
            rows.append(
                {
                    "metal": result.metal,
                    "n": result.n,
                    "group": group,
                    "first_order": result.first[position],
                    "first_order_lower": first_lower,
                    "first_order_upper": first_upper,
                    "total_order": result.total[position],
                    "total_order_lower": lower,
                    "total_order_upper": upper,
                    "first_order_distinguishable": bool(first_lower > 0),
                    "total_order_distinguishable": bool(lower > 0),
                    "stock_variance_t2": result.variance,
                }
            )
    return pd.DataFrame(rows)


def top_groups_stable(results: list[SobolResult], count: int = 3) -> bool:
    """Tell whether the ``count`` groups of largest total index are the same set at every size."""
    tops = [
        frozenset(np.asarray(r.groups)[np.argsort(-np.nan_to_num(r.total, nan=-np.inf))[:count]])
        for r in results
    ]
    return all(top == tops[-1] for top in tops)

