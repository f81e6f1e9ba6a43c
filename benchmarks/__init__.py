"""Side-by-side benchmarks of fftconv and its peers (``make bench``)."""
