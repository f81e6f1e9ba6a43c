"""The command line's commands (:mod:`fftconv.cli` parses the arguments and runs them).

``options`` (argument types and the file operations' options), ``runtime`` (scheduler,
malloc, progress, peak RSS), ``convolve``, ``info`` (backends, plan, calibrate), ``demo``.
"""
