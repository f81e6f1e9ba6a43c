"""FITS in and out (header and WCS carried, moved by the mode) and HDF5 datasets in."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv
from fftconv import cli

fits = pytest.importorskip("astropy.io.fits")


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sky(tmp_path, rng):
    data = rng.random((50, 60)).astype(np.float32)
    header = fits.Header()
    for key, value in (("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRPIX1", 30.5),
                       ("CRPIX2", 25.5), ("CRVAL1", 150.0), ("CRVAL2", 2.0),
                       ("CDELT1", -1e-4), ("CDELT2", 1e-4), ("OBJECT", "M31")):
        header[key] = value
    fits.writeto(tmp_path / "sky.fits", data, header)
    return tmp_path / "sky.fits", data


def test_a_fits_image_reads_as_it_is_stored(sky, tmp_path, rng):
    path, data = sky
    opened = fftconv.open_image(path, chunks=(20, 30))
    assert opened.dtype == np.float32 and opened.chunks == ((20, 20, 10), (30, 30))
    np.testing.assert_array_equal(opened.compute(), data)
    counts = (rng.random((30, 20)) * 60000).astype(np.uint16)  # stored int16 + BZERO
    fits.writeto(tmp_path / "counts.fits", counts)
    scaled = fftconv.open_image(tmp_path / "counts.fits")
    assert scaled.dtype == np.uint16
    np.testing.assert_array_equal(scaled.compute(scheduler="processes"), counts)


@pytest.mark.parametrize("mode", ["same", "valid", "full"])
def test_a_fits_round_trip_keeps_the_sky_coordinates(sky, tmp_path, capsys, mode):
    wcs = pytest.importorskip("astropy.wcs")
    path, data = sky
    code, _, _ = _run(capsys, "convolve", path, "gaussian:sigma=1.5", tmp_path / "out.fits",
                      "--mode", mode, "--boundary", "reflect")
    assert code == 0
    with fits.open(tmp_path / "out.fits") as out:
        k = fftconv.kernels.gaussian(1.5)
        np.testing.assert_allclose(out[0].data, fftconv.convolve(data, k, mode,
                                                                 boundary="reflect"),
                                   atol=1e-6)
        assert out[0].header["OBJECT"] == "M31"
        # Output pixel (0, 0) lies where the input's first output sample lies.
        shift = {"same": 0, "valid": 6, "full": -6}[mode]
        before = wcs.WCS(fits.getheader(path)).pixel_to_world(shift, shift)
        after = wcs.WCS(out[0].header).pixel_to_world(0, 0)
        assert before.separation(after).deg < 1e-9


def test_fits_outputs_refuse_what_fits_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="cannot store dtype complex64"):
        fftconv.write_image(np.ones((4, 4), np.complex64), tmp_path / "c.fits")
    with pytest.raises(TypeError, match="cannot store dtype uint16"):
        fftconv.write_image(np.ones((4, 4), np.uint16), tmp_path / "u.fits")
    assert list(tmp_path.iterdir()) == []


def test_an_hdf5_dataset_is_an_input(tmp_path, capsys, rng):
    h5py = pytest.importorskip("h5py")
    data = rng.random((40, 30)).astype(np.float32)
    with h5py.File(tmp_path / "scan.h5", "w") as file:
        file.create_dataset("entry/data", data=data, chunks=(10, 30))
    opened = fftconv.open_image(tmp_path / "scan.h5" / "entry" / "data", chunks=(10, 30))
    assert opened.chunks == ((10, 10, 10, 10), (30,))
    np.testing.assert_array_equal(opened.compute(scheduler="processes"), data)
    code, _, _ = _run(capsys, "convolve", tmp_path / "scan.h5" / "entry" / "data",
                      "box:size=3", tmp_path / "out.npy")
    assert code == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               fftconv.convolve(data, np.ones((3, 3)) / 9), atol=1e-6)
    code, _, err = _run(capsys, "convolve", tmp_path / "scan.h5" / "entry", "box:size=3",
                        tmp_path / "o.npy")
    assert code == 2 and "its datasets: ['entry/data']" in err
    code, _, err = _run(capsys, "convolve", tmp_path / "scan.h5", "box:size=3",
                        tmp_path / "o.npy")
    assert code == 2 and "name the dataset inside" in err
