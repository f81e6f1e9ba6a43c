"""FITS in and out (astropy): astronomy's images, with their headers and WCS.

An input's image is the first HDU with data.  Raw data (no ``BSCALE``,
``BZERO`` or ``BLANK``) is memory-mapped by path as it is stored, big-endian,
a chunk per task; scaled data (a ``uint16`` image is stored as ``int16`` with
``BZERO = 32768``) is read through astropy's ``section``, a chunk per read.
An output is a primary HDU whose data area is allocated whole and written in
place by every task (as ``.npy`` and uncompressed TIFF outputs are), with the
input's header carried over: its WCS reference pixels (``CRPIXn``) moved by the
mode's window, so the sky coordinates of the result are the input's.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from fftconv._io.formats import InputError
from fftconv._io.mapped import MappedFile, allocate

# The header cards that describe the stored array: the output's own, not the input's.
STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "BSCALE",
              "BZERO", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "END")
# FITS stores these (BITPIX 8, 16, 32, 64, -32, -64); other unsigned types need BZERO.
STORABLE = ("uint8", "int16", "int32", "int64", "float32", "float64")
BLOCK = 2880


def _fits():
    """``astropy.io.fits``, imported without astropy's import-time warnings (one about
    ``XDG_CONFIG_HOME`` printed a second line under every command-line error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from astropy.io import fits
    return fits


@dataclasses.dataclass(frozen=True)
class FitsSection:
    """An HDU's scaled data, read through astropy's ``section`` a chunk at a time, by path."""

    path: str
    hdu: int
    shape: tuple[int, ...]
    dtype: np.dtype
    modified: int = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        fits = _fits()

        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            return np.asarray(hdul[self.hdu].section[index], dtype=self.dtype)


def _image_hdu(hdul) -> int:
    for i, hdu in enumerate(hdul):
        if hdu.header.get("NAXIS", 0) > 0 and getattr(hdu, "is_image", False):
            return i
    raise InputError("it holds no image (no HDU with data)")


def open_fits(path: Path):
    """The source of the image in the FITS file at ``path``: mapped raw, or by sections."""
    fits = _fits()

    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        index = _image_hdu(hdul)
        header = hdul[index].header
        shape = tuple(int(header[f"NAXIS{n}"]) for n in range(header["NAXIS"], 0, -1))
        stamp = os.stat(path).st_mtime_ns
        scaled = any(key in header for key in ("BSCALE", "BZERO", "BLANK")) and not (
            header.get("BSCALE", 1) == 1 and header.get("BZERO", 0) == 0
            and "BLANK" not in header)
        compressed = isinstance(hdul[index], fits.CompImageHDU)
        if scaled or compressed:
            return FitsSection(str(path), index, shape, _scaled_dtype(path, index, shape),
                               stamp)
        offset = hdul.fileinfo(index)["datLoc"]
        dtype = np.dtype(fits.BITPIX2DTYPE[header["BITPIX"]]).newbyteorder(">")
    return MappedFile(str(path), int(offset), shape, dtype, "C", stamp)


def _scaled_dtype(path: Path, index: int, shape: tuple[int, ...]) -> np.dtype:
    """The dtype astropy gives scaled data: read from one element (scaled data cannot be
    memory-mapped)."""
    fits = _fits()

    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        return np.asarray(hdul[index].section[(slice(0, 1),) * len(shape)]).dtype


def fits_header(path: str | os.PathLike):
    """The header of the image HDU of the FITS file at ``path``."""
    fits = _fits()

    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        return hdul[_image_hdu(hdul)].header.copy()


def moved_header(header, shift) -> dict:
    """``header``'s cards but the structural ones, each ``CRPIXn`` moved by ``shift``
    (per NumPy axis; FITS numbers its axes the other way)."""
    ndim = len(shift)
    cards = {}
    for key, value in header.items():
        if key in STRUCTURAL or key.startswith("NAXIS") or key in ("COMMENT", "HISTORY", ""):
            continue
        cards[key] = value
    for axis, moved in enumerate(shift):
        key = f"CRPIX{ndim - axis}"
        if key in cards and moved:
            cards[key] = float(cards[key]) - moved
    return cards


def fits_target(path: Path, shape: tuple[int, ...], dtype, header: dict | None) -> MappedFile:
    """A new FITS file at ``path`` with ``header``'s cards, its data area allocated whole;
    the target that maps it per write (big-endian, as FITS stores it)."""
    fits = _fits()

    dtype = np.dtype(dtype)
    if dtype.name not in STORABLE:
        raise TypeError(f"a .fits image cannot store dtype {dtype}; use one of "
                        f"{', '.join(STORABLE)}")
    hdu = fits.PrimaryHDU(data=np.zeros((1,) * len(shape), dtype=dtype))
    for key, value in (header or {}).items():
        try:
            hdu.header[key] = value
        except (ValueError, KeyError):  # a card astropy cannot set: left out
            continue
    for n, length in enumerate(reversed(shape), start=1):
        hdu.header[f"NAXIS{n}"] = int(length)
    text = hdu.header.tostring().encode("ascii")
    data = int(np.prod(shape)) * dtype.itemsize
    total = len(text) + -(-data // BLOCK) * BLOCK
    with open(path, "wb") as file:
        file.write(text)
        file.truncate(total)
    allocate(str(path), total)
    return MappedFile(str(path), len(text), tuple(shape), dtype.newbyteorder(">"), "C",
                      os.stat(path).st_mtime_ns)
