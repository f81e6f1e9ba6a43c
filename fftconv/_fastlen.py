"""Fast transform lengths: the smallest ``m >= n`` whose prime factors are all in a set."""

from __future__ import annotations

import functools
import math


@functools.lru_cache(maxsize=4096)
def next_smooth(n: int, primes: tuple[int, ...] = (2, 3, 5)) -> int:
    """Smallest integer ``>= n`` whose prime factors are all in ``primes``.

    Examples
    --------
    >>> next_smooth(97), next_smooth(97, (2, 3, 5, 7))
    (100, 98)
    """
    if n <= 1:
        return 1
    best = 1 << math.ceil(math.log2(n))
    products = [1]
    for p in primes:
        grown = []
        for base in products:
            value = base
            while value < best:
                grown.append(value)
                value *= p
        products = grown
    for value in products:
        if value >= n:
            best = min(best, value)
        else:
            # value < n: scale by the largest power of 2 that stays useful
            scaled = value << max(0, math.ceil(math.log2(n / value)))
            best = min(best, scaled)
    return best
