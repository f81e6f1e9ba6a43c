"""Units of length and time, and named kernels whose extents have one."""

from __future__ import annotations

import numpy as np
import pytest

from fftconv._io import InputError
from fftconv._io.kernel_spec import NamedKernel, load_kernel, parse_kernel
from fftconv._io.units import SI, convert, unit_name

# The units NGFF 0.4 and 0.5 allow for an axis (UDUNITS-2's names).
NGFF_LENGTHS = """angstrom attometer centimeter decimeter exameter femtometer foot gigameter
    hectometer inch kilometer megameter meter micrometer mile millimeter nanometer parsec
    petameter picometer terameter yard yoctometer yottameter zeptometer zettameter""".split()
NGFF_TIMES = """attosecond centisecond day decisecond exasecond femtosecond gigasecond
    hectosecond hour kilosecond megasecond microsecond millisecond minute nanosecond
    petasecond picosecond second terasecond yoctosecond yottasecond zeptosecond
    zettasecond""".split()


def test_every_ngff_unit_is_known():
    assert sorted(SI) == sorted(NGFF_LENGTHS + NGFF_TIMES)
    assert {SI[n][0] for n in NGFF_LENGTHS} == {"length"}
    assert {SI[n][0] for n in NGFF_TIMES} == {"time"}


@pytest.mark.parametrize("text, name", [
    ("um", "micrometer"), ("µm", "micrometer"), ("μm", "micrometer"), ("\\u00B5m", "micrometer"),
    ("micron", "micrometer"), ("UM", "micrometer"), ("micrometer", "micrometer"),
    ("Nanometer", "nanometer"), ("nm", "nanometer"), ("Å", "angstrom"), ("ms", "millisecond"),
    ("s", "second"), ("min", "minute"), ("parsec", "parsec"), ("furlong", None), ("", None),
    (None, None)])
def test_unit_names(text, name):
    assert unit_name(text) == name


@pytest.mark.parametrize("value, unit, to, expected", [
    (0.5, "micrometer", "nanometer", 500.0), (1.5, "micrometer", "nanometer", 1500.0),
    (300.0, "nanometer", "micrometer", 0.3), (2.0, "minute", "second", 120.0),
    (1.0, "inch", "millimeter", 25.4), (3.0, "angstrom", "picometer", 300.0),
    (1.0, "second", "micrometer", None), (1.0, "furlong", "meter", None)])
def test_convert(value, unit, to, expected):
    """Powers of ten convert exactly: 0.5 µm is 500 nm, not 499.99999999999994."""
    assert convert(value, unit, to) == expected


ZYX = [("z", 0.5, "micrometer"), ("y", 0.1, "micrometer"), ("x", 100.0, "nanometer")]


@pytest.mark.parametrize("spec, sizes, pixels", [
    ("gaussian:sigma=0.5um", ZYX, (1.0, 5.0, 5.0)),
    ("gaussian:sigma=1,0.2um,200nm", ZYX, (1.0, 2.0, 2.0)),  # pixels and units mixed
    ("disk:radius=1µm", ZYX, (2.0, 10.0, 10.0)),
    ("box:size=0.25um", ZYX, (1.0, 3.0, 3.0)),  # half pixels round up
    ("box:size=0.1um", ZYX[:1], (1.0,)),  # a fifth of a pixel: at least one
    ("box:size=3,0.3um,0.3um", ZYX, (3.0, 3.0, 3.0)),
    ("gaussian:sigma=2s", [("t", 0.5, "second")], (4.0,)),
    ("gaussian:sigma=2", None, (2.0, 2.0)),
])
def test_extents_in_units_become_pixels(spec, sizes, pixels):
    found = parse_kernel(spec, None if sizes is None else len(sizes))
    assert isinstance(found, NamedKernel)
    assert found.pixels(sizes) == pytest.approx(pixels, rel=1e-12)
    assert found.physical == (sizes is not None)


def test_a_kernel_in_units_is_the_kernel_in_those_pixels():
    got = load_kernel("gaussian:sigma=0.5um", 3, sizes=ZYX)
    np.testing.assert_array_equal(got, load_kernel("gaussian:sigma=1,5,5"))
    got = load_kernel("disk:radius=0.3um", 2, sizes=[("y", 0.1, "micrometer")] * 2)
    np.testing.assert_array_equal(got, load_kernel("disk:radius=3"))  # 2.9999999999999996 px


@pytest.mark.parametrize("spec, sizes, message", [
    ("gaussian:sigma=0.5um", None, "states no pixel size"),
    ("gaussian:sigma=0.5um", [("y", 0.1, None)] * 2, "axis y states its pixel size without"),
    ("gaussian:sigma=2s", ZYX[1:], "for the input's axis y, whose pixels are in micrometer"),
    ("gaussian:sigma=2furlong", ZYX[1:], "'furlong' is not a unit"),
    ("gaussian:sigma=um", ZYX[1:], "is not a number"),
    ("gaussian:sigma=-1um", ZYX[1:], "positive"),
    ("box:size=2.5", None, "integer sizes in pixels"),
    ("disk:radius=1um,1um,1um", ZYX[1:], "3 values of radius for 2 axes"),
])
def test_bad_extents(spec, sizes, message):
    with pytest.raises(InputError, match=message):
        load_kernel(spec, 2, sizes=sizes)
