"""Where the suite finds its files: the checkout, its docs, the test ADTs and the
``../shared`` material (real ansible-micado releases), whatever folder a test lives in."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout's root (holds ``micado/``, ``docs/``, ``README.rst``).
ROOT = Path(__file__).resolve().parents[2]
#: The suite's helpers (this folder, on ``sys.path`` by ``pytest.ini``).
SUPPORT = Path(__file__).resolve().parent
#: The documentation's sources.
DOCS = ROOT / "docs"
#: The ADTs the tests deploy (real MiCADO ADTs and broken ones).
ADTS = SUPPORT / "adts"
#: The published ansible-micado release tarballs (``ansible-micado-<version>.tar.gz``, as
#: GitHub serves them): ``$MICADO_RELEASES_DIR`` (or ``$MICADO_RELEASE_TARBALLS``), else the
#: reference folder kept beside the checkout. They are not part of a clone: the tests that
#: need them skip without.
RELEASES = Path(os.environ.get("MICADO_RELEASES_DIR") or os.environ.get("MICADO_RELEASE_TARBALLS")
                or ROOT.parent / "shared" / "ansible-micado")
