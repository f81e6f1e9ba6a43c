"""Fast transform lengths: smooth numbers, and the cheapest length under a cost model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fftconv._registry.fastlen import LengthCosts, cheapest_length, next_smooth, smooth_between

PRIMES = (2, 3, 5, 7)


def _smooth(m: int, primes=PRIMES) -> bool:
    for p in primes:
        while m % p == 0:
            m //= p
    return m == 1


@given(st.integers(1, 5000), st.integers(0, 5000))
def test_smooth_between_lists_every_smooth_number(lo, width):
    hi = lo + width
    assert smooth_between(lo, hi, PRIMES) == [m for m in range(lo, hi + 1) if _smooth(m)]


weights = st.floats(0.05, 2.0)


@st.composite
def cost_models(draw):
    two = draw(weights)
    rest = [two + draw(st.floats(0.0, 2.0)) for _ in PRIMES[1:]]
    return LengthCosts(tuple(zip(PRIMES, (two, *rest))), base=draw(st.floats(0.0, 2.0)),
                       odd=draw(st.floats(0.0, 5.0)), exponent=draw(st.floats(0.0, 3.0)))


@settings(max_examples=200, deadline=None)
@given(cost_models(), st.integers(2, 3000))
def test_cheapest_length_is_the_cheapest_of_all(costs, n):
    """The search stops at the next power of two; nothing past it (up to 4n here) is
    cheaper, and the result is the model's own fixed point.  A length of 1 stays 1
    whatever the model says (there is nothing to transform)."""
    assert cheapest_length(1, costs) == 1
    m = cheapest_length(n, costs)
    brute = min((k for k in range(n, 4 * n + 1) if _smooth(k)), key=lambda k: (costs.cost(k), k))
    assert m == brute and m >= n and _smooth(m)
    assert cheapest_length(m, costs) == m


@settings(max_examples=30, deadline=None)
@given(cost_models())
def test_cheapest_length_is_monotone(costs):
    lengths = [cheapest_length(n, costs) for n in range(1, 1500)]
    assert lengths == sorted(lengths)


def test_uniform_costs_are_the_smallest_smooth_length():
    """With every factor at the same cost per log2 the model is n·log2(n): the smallest
    smooth length wins, the old rule."""
    flat = LengthCosts(tuple((p, 1.0) for p in PRIMES))
    assert all(cheapest_length(n, flat) == next_smooth(n, PRIMES) for n in range(1, 3000))
    assert math.isclose(flat.cost(1024), 1024 * 10)


@pytest.mark.parametrize("bad", [
    dict(per_log2=((3, 1.0), (5, 1.0))),  # no factor 2
    dict(per_log2=((2, 1.0), (3, 0.5))),  # a factor cheaper than 2: the search would stop short
    dict(per_log2=((2, 1.0),), base=-1.0),
    dict(per_log2=((2, 1.0),), odd=-1.0),
    dict(per_log2=((2, 1.0),), exponent=-0.5),
    dict(per_log2=((2, -0.5), (3, -0.5))),  # longer lengths would get cheaper without end
])
def test_cost_models_the_search_cannot_serve_are_refused(bad):
    with pytest.raises(ValueError, match="no factor cheaper than 2, non-negative weights"):
        LengthCosts(**bad)


def test_length_regret_counts_choices_past_the_measured_lengths():
    """A choice past the measured lengths (4802 for n > 4600) is counted, not a KeyError."""
    from benchmarks.fft_lengths import OCTAVES, regret

    measured = {m: 1.0 for lo, hi in OCTAVES for m in smooth_between(lo, hi, (2, 3, 5, 7))}
    past = regret(measured, lambda n: 4802 if n > 4600 else next_smooth(n, (2, 3, 5, 7)))
    assert past.unscored == 8 and past.mean == 1.0
    assert regret(measured, lambda n: next_smooth(n, (2, 3, 5, 7))).unscored == 0
