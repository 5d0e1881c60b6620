"""Vectorised stock kernel: flows, increments and cumulative stock on plain arrays.

Every function here works on numpy arrays with a leading ``draw`` axis and a
trailing ``year`` axis, and nothing loops over draws. Masses are tonnes of
metal content. The increment of year ``t`` is the signed sum of the boundary
flows: imports and mine production in, exports out. Conversion is zero for
metals, and recycling inside the boundary is not a flow. The stock of year
``T`` is the sum of increments over ``t <= T``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.special
import scipy.stats

from uncertainty.shares import WalkPrior, condition_walk
from uncertainty.distributions import Distribution
from uncertainty.spec import (
    NET_DIRECT_INFLOW,
    WORLD_PRODUCTION,
    Boundary,
    MetalModel,
    MissingFlow,
    ProductExportFlow,
    ShareFlow,
    SumFlow,
)


#: A source of random generators by input group name (for example
#: ``"ore_import.grade"``). Each group draws from its own stream, so that a
#: variance-based sensitivity design can swap one group's stream for another's.
Streams = Callable[[str], np.random.Generator]


@dataclass(frozen=True)
class Anchor:
    """One observation of a flow, in tonnes, placed on the year grid.

    Attributes
    ----------
    year_index : int
        Index of the observation's year in the year grid.
    tonnes : float
        Observed value in tonnes (metal content, or gross weight if ``gross``).
    gross : bool
        True if the value is gross weight and needs a grade.
    sigma : float
        Reporting error as a log-scale standard deviation.
    """

    year_index: int
    tonnes: float
    gross: bool
    sigma: float


@dataclass(frozen=True)
class MetalInputs:
    """Data of one metal on the year grid, prepared for the kernel.

    Attributes
    ----------
    years : ndarray of int, shape (n_years,)
    world_production : ndarray, shape (n_years,)
        World production in tonnes; NaN where the source has no value.
    anchors : dict of str to list of Anchor
        Observations by series name.
    sector_ratios : dict of str to float
        Induced export ratio of each input-output sector code.
    reference_year : int
        Year whose share the ``share_prior`` of each flow describes.
    """

    years: np.ndarray
    world_production: np.ndarray
    anchors: dict[str, list[Anchor]]
    sector_ratios: dict[str, float]
    reference_year: int


@dataclass
class MetalDraws:
    """Monte Carlo draws of one metal.

    Attributes
    ----------
    flows : dict of str to ndarray, shape (n_draws, n_years)
        Each flow in tonnes per year, unsigned.
    observed : dict of str to ndarray of bool, shape (n_years,)
        True where the flow has an observation in that year.
    inputs : dict of str to ndarray, shape (n_draws,)
        Scalar uncertain inputs, for sensitivity analysis.
    notes : list of str
        Caveats found while evaluating the model (dropped anchors, missing proxy).
    tallies : dict of str to list of int
        Caveats that hold in a share of the draws: message (with a ``{share}``
        field) to [cases, total], summed over blocks by :meth:`tally`.
    """

    flows: dict[str, np.ndarray] = field(default_factory=dict)
    observed: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    copula_uniforms: dict[str, np.ndarray] = field(default_factory=dict)
    tallies: dict[str, list[int]] = field(default_factory=dict)

    def tally(self, message: str, cases: int, total: int) -> None:
        """Add ``cases`` out of ``total`` to the caveat ``message``."""
        counts = self.tallies.setdefault(message, [0, 0])
        counts[0] += int(cases)
        counts[1] += int(total)

    def all_notes(self) -> list[str]:
        """Return the notes, then every tallied caveat with at least one case and its share filled in."""
        shares = [
            message.format(share=f"{cases / total:.1%}")
            for message, (cases, total) in self.tallies.items()
            if cases
        ]
        return self.notes + shares


def draw_scalar(
    model: MetalModel,
    name: str,
    distribution: Distribution,
    n_draws: int,
    streams: Streams,
    draws: MetalDraws,
) -> np.ndarray:
    """Draw the scalar input ``name``, jointly with its correlated inputs if it has any.

    Correlated inputs share one stream: equicorrelated standard normals are
    made once per block, turned into uniforms by the normal CDF (a Gaussian
    copula) and mapped through each input's own inverse CDF.
    """
    correlation = model.correlation_of(name)
    if correlation is None:
        return distribution.sample(streams(name), n_draws)

    uniforms = draws.copula_uniforms.get(correlation.stream)
    if uniforms is None:
        size = len(correlation.inputs)
        matrix = np.full((size, size), correlation.rho)
        np.fill_diagonal(matrix, 1.0)
        normals = streams(correlation.stream).standard_normal((n_draws, size))
        uniforms = scipy.stats.norm.cdf(normals @ np.linalg.cholesky(matrix).T)
        draws.copula_uniforms[correlation.stream] = uniforms
    return distribution.ppf(uniforms[:, correlation.inputs.index(name)])


def warped_times(years: np.ndarray, rule: str, before: int) -> np.ndarray:
    """Return the walk's time axis: real years, or held at ``before`` for earlier years.

    With ``constant_share`` the walk does not move before ``before``, so the
    share there equals the share in ``before`` and the flow is proportional to
    its proxy: the NIMS pre-1976 rule.
    """
    years = np.asarray(years, dtype=float)
    if rule == "constant_share":
        return np.maximum(years, before)
    return years


def simulate_share_flow(
    flow: ShareFlow,
    model: MetalModel,
    inputs: MetalInputs,
    proxy: np.ndarray,
    n_draws: int,
    streams: Streams,
    draws: MetalDraws,
    cache: dict | None = None,
) -> np.ndarray:
    """Draw a share x proxy flow, shape (n_draws, n_years), in tonnes per year.

    ``proxy`` has shape (n_years,) or (n_draws, n_years). Anchors in years
    where the proxy is missing or zero cannot pin a share and are dropped with
    a note, as are anchors above world production. Zero observations are kept
    as exact zeros of the flow, since the walk cannot represent a zero share.
    """
    years = inputs.years
    proxy = np.asarray(proxy)
    known = np.isfinite(proxy) & (proxy > 0)
    proxy_known = known if proxy.ndim == 1 else np.all(known, axis=0)
    counted_proxy = np.where(proxy_known, proxy, 0.0)
    proxy = np.broadcast_to(proxy, (n_draws, years.size))

    grade = None
    if flow.grade is not None:
        grade = draw_scalar(model, f"{flow.name}.grade", flow.grade, n_draws, streams, draws)
        draws.inputs[f"{flow.name}.grade"] = grade

    anchors = [a for series in flow.anchors for a in inputs.anchors.get(series, [])]
    observed = np.zeros(years.size, dtype=bool)
    zero_years = np.zeros(years.size, dtype=bool)
    usable = []
    for anchor in anchors:
        if anchor.tonnes == 0:
            zero_years[anchor.year_index] = True
        elif not proxy_known[anchor.year_index]:
            draws.notes.append(
                f"{flow.name}: observation of {years[anchor.year_index]} dropped, "
                "because the proxy has no value that year"
            )
        elif anchor.gross and grade is None:
            draws.notes.append(
                f"{flow.name}: gross-weight observation of {years[anchor.year_index]} "
                "dropped, because the flow declares no grade"
            )
        else:
            usable.append(anchor)

    # Anchor shares, per draw when the grade or the proxy varies.
    index = np.array([a.year_index for a in usable], dtype=int)
    tonnes = np.broadcast_to([a.tonnes for a in usable], (n_draws, index.size)).copy()
    if usable and grade is not None:
        gross = np.array([a.gross for a in usable])
        tonnes[:, gross] *= grade[:, None]
    anchor_shares = tonnes / proxy[:, index]

    # A share of world production lies in (0, 1), so by default it walks on
    # the logit scale. A share of another flow can exceed 1, so by default it
    # walks on the log scale.
    bounded = flow.share_scale == "logit"
    if bounded:
        keep = np.all(anchor_shares < 1.0, axis=0)
        for anchor in (a for a, kept in zip(usable, keep) if not kept):
            draws.notes.append(
                f"{flow.name}: observation of {years[anchor.year_index]} dropped, "
                "because its share of the proxy is not below 1"
            )
        usable = [a for a, kept in zip(usable, keep) if kept]
        index, anchor_shares = index[keep], anchor_shares[:, keep]

    # Only observations that pin the walk, or an observed zero, count as observed.
    observed[index] = True
    observed |= zero_years
    to_walk = scipy.special.logit if bounded else np.log
    from_walk = scipy.special.expit if bounded else np.exp

    # Reporting errors are log-scale sds; d logit(p) = d log(p) / (1 - p).
    sigmas = np.array(
        [a.sigma if flow.reporting_error is None else flow.reporting_error for a in usable]
    )
    if bounded and usable:
        nominal = np.array([a.tonnes for a in usable]) / proxy[0, index]
        if grade is not None:
            nominal = np.where([a.gross for a in usable], nominal * flow.grade.median(), nominal)
        sigmas = sigmas / (1.0 - np.clip(nominal, 0.0, 0.99))
    prior_mean = float(to_walk(flow.share_prior.parameters.get("scale", 1.0)))
    prior_sd = flow.share_prior.parameters["s"]
    times = warped_times(years, model.extrapolation.rule, model.extrapolation.before)
    origin = float(warped_times(np.array([inputs.reference_year]), model.extrapolation.rule,
                                model.extrapolation.before)[0])

    # Years that share a warped time share one walk value, exactly. The
    # conditioned walk depends on the model and the anchors only, so it is
    # computed once and reused for every block of draws.
    unique_times, position = np.unique(times, return_inverse=True)
    walk = cache.get(flow.name) if cache is not None else None
    if walk is None:
        prior = WalkPrior(unique_times, origin, flow.walk_step, prior_sd**2)
        walk = condition_walk(prior, position[index], sigmas**2, prior_mean)
        if cache is not None:
            cache[flow.name] = walk
    normals = streams(f"{flow.name}.walk").standard_normal((n_draws, walk.n_normals))
    walked = walk.sample(to_walk(anchor_shares), normals)
    if unique_times.size < years.size:
        walked = walked[:, position]
    reference_index = int(np.searchsorted(years, inputs.reference_year))
    draws.inputs[f"{flow.name}.share_reference_year"] = from_walk(walked[:, reference_index])

    # The extrapolation factor scales the share (for a bounded share, its odds).
    if model.extrapolation.rule == "constant_share":
        early = (years < model.extrapolation.before) & ~observed
        factor = draw_scalar(
            model, f"{flow.name}.extrapolation", model.extrapolation.factor, n_draws, streams, draws
        )
        draws.inputs[f"{flow.name}.extrapolation_factor"] = factor
        walked[:, early] += np.log(factor)[:, None]

    values = share_times_proxy(walked, counted_proxy, bounded)
    values[:, zero_years] = 0.0
    if not proxy_known.all():
        missing = years[~proxy_known]
        draws.notes.append(
            f"{flow.name}: counted as 0 in {missing.size} year(s) without a proxy value "
            f"({year_ranges(missing)})"
        )
    draws.observed[flow.name] = observed
    return values


def share_times_proxy(walked: np.ndarray, proxy: np.ndarray, bounded: bool) -> np.ndarray:
    """Return the flow ``share x proxy`` from walk values, overwriting ``walked``.

    The share is ``expit(walked)`` if ``bounded``, else ``exp(walked)``. The
    logistic function is written as ``1 / (1 + exp(-x))`` in numpy ufuncs,
    which ran about 3x faster than ``scipy.special.expit`` on a block of draws
    (numpy 2.4, AVX-512). An overflow of ``exp`` gives a share of exactly 0
    (bounded) or inf (unbounded), as ``expit`` and ``exp`` do.
    """
    with np.errstate(over="ignore"):
        if bounded:
            np.negative(walked, out=walked)
            np.exp(walked, out=walked)
            walked += 1.0
            np.divide(proxy, walked, out=walked)
        else:
            np.exp(walked, out=walked)
            walked *= proxy
    return walked


def year_ranges(years: np.ndarray) -> str:
    """Write sorted years as ranges, for example ``1900-1968, 2018-2019``."""
    parts = []
    start = previous = int(years[0])
    for year in (int(y) for y in years[1:]):
        if year != previous + 1:
            parts.append(f"{start}-{previous}" if previous > start else f"{start}")
            start = year
        previous = year
    parts.append(f"{start}-{previous}" if previous > start else f"{start}")
    return ", ".join(parts)


def sample_export_factor(
    model: MetalModel,
    flow: ProductExportFlow,
    ratios: np.ndarray,
    years: np.ndarray,
    n_draws: int,
    streams: Streams,
    draws: MetalDraws,
) -> np.ndarray:
    """Draw the share of domestic demand that leaves inside exported products, shape (n_draws, n_years).

    factor = mapped_share x sum over sectors of split_s x ratio_s. The split of
    the mapped demand among the sectors is uniform on the simplex
    (Dirichlet(1, ..., 1)) because no split is declared. Each sector's ratio is
    log-normal about its table value with sd ``ratio_sigma``, truncated so that
    no sector exports more than its whole output (ratio <= 1). With a
    ``ratio_step`` the log ratios also drift outside ``ratio_step_years`` (see
    :func:`ratio_drift`), and a drifted ratio above 1 counts as 1.
    """
    mapped = draw_scalar(model, f"{flow.name}.mapped_share", flow.mapped_share, n_draws, streams, draws)
    draws.inputs[f"{flow.name}.mapped_share"] = mapped
    split = streams(f"{flow.name}.split").dirichlet(np.ones(ratios.size), size=n_draws)

    if flow.ratio_sigma > 0:
        upper = np.log(1.0 / ratios) / flow.ratio_sigma
        uniforms = streams(f"{flow.name}.ratios").random((n_draws, ratios.size))
        # Inverse CDF of a normal truncated to (-inf, upper]. Ratios are checked
        # to lie in (0, 1], so upper >= 0 and ndtr(upper) >= 0.5 keeps it accurate.
        normals = scipy.special.ndtri(uniforms * scipy.special.ndtr(upper))
        drawn = ratios * np.exp(flow.ratio_sigma * normals)
    else:
        drawn = np.broadcast_to(ratios, (n_draws, ratios.size))
    for position, code in enumerate(flow.sectors):
        draws.inputs[f"{flow.name}.ratio[{code}]"] = drawn[:, position]
    if flow.ratio_step == 0 or flow.ratio_step_years is None:
        return (mapped * np.sum(split * drawn, axis=1))[:, None]

    growth = np.exp(ratio_drift(years, flow.ratio_step, flow.ratio_step_years, n_draws, streams(f"{flow.name}.ratio_drift")))
    factor = (mapped * np.sum(split * drawn, axis=1))[:, None] * growth

    # Only draws whose largest ratio times largest growth exceeds 1 can hit
    # the cap, so only they are recomputed sector by sector.
    may_exceed = drawn.max(axis=1) * growth.max(axis=1) > 1.0
    cases = 0
    if may_exceed.any():
        yearly = drawn[may_exceed, :, None] * growth[may_exceed, None, :]
        cases = int(np.count_nonzero(yearly > 1.0))
        np.minimum(yearly, 1.0, out=yearly)
        factor[may_exceed] = mapped[may_exceed, None] * (split[may_exceed, None, :] @ yearly)[:, 0, :]
    draws.tally(
        f"{flow.name}: a drifted sector export ratio above 1 in {{share}} of draw-sector-years, "
        "counted as 1 there",
        cases,
        n_draws * ratios.size * years.size,
    )
    return factor


def ratio_drift(
    years: np.ndarray, step: float, window: tuple[int, int], n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw the log drift of export ratios, shape (n_draws, n_years).

    The drift is 0 inside ``window``, the years whose spread ``ratio_sigma``
    already describes. Outside it the drift is a Gaussian random walk with
    yearly sd ``step``, going forward from the window's last year and
    backward from its first. Its variance is ``step**2 * k`` at ``k`` years
    outside. ``years`` are sorted.
    """
    drift = rng.standard_normal((n_draws, years.size))
    drift *= step
    # Sorted years make the years before and after the window a prefix and a suffix.
    first = int(np.searchsorted(years, window[0], side="left"))
    last = int(np.searchsorted(years, window[1], side="right"))
    drift[:, first:last] = 0.0
    np.cumsum(drift[:, last:], axis=1, out=drift[:, last:])
    drift[:, :first] = np.cumsum(drift[:, first - 1 :: -1], axis=1)[:, ::-1] if first else 0.0
    return drift


def simulate_metal(
    model: MetalModel,
    inputs: MetalInputs,
    n_draws: int,
    streams: Streams,
    cache: dict | None = None,
) -> MetalDraws:
    """Draw every flow of one metal, in the order the model file lists them.

    ``cache`` keeps each flow's conditioned walk between calls for the same
    model and inputs (one call per block of draws).

    Returns
    -------
    MetalDraws
        Flows in tonnes per year, shape (n_draws, n_years) each.
    """
    draws = MetalDraws()
    n_years = inputs.years.size
    for flow in model.flows:
        if isinstance(flow, MissingFlow):
            draws.flows[flow.name] = np.zeros((n_draws, n_years))
            draws.observed[flow.name] = np.zeros(n_years, dtype=bool)
        elif isinstance(flow, ShareFlow):
            if flow.proxy == WORLD_PRODUCTION:
                proxy = inputs.world_production
            else:
                proxy = draws.flows[flow.proxy]
            draws.flows[flow.name] = simulate_share_flow(
                flow, model, inputs, proxy, n_draws, streams, draws, cache
            )
        elif isinstance(flow, SumFlow):
            draws.flows[flow.name] = sum(coefficient * draws.flows[term] for coefficient, term in flow.terms)
            observed = np.ones(n_years, dtype=bool)
            for _, term in flow.terms:
                observed &= draws.observed[term]
            draws.observed[flow.name] = observed
        else:
            if flow.demand == NET_DIRECT_INFLOW:
                demand = net_direct_inflow(model, draws.flows)
            else:
                demand = draws.flows[flow.demand]
            ratios = np.array([inputs.sector_ratios[code] for code in flow.sectors])
            factor = sample_export_factor(model, flow, ratios, inputs.years, n_draws, streams, draws)

            # Negative demand (a sum whose outflows exceed its inflows) exports
            # nothing; how often that happens is reported, not hidden.
            negative = demand < 0
            draws.tally(
                f"{flow.name}: demand {flow.demand!r} below 0 in {{share}} of draw-years, counted as 0 there",
                negative.sum(),
                negative.size,
            )
            exported = np.maximum(demand, 0.0)
            exported *= factor
            draws.flows[flow.name] = exported
            draws.observed[flow.name] = np.zeros(n_years, dtype=bool)
    return draws


def net_direct_inflow(model: MetalModel, flows: dict[str, np.ndarray]) -> np.ndarray:
    """Return the signed sum of the share flows evaluated so far, shape (n_draws, n_years).

    Used as domestic demand where none is observed. It leaves out recycled
    metal, so it understates demand and the product exports derived from it.
    """
    total = 0.0
    for flow in model.flows:
        if isinstance(flow, ShareFlow) and flow.name in flows and flow.sign != 0:
            total = total + flow.sign * flows[flow.name]
    return np.asarray(total)


def metal_increment(model: MetalModel, flows: dict[str, np.ndarray]) -> np.ndarray:
    """Return the yearly stock increment of one metal, the signed sum of its flows.

    Parameters
    ----------
    model : MetalModel
        Gives each flow's sign: +1 inflow, -1 outflow, 0 auxiliary series.
    flows : dict of str to ndarray, shape (n_draws, n_years)
        Unsigned flows in tonnes per year, as drawn by :func:`simulate_metal`.

    Returns
    -------
    ndarray, shape (n_draws, n_years), tonnes per year
    """
    increment = np.zeros_like(next(iter(flows.values())), dtype=float)
    for flow in model.flows:
        if flow.sign > 0:
            increment += flows[flow.name]
        elif flow.sign < 0:
            increment -= flows[flow.name]
    return increment


def cumulative_stock(increment: np.ndarray) -> np.ndarray:
    """Return the stock at the end of each year, the running sum of increments.

    Parameters
    ----------
    increment : ndarray, shape (..., n_years)

    Returns
    -------
    ndarray, same shape, tonnes
    """
    return np.cumsum(increment, axis=-1)
