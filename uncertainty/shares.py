"""Log shares as Gaussian random walks conditioned on noisy anchors (numpy kernel).

A Japanese flow that is not observed every year is modelled as ``share x
proxy``. The log share follows a Gaussian random walk with a yearly step sd
``step``; its level has a normal prior. Conditioning the walk on the anchor
years (where the flow is observed, with a reporting error) gives a Brownian
bridge between two anchors and an unpinned walk beyond the outermost anchor,
so the spread grows with the distance from the nearest anchor.

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
class ConditionedWalk:
    """The posterior of a log-share walk given anchor observations.

    The posterior draw for anchor values ``y`` (shape ``(n_draws, n_anchors)``)
    and standard normals ``z`` (shape ``(n_draws, n_years)``) is
    ``prior_mean + (y - prior_mean) @ weights.T + z @ factor.T``.

    Attributes
    ----------
    weights : ndarray, shape (n_years, n_anchors)
        Kriging weights of the anchors for every year.
    factor : ndarray, shape (n_years, n_years)
        A square root of the posterior covariance (``factor @ factor.T``).
    prior_mean : float
        Prior mean of the log share.
    """

    weights: np.ndarray
    factor: np.ndarray
    prior_mean: float

    @property
    def sd(self) -> np.ndarray:
        """Posterior standard deviation of the log share, shape (n_years,)."""
        return np.sqrt(np.sum(self.factor**2, axis=1))

    def sample(self, anchor_values: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Return log-share draws, shape (n_draws, n_years)."""
        centred = anchor_values - self.prior_mean
        return self.prior_mean + centred @ self.weights.T + normals @ self.factor.T


def condition_walk(
    covariance: np.ndarray,
    anchor_index: np.ndarray,
    noise_var: np.ndarray,
    prior_mean: float,
) -> ConditionedWalk:
    """Condition a Gaussian log-share process on noisy anchors.

    Parameters
    ----------
    covariance : ndarray, shape (n_years, n_years)
        Prior covariance, for example from :func:`walk_covariance`.
    anchor_index : ndarray of int, shape (n_anchors,)
        Year index of each anchor; an index may repeat (two sources, one year).
    noise_var : ndarray, shape (n_anchors,)
        Variance of each anchor's reporting error in log units; 0 pins the walk.
    prior_mean : float
        Prior mean of the log share in every year.

    Returns
    -------
    ConditionedWalk
    """
    n_years = covariance.shape[0]
    anchor_index = np.asarray(anchor_index, dtype=int)
    if anchor_index.size == 0:
        return ConditionedWalk(np.zeros((n_years, 0)), _square_root(covariance), prior_mean)

    cross = covariance[:, anchor_index]
    anchor_cov = covariance[np.ix_(anchor_index, anchor_index)] + np.diag(noise_var)
    anchor_cov += JITTER * max(np.trace(anchor_cov) / anchor_index.size, 1.0) * np.eye(
        anchor_index.size
    )

    # weights = cross @ inv(anchor_cov), computed by a solve on the symmetric system.
    weights = scipy.linalg.solve(anchor_cov, cross.T, assume_a="pos").T
    posterior = covariance - weights @ cross.T
    posterior = 0.5 * (posterior + posterior.T)
    factor = _square_root(posterior)

    # A noise-free anchor leaves a posterior variance that is zero but for
    # rounding of terms of the prior's size; zero those rows so the walk
    # passes exactly through the anchor.
    rounding = 1e-10 * np.diag(covariance)
    factor[np.diag(posterior) <= rounding] = 0.0
    return ConditionedWalk(weights, factor, prior_mean)


def _square_root(covariance: np.ndarray) -> np.ndarray:
    """Return ``F`` with ``F @ F.T == covariance`` for a positive semi-definite matrix.

    An eigendecomposition is used instead of a Cholesky factor because the
    posterior is singular where anchors are noise-free; eigenvalues below zero
    by rounding are set to zero.
    """
    eigenvalues, eigenvectors = scipy.linalg.eigh(covariance, driver="evd")
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
