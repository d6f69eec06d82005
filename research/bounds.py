"""The range a constructor argument must lie in, declared once in its signature:

    mask_prob: Annotated[float, OPEN_UNIT] = 0.2

`research.config.check` reads these at compose time, so a value out of range fails in one line
(key, value, range) before any data is built, and the tests find every bounded argument the
same way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Between:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bound itself is refused
    high_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Between(low=0, low_open=True)
NON_NEGATIVE = Between(low=0)
AT_LEAST_ONE = Between(low=1)
UNIT = Between(0, 1)  # a probability or a share, both ends allowed
OPEN_UNIT = Between(0, 1, low_open=True, high_open=True)
