"""The range a constructor argument must lie in, declared once in its signature:

    mask_prob: Annotated[float, OPEN_UNIT] = 0.2

`research.config.check` reads these at compose time, so a value out of range fails in one line
(key, value, range) before any data is built, and the tests find every bounded argument the
same way."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated


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
RATE = Between(0, 1, high_open=True)  # dropout, label smoothing: 1 would erase the signal
SEED = Between(0, 2**32 - 1)  # what numpy and Lightning's seed_everything accept

# the common cases, by what they are
Count = Annotated[int, AT_LEAST_ONE]  # sizes, layers, heads, negatives
Rate = Annotated[float, RATE]
Seed = Annotated[int, SEED]
Fraction = Annotated[float, OPEN_UNIT]  # a share strictly between none and all


def forwards_keywords(to: Callable) -> Callable:
    """Declares that a constructor passes its **kwargs on to `to` (a base class's __init__, the
    simulator): its signature and annotations gain `to`'s keyword parameters, so the config
    check sees their types and ranges, and refuses a key that neither accepts."""
    def declare(init: Callable) -> Callable:
        own = inspect.signature(init)
        forwarded = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                     for name, p in inspect.signature(to).parameters.items()
                     if name not in own.parameters and name != "self"
                     and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        kept = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        init.__signature__ = own.replace(parameters=kept + forwarded)
        hints = typing.get_type_hints(to, include_extras=True)  # resolved where `to` is defined
        init.__annotations__ = {**{p.name: hints[p.name] for p in forwarded if p.name in hints}, **init.__annotations__}
        return init
    return declare
