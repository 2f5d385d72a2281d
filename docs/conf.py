"""Sphinx configuration for the liveclass_booking documentation.

Reads the version with a regular expression so that building the docs needs neither Django nor
the package to be importable.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_INIT = (ROOT / "src" / "liveclass_booking" / "__init__.py").read_text(encoding="utf-8")
_MATCH = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", _INIT, re.MULTILINE)

project = "liveclass_booking"
author = "liveclass_booking contributors"
copyright = "liveclass_booking contributors"  # noqa: A001
release = _MATCH.group(1) if _MATCH else "unknown"
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_heading_anchors = 3

html_theme = "furo"
html_title = f"liveclass_booking {release}"
