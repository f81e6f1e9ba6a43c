"""Fast transform lengths: the smallest ``m >= n`` whose prime factors are all in a set,
or the cheapest such ``m`` under a library's cost model (:class:`LengthCosts`)."""

from __future__ import annotations

import dataclasses
import math

from fftconv._infra.cache import memoized


@memoized("smooth lengths", entries=4096)
def next_smooth(n: int, primes: tuple[int, ...] = (2, 3, 5)) -> int:
    """Smallest integer ``>= n`` whose prime factors are all in ``primes`` (which hold 2).

    Examples
    --------
    >>> next_smooth(97), next_smooth(97, (2, 3, 5, 7))
    (100, 98)
    """
    if n <= 1:
        return 1
    return smooth_between(n, 1 << (n - 1).bit_length(), primes)[0]  # a power of 2 is one


def smooth_between(lo: int, hi: int, primes: tuple[int, ...]) -> list[int]:
    """Every integer in ``[lo, hi]`` whose prime factors are all in ``primes``, ascending.

    Examples
    --------
    >>> smooth_between(120, 130, (2, 3, 5, 7))
    [120, 125, 126, 128]
    """
    found = [1]
    for p in primes:
        grown = []
        for base in found:
            while base <= hi:
                grown.append(base)
                base *= p
        found = grown
    return sorted(m for m in found if m >= lo)


@dataclasses.dataclass(frozen=True)
class LengthCosts:
    """A transform's cost per element by its length's factors: a library's cost model.

    Per element: ``base``, plus ``per_log2[p]`` for each factor ``p`` per
    ``log2(p)`` (so a power of two costs ``per_log2[2]`` per level), plus
    ``odd`` when the length is odd (no radix-2 pass to halve a real transform
    with).  A length ``m`` costs that times ``m ** exponent``: 1 for one axis,
    2 for a transform over two axes of length ``m`` (a longer axis makes the
    passes over the other axes longer too), more where per-element costs also
    grow with size (caches).  The cheapest length is searched up to the next
    power of two, which is exact only if no factor is cheaper than 2: checked.
    """

    per_log2: tuple[tuple[int, float], ...]
    base: float = 0.0
    odd: float = 0.0
    exponent: float = 1.0

    def __post_init__(self) -> None:
        weights = dict(self.per_log2)
        if 2 not in weights or min(weights.values()) < max(weights[2], 0.0) \
                or self.base < 0 or self.odd < 0 or self.exponent < 0:
            raise ValueError("LengthCosts needs factor 2, no factor cheaper than 2, "
                             f"non-negative weights, base, odd and exponent; got {self}")

    def cost(self, m: int) -> float:
        """The model's time of one transform of length ``m`` (arbitrary units)."""
        per_element, rest = self.base + (self.odd if m % 2 else 0.0), m
        for p, weight in self.per_log2:
            while rest % p == 0:
                per_element += weight * math.log2(p)
                rest //= p
        return m**self.exponent * per_element


@memoized("cheapest lengths", entries=4096)
def cheapest_length(n: int, costs: LengthCosts) -> int:
    """The length ``m >= n`` that ``costs`` makes cheapest (the smallest on a tie).

    No length past the power of two ``P >= n`` can win: it is longer than
    ``P`` and costs more per element, since no factor is cheaper than 2.  So
    the result is the minimum over all ``m >= n``, which makes it monotone in
    ``n`` and its own fixed point.  A length of 1 stays 1: there is nothing to
    transform, whatever the model would say.

    Examples
    --------
    >>> costs = LengthCosts(((2, 1.0), (3, 1.6), (5, 1.5), (7, 1.7)), base=1.0, odd=7.0)
    >>> next_smooth(2248, (2, 3, 5, 7)), cheapest_length(2248, costs)
    (2250, 2304)
    """
    if n <= 1:
        return 1
    primes = tuple(p for p, _ in costs.per_log2)
    candidates = smooth_between(n, 1 << (n - 1).bit_length(), primes)
    return min(candidates, key=lambda m: (costs.cost(m), m))
