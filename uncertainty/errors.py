"""Exceptions for invalid input, each naming the file, location, expectation and finding."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One defect in an input file.

    Attributes
    ----------
    file : str
        Path of the file as given by the user.
    location : str
        Row (``"row 12"``), key (``"flow[2].sign"``) or column that is wrong.
    expected : str
        What the file must contain there.
    found : str
        What the file contains there, shown with ``repr`` where it helps.
    """

    file: str
    location: str
    expected: str
    found: str

    def __str__(self) -> str:
        if not self.expected:
            return f"{self.file}: {self.location}: {self.found}"
        return f"{self.file}: {self.location}: expected {self.expected}, found {self.found}"


class InputError(ValueError):
    """Invalid model or data input; carries every problem found in one pass."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        lines = [str(problem) for problem in self.problems]
        super().__init__("\n".join(lines))

    @classmethod
    def single(cls, file: str, location: str, message: str) -> "InputError":
        """Build an error with one problem whose whole text is ``message``."""
        return cls([Problem(file, location, "", message)])
