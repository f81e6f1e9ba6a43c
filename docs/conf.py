"""Sphinx configuration: markdown pages (MyST), numpydoc API pages, furo.

The examples on every page and in every docstring are executed by the test
suite (``pytest --doctest-modules --doctest-glob='*.md'``), so the site shows
only examples that ran.  Figures are drawn from the library at build time.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

project = "fftconv"
author = "the fftconv developers"
copyright = "2026, the fftconv developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_typehints = "none"
html_theme = "furo"
html_title = "fftconv"
html_static_path = ["_static"]
suppress_warnings = ["myst.header"]


def _figures(app) -> None:
    from figures import draw_all

    draw_all(HERE / "_static")


def setup(app):
    app.connect("builder-inited", _figures)
