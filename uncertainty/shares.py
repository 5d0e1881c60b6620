"""Log shares as Gaussian random walks conditioned on noisy anchors (numpy kernel).

A Japanese flow that is not observed every year is modelled as ``share x
proxy``. The share, on the logit or the log scale, follows a Gaussian random
walk with a yearly step sd ``step``, and its level has a normal prior. The
walk is conditioned on the anchor years, where the flow is observed with a
reporting error. Between two anchors this gives a Brownian bridge, and beyond
the outermost anchor an unpinned walk whose spread grows with the distance.

The walk is written as a Gaussian process with covariance

    k(t, u) = level_var + step**2 * B(t - origin, u - origin)

where ``B(a, b) = min(|a|, |b|)`` if ``a`` and ``b`` have the same sign and 0
otherwise (two-sided Brownian motion from ``origin``). Its increments have
variance ``step**2 * |t - u|`` whatever ``origin`` is, so ``origin`` only sets
where the level prior applies. Times may be warped (held constant before a
year) to express a constant-share extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

#: Jitter on the anchor covariance, relative to its mean diagonal, so that
#: noise-free anchors in the same year (a singular matrix) still solve.
JITTER = 1e-13


def walk_covariance(
    times: np.ndarray, origin: float, step: float, level_var: float
) -> np.ndarray:
    """Return the prior covariance of the log share at ``times``.

    Parameters
    ----------
    times : ndarray, shape (n_years,)
        (Possibly warped) time of each year, in years.
    origin : float
        Time at which the level prior ``level_var`` applies alone.
    step : float
        Standard deviation of the yearly change of the log share.
    level_var : float
        Variance of the log share at ``origin``.

    Returns
    -------
    ndarray, shape (n_years, n_years)
    """
    offset = np.asarray(times, dtype=float) - origin
    same_side = np.outer(np.sign(offset), np.sign(offset)) > 0
    nearer = np.minimum.outer(np.abs(offset), np.abs(offset))
    return level_var + step**2 * np.where(same_side, nearer, 0.0)


@dataclass(frozen=True)
class WalkPrior:
    """A Gaussian random walk with a normal level, on sorted distinct times.

    Its covariance is :func:`walk_covariance`; :meth:`sample` draws it in
    O(n_times) per draw by cumulative sums of independent steps outward from
    ``origin``, instead of multiplying by a square root of the covariance.
    """

    times: np.ndarray
    origin: float
    step: float
    level_var: float

    @property
    def n_normals(self) -> int:
        """Number of standard normals one draw consumes: the level and one per time."""
        return 1 + self.times.size

    def covariance(self) -> np.ndarray:
        """Return the prior covariance, shape (n_times, n_times)."""
        return walk_covariance(self.times, self.origin, self.step, self.level_var)

    def sample(self, normals: np.ndarray) -> np.ndarray:
        """Return zero-mean prior draws, shape (n_draws, n_times), from normals (n_draws, n_normals)."""
        offsets = np.asarray(self.times, dtype=float) - self.origin
        first_right = int(np.searchsorted(offsets, 0.0))

        # Right of the origin the walk adds steps going forward in time, and
        # left of it going backward. Each step's sd grows with the square root
        # of the time it spans. The times are sorted, so both sides are slices.
        spans = np.empty(offsets.size)
        spans[first_right:] = np.diff(offsets[first_right:], prepend=0.0)
        spans[:first_right] = np.diff(offsets[:first_right], append=0.0)
        steps = normals[:, 1:] * (self.step * np.sqrt(spans))
        walk = np.empty_like(steps)
        walk[:, first_right:] = np.cumsum(steps[:, first_right:], axis=1)
        walk[:, :first_right] = np.cumsum(steps[:, first_right - 1 :: -1], axis=1)[:, ::-1] if first_right else 0.0
        return walk + np.sqrt(self.level_var) * normals[:, :1]


@dataclass(frozen=True)
class ConditionedWalk:
    """The posterior of a log-share walk given anchor observations.

    Draws follow Matheron's rule: a prior draw plus the kriging correction of
    its misfit to the anchors, ``x + (y - x[anchors] - e) @ weights.T`` with
    ``x`` a prior draw and ``e`` a draw of the anchors' reporting errors. The
    prior draw ``x = prior_mean + z @ L.T`` is linear in its normals ``z``, so
    the whole rule is one product of ``[z, y - e]`` with a fixed matrix,
    ``coefficients``, plus the fixed ``offset``. That is exact and costs one
    matrix product per block of draws.

    Attributes
    ----------
    prior : WalkPrior
        The walk before conditioning.
    prior_mean : float
        Prior mean of the log share in every year.
    anchor_index : ndarray of int, shape (n_anchors,)
        Time index of each anchor.
    noise_sd : ndarray, shape (n_anchors,)
        Reporting error of each anchor, log units.
    weights : ndarray, shape (n_times, n_anchors)
        Kriging weights of the anchors for every time.
    sd : ndarray, shape (n_times,)
        Posterior standard deviation of the log share.
    pinned : ndarray of bool, shape (n_times,)
        Times whose posterior variance is zero but for rounding (noise-free
        anchors); draws there are set to the posterior mean exactly.
    coefficients : ndarray, shape (n_normals, n_times)
        Rows ``(I - weights @ S) @ L`` for the prior normals, with ``S`` the
        anchor selection, then ``weights.T`` for the anchor values less their
        errors.
    offset : ndarray, shape (n_times,)
        ``prior_mean * (1 - weights.sum(axis=1))``.
    """

    prior: WalkPrior
    prior_mean: float
    anchor_index: np.ndarray
    noise_sd: np.ndarray
    weights: np.ndarray
    sd: np.ndarray
    pinned: np.ndarray
    coefficients: np.ndarray
    offset: np.ndarray

    @property
    def n_normals(self) -> int:
        """Number of standard normals one draw consumes."""
        return self.prior.n_normals + self.anchor_index.size

    def sample(self, anchor_values: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Return log-share draws, shape (n_draws, n_times).

        ``anchor_values`` has shape (n_draws, n_anchors) and ``normals``
        shape (n_draws, n_normals). The anchor columns of ``normals`` are
        overwritten.
        """
        split = self.prior.n_normals
        if self.anchor_index.size:
            # The anchor columns become y - e, the observed values less their errors.
            anchor_columns = normals[:, split:]
            anchor_columns *= -self.noise_sd
            anchor_columns += anchor_values
        draws = normals @ self.coefficients
        draws += self.offset
        if self.pinned.any():
            mean = self.prior_mean + (anchor_values - self.prior_mean) @ self.weights[self.pinned].T
            draws[:, self.pinned] = mean
        return draws


def condition_walk(
    prior: WalkPrior,
    anchor_index: np.ndarray,
    noise_var: np.ndarray,
    prior_mean: float,
) -> ConditionedWalk:
    """Condition a log-share random walk on noisy anchors.

    Parameters
    ----------
    prior : WalkPrior
        The walk before conditioning.
    anchor_index : ndarray of int, shape (n_anchors,)
        Time index of each anchor; an index may repeat (two sources, one year).
    noise_var : ndarray, shape (n_anchors,)
        Variance of each anchor's reporting error in log units; 0 pins the walk.
    prior_mean : float
        Prior mean of the log share in every year.

    Returns
    -------
    ConditionedWalk
    """
    covariance = prior.covariance()
    anchor_index = np.asarray(anchor_index, dtype=int)
    noise_var = np.asarray(noise_var, dtype=float)

    # Row i of ``prior_operator`` is the prior draw made from the i-th unit
    # normal (no mean), because ``WalkPrior.sample`` is linear in its normals.
    prior_operator = prior.sample(np.eye(prior.n_normals))
    if anchor_index.size == 0:
        empty = np.zeros((covariance.shape[0], 0))
        sd = np.sqrt(np.diag(covariance))
        offset = np.full(sd.size, float(prior_mean))
        return ConditionedWalk(
            prior, prior_mean, anchor_index, noise_var, empty, sd, np.zeros(sd.size, bool), prior_operator, offset
        )

    cross = covariance[:, anchor_index]
    anchor_cov = covariance[np.ix_(anchor_index, anchor_index)] + np.diag(noise_var)
    anchor_cov += JITTER * max(np.trace(anchor_cov) / anchor_index.size, 1.0) * np.eye(
        anchor_index.size
    )

    # weights = cross @ inv(anchor_cov), computed by a solve on the symmetric system.
    weights = scipy.linalg.solve(anchor_cov, cross.T, assume_a="pos").T
    variance = np.diag(covariance) - np.sum(weights * cross, axis=1)
    sd = np.sqrt(np.clip(variance, 0.0, None))

    # A noise-free anchor leaves a variance that is zero but for rounding of
    # terms of the prior's size.
    pinned = variance <= 1e-10 * np.diag(covariance)
    coefficients = np.vstack([prior_operator - prior_operator[:, anchor_index] @ weights.T, weights.T])
    offset = prior_mean * (1.0 - weights.sum(axis=1))
    return ConditionedWalk(
        prior, prior_mean, anchor_index, np.sqrt(noise_var), weights, sd, pinned, coefficients, offset
    )
