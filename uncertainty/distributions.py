"""Uncertain inputs as scipy.stats distributions declared in model files.

A declaration is a TOML table such as::

    grade = { family = "beta", a = 30, b = 70, source = "..." }
    share_prior = { family = "lognorm", s = 1.0, scale = 0.05, rationale = "..." }

``family`` names a continuous distribution of :mod:`scipy.stats`; the other
numeric keys are its shape parameters and ``loc``/``scale``. ``truncate =
[lower, upper]`` restricts the support. Draws are taken by the inverse CDF of
uniform numbers, so that the same uniforms can come from a copula or a
quasi-Monte Carlo design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

#: Keys of a distribution table that are not parameters of the family.
DESCRIPTIVE_KEYS = ("family", "source", "rationale", "truncate")


@dataclass(frozen=True)
class Distribution:
    """A declared scipy.stats distribution with its citation.

    Attributes
    ----------
    family : str
        Name of a continuous distribution in :mod:`scipy.stats`.
    parameters : dict of str to float
        Shape parameters and ``loc``/``scale`` passed to the family.
    reason : str
        The ``source`` or ``rationale`` text from the model file.
    truncate : tuple of float or None
        Lower and upper bound of the support after truncation.
    """

    family: str
    parameters: dict[str, float]
    reason: str
    truncate: tuple[float, float] | None = None
    frozen: scipy.stats.rv_continuous = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        generator = getattr(scipy.stats, self.family)
        object.__setattr__(self, "frozen", generator(**self.parameters))

    def has_valid_parameters(self) -> bool:
        """Tell whether the shapes are in the family's domain and the scale is positive."""
        generator = getattr(scipy.stats, self.family)
        names = family_parameter_names(self.family)[:-2]
        shapes = [self.parameters[name] for name in names]
        return bool(generator._argcheck(*shapes)) and self.parameters.get("scale", 1.0) > 0

    def support(self) -> tuple[float, float]:
        """Return the lower and upper bound of the (truncated) support."""
        lower, upper = self.frozen.support()
        if self.truncate is not None:
            lower = max(lower, self.truncate[0])
            upper = min(upper, self.truncate[1])
        return float(lower), float(upper)

    def ppf(self, uniforms: np.ndarray) -> np.ndarray:
        """Map uniform numbers in (0, 1) to draws of the (truncated) distribution."""
        uniforms = np.asarray(uniforms, dtype=float)
        if self.truncate is None:
            return self.frozen.ppf(uniforms)

        # Inverse CDF restricted to [F(lower), F(upper)] gives the truncated law.
        low_cdf = self.frozen.cdf(self.truncate[0])
        high_cdf = self.frozen.cdf(self.truncate[1])
        return self.frozen.ppf(low_cdf + uniforms * (high_cdf - low_cdf))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values with the generator ``rng``."""
        return self.ppf(rng.random(size))

    def median(self) -> float:
        """Return the median of the (truncated) distribution."""
        return float(self.ppf(np.array([0.5]))[0])


def is_continuous_family(name: str) -> bool:
    """Tell whether ``name`` is a continuous distribution of scipy.stats."""
    candidate = getattr(scipy.stats, name, None)
    return isinstance(candidate, scipy.stats.rv_continuous)


def family_parameter_names(name: str) -> list[str]:
    """Return the parameter names that the scipy.stats family ``name`` accepts."""
    generator = getattr(scipy.stats, name)
    shapes = generator.shapes.split(", ") if generator.shapes else []
    return [*shapes, "loc", "scale"]


def lognormal_log_moments(distribution: Distribution) -> tuple[float, float]:
    """Return the mean and standard deviation of ``log X`` for a lognorm declaration.

    Raises
    ------
    ValueError
        If the family is not ``lognorm`` or ``loc`` is not zero, since only
        then is ``log X`` normal.
    """
    if distribution.family != "lognorm" or distribution.parameters.get("loc", 0.0):
        raise ValueError(
            "expected family 'lognorm' with loc = 0 for a log-normal quantity, "
            f"got family {distribution.family!r} with parameters {distribution.parameters!r}"
        )
    scale = distribution.parameters.get("scale", 1.0)
    return math.log(scale), float(distribution.parameters["s"])
