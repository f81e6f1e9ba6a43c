"""Units of length and time: the symbols people and files write, NGFF's names, conversions.

OME-Zarr (NGFF) names an axis's unit in UDUNITS-2's words (``micrometer``,
``second``); OME-TIFF and ImageJ write symbols (``µm``, ``s``), and so do
people typing a kernel's size (``gaussian:sigma=0.5um``).  :func:`unit_name`
takes either to NGFF's name, :func:`convert` moves a value between two names
of the same kind.

Examples
--------
>>> unit_name("um"), unit_name("μm"), unit_name("micrometer"), unit_name("ms")
('micrometer', 'micrometer', 'micrometer', 'millisecond')
>>> convert(1.5, "micrometer", "nanometer")
1500.0
>>> convert(1.0, "second", "micrometer") is None  # a time is no length
True
"""

from __future__ import annotations

# OME's unit symbols (and ImageJ's spellings) to NGFF's names, the UDUNITS-2 ones.
LENGTHS = {"Å": "angstrom", "pm": "picometer", "nm": "nanometer", "µm": "micrometer",
           "um": "micrometer", "micron": "micrometer", "microns": "micrometer",
           "mm": "millimeter", "cm": "centimeter", "m": "meter", "km": "kilometer",
           "in": "inch", "inch": "inch", "ft": "foot", "yd": "yard", "mi": "mile"}
TIMES = {"fs": "femtosecond", "ps": "picosecond", "ns": "nanosecond", "µs": "microsecond",
         "us": "microsecond", "ms": "millisecond", "s": "second", "sec": "second",
         "min": "minute", "h": "hour", "d": "day"}
SYMBOLS = {name: symbol for table in (LENGTHS, TIMES) for symbol, name in
           reversed(table.items())}  # the first spelling of each name, OME's own

_PREFIXES = {"yocto": -24, "zepto": -21, "atto": -18, "femto": -15, "pico": -12, "nano": -9,
             "micro": -6, "milli": -3, "centi": -2, "deci": -1, "": 0, "hecto": 2, "kilo": 3,
             "mega": 6, "giga": 9, "tera": 12, "peta": 15, "exa": 18, "zetta": 21, "yotta": 24}
# Every unit NGFF allows, as (kind, m, e): its size is m·10^e meters or seconds.  The
# powers of ten stay exact, so that 0.5 µm is 500 nm and not 499.99999999999994.
SI = {
    **{prefix + "meter": ("length", 1.0, e) for prefix, e in _PREFIXES.items()},
    "angstrom": ("length", 1.0, -10), "inch": ("length", 0.0254, 0),
    "foot": ("length", 0.3048, 0), "yard": ("length", 0.9144, 0),
    "mile": ("length", 1609.344, 0), "parsec": ("length", 3.0856775814913673, 16),
    **{prefix + "second": ("time", 1.0, e) for prefix, e in _PREFIXES.items()},
    "minute": ("time", 60.0, 0), "hour": ("time", 3600.0, 0), "day": ("time", 86400.0, 0),
}


def unit_name(value: object, table: dict | None = None) -> str | None:
    """NGFF's name for the unit ``value`` spells, from ``table`` (default: any); else None.

    A symbol of ``table`` (default :data:`LENGTHS` and :data:`TIMES`), as
    written or in lower case, or one of NGFF's names (:data:`SI`) when no
    table is given.  The micro sign may be written ``µ``, the Greek ``μ``, or
    ImageJ's escape ``\\u00B5``.
    """
    if not isinstance(value, str):
        return None
    # ImageJ escapes the micro sign; the Greek mu looks the same to the people typing it.
    symbol = value.strip().replace("\\u00B5", "µ").replace("\\u00b5", "µ").replace("μ", "µ")
    if table is None:
        if symbol.lower() in SI:
            return symbol.lower()
        table = {**LENGTHS, **TIMES}
    return table.get(symbol, table.get(symbol.lower()))


def convert(value: float, unit: str, to: str) -> float | None:
    """``value`` in NGFF unit ``unit`` expressed in ``to``; None if either is unknown or
    they measure different things (a length and a time)."""
    if unit not in SI or to not in SI or SI[unit][0] != SI[to][0]:
        return None
    (_, m, e), (_, m_to, e_to) = SI[unit], SI[to]
    return value * m / m_to * 10.0 ** (e - e_to)
