"""Monte Carlo urban-mine stock estimates by increment accounting."""

__version__ = "0.1.0"
