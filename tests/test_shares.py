"""Log-share random walks conditioned on anchors: analytic Brownian-bridge truths."""

import numpy as np
import pytest

from uncertainty.shares import WalkPrior, condition_walk, walk_covariance

YEARS = np.arange(1950.0, 2011.0)
STEP = 0.1


def test_prior_variance_grows_linearly_from_origin():
    covariance = walk_covariance(YEARS, origin=2000.0, step=STEP, level_var=0.25)
    expected = 0.25 + STEP**2 * np.abs(YEARS - 2000.0)
    np.testing.assert_allclose(np.diag(covariance), expected, rtol=1e-12, atol=0)


def test_walk_increments_have_stationary_variance():
    covariance = walk_covariance(YEARS, origin=1980.0, step=STEP, level_var=4.0)
    i, j = 5, 50  # 1955 and 2000, on both sides of the origin
    increment_var = covariance[i, i] + covariance[j, j] - 2 * covariance[i, j]
    assert increment_var == pytest.approx(STEP**2 * 45, rel=1e-12)


def test_noise_free_anchors_pin_the_walk(rng):
    # The posterior variance at an anchor is zero up to rounding of a difference of
    # terms of size level_var, so draws there match to about 1e-6 in log units.
    prior = WalkPrior(YEARS, 2010.0, STEP, level_var=4.0)
    anchors = np.array([10, 40])  # 1960 and 1990
    walk = condition_walk(prior, anchors, np.zeros(2), prior_mean=-3.0)
    values = np.tile([-2.0, -1.0], (500, 1))
    draws = walk.sample(values, rng.standard_normal((500, walk.n_normals)))
    np.testing.assert_allclose(draws[:, 10], -2.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(draws[:, 40], -1.0, rtol=0, atol=1e-6)


def test_bridge_variance_matches_brownian_bridge():
    # Between anchors d1 and d2 years away the bridge variance is step^2 d1 d2 / (d1 + d2).
    prior = WalkPrior(YEARS, 2010.0, STEP, level_var=1e6)
    walk = condition_walk(prior, np.array([10, 40]), np.zeros(2), prior_mean=0.0)
    for offset in (1, 7, 15, 29):
        d1, d2 = offset, 30 - offset
        expected = STEP**2 * d1 * d2 / (d1 + d2)
        assert walk.sd[10 + offset] ** 2 == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_spread_grows_beyond_last_anchor():
    prior = WalkPrior(YEARS, 1950.0, STEP, level_var=1e6)
    walk = condition_walk(prior, np.array([10, 40]), np.zeros(2), prior_mean=0.0)
    beyond = walk.sd[41:] ** 2
    expected = STEP**2 * np.arange(1, beyond.size + 1)
    np.testing.assert_allclose(beyond, expected, rtol=1e-4, atol=1e-9)
    before = walk.sd[:10][::-1] ** 2
    np.testing.assert_allclose(before, STEP**2 * np.arange(1, 11), rtol=1e-4, atol=1e-9)


def test_noisy_anchor_shrinks_toward_prior():
    # One anchor with noise variance r and level variance v gives weight v / (v + r).
    prior = WalkPrior(YEARS, 1980.0, 0.0, level_var=1.0)
    walk = condition_walk(prior, np.array([30]), np.array([1.0]), prior_mean=0.0)
    np.testing.assert_allclose(walk.weights[:, 0], 0.5, rtol=1e-9)
    np.testing.assert_allclose(walk.sd**2, 0.5, rtol=1e-9)


def test_unanchored_walk_returns_prior(rng):
    prior = WalkPrior(YEARS, 2000.0, STEP, level_var=0.5)
    covariance = prior.covariance()
    walk = condition_walk(prior, np.array([], dtype=int), np.array([]), prior_mean=-1.0)
    draws = walk.sample(np.zeros((20000, 0)), rng.standard_normal((20000, walk.n_normals)))
    # Sample sd of 20000 normal draws has a relative standard error of about 0.5 %.
    np.testing.assert_allclose(draws.std(axis=0), np.sqrt(np.diag(covariance)), rtol=0.03)
    np.testing.assert_allclose(draws.mean(axis=0), -1.0, atol=0.05)


def test_prior_draws_match_walk_covariance(rng):
    # The cumulative-sum sampler must reproduce walk_covariance, origin inside the grid.
    prior = WalkPrior(np.arange(1990.0, 2011.0), 2004.0, 0.3, level_var=0.2)
    draws = prior.sample(rng.standard_normal((40000, prior.n_normals)))
    # The sd of a sample covariance entry of 40000 draws is below 1 % of the entry scale here.
    np.testing.assert_allclose(np.cov(draws, rowvar=False), prior.covariance(), rtol=0, atol=0.03)


def test_posterior_draws_match_posterior_sd(rng):
    prior = WalkPrior(YEARS, 2005.0, STEP, level_var=2.0)
    walk = condition_walk(prior, np.array([5, 30, 31]), np.array([0.01, 0.0, 0.04]), prior_mean=-2.0)
    draws = walk.sample(np.tile([-2.5, -1.0, -1.2], (40000, 1)), rng.standard_normal((40000, walk.n_normals)))
    np.testing.assert_allclose(draws.std(axis=0), walk.sd, rtol=0.03, atol=1e-6)
