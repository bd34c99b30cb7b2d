"""Where the suite finds its files: the checkout, its docs, the test ADTs and the
``../shared`` material (real ansible-micado releases), whatever folder a test lives in."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

#: The checkout's root (holds ``micado/``, ``docs/``, ``README.rst``).
ROOT = Path(__file__).resolve().parents[2]
#: The suite's helpers (this folder, on ``sys.path`` by ``pytest.ini``).
SUPPORT = Path(__file__).resolve().parent
#: The documentation's sources.
DOCS = ROOT / "docs"
#: Real MiCADO ADTs as published, placeholders (``ADD_YOUR_ID_HERE``...) included.
REAL_ADTS = SUPPORT / "adts"


def _filled_adts() -> Path:
    """REAL_ADTS with the placeholders filled in (as a user fills a demo in), made once per content."""
    from micado.testing.adts import write_filled

    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sorted(REAL_ADTS.glob("*.yaml"))))
    folder = Path(tempfile.gettempdir()) / f"micado-test-adts-{digest.hexdigest()[:12]}"
    if not folder.is_dir():
        staging = write_filled(tempfile.mkdtemp(prefix="micado-test-adts-"), REAL_ADTS)
        with contextlib.suppress(OSError):  # another test process made it first
            staging.rename(folder)
    return folder


#: The ADTs the tests deploy: the real ones, filled in.
ADTS = _filled_adts()
#: The published ansible-micado release tarballs (``ansible-micado-<version>.tar.gz``, as
#: GitHub serves them): ``$MICADO_RELEASES_DIR`` (or ``$MICADO_RELEASE_TARBALLS``), else the
#: reference folder kept beside the checkout. They are not part of a clone: the tests that
#: need them skip without.
RELEASES = Path(os.environ.get("MICADO_RELEASES_DIR") or os.environ.get("MICADO_RELEASE_TARBALLS")
                or ROOT.parent / "shared" / "ansible-micado")
#: The Debian trixie root (Python 3.13) with the newest Ansible allowed (ansible-core 2.21), made by
#: scripts/newest-ansible.sh; the real-release tests run the releases there too, or skip.
NEWEST_ANSIBLE_ROOT = Path(os.environ.get("MICADO_NEWEST_ANSIBLE_ROOT")
                           or Path.home() / ".cache" / "micado-client" / "trixie")
