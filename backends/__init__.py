"""fftconv's own FFT backends, registered through the ``fftconv.backends`` entry points.

Nothing here is imported by fftconv directly: the registry finds these
classes exactly as it finds a third party's.
"""
