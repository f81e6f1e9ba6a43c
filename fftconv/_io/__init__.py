"""Image files: zarr / OME-Zarr, ``.npy`` and TIFF / OME-TIFF in and out; their metadata.

Depends on :mod:`fftconv._core` and :mod:`fftconv._infra` only; the layers
above use the names below.  zarr and tifffile load on first use.
"""

from fftconv._io.formats import FORMATS, InputError, output_format
from fftconv._io.image import Image, open_image
from fftconv._io.mapped import on_a_grid
from fftconv._io.read import open_file
from fftconv._io.write import check_output, output_codec, write_image
from fftconv._io.zarr_direct import chunk_of, layout, read_chunk

__all__ = [
    "FORMATS", "Image", "InputError", "check_output", "chunk_of", "layout", "on_a_grid",
    "open_file", "open_image", "output_codec", "output_format", "read_chunk", "write_image",
]
