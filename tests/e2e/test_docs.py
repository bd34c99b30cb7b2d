"""The Sphinx documentation builds without a single warning."""

from __future__ import annotations

import subprocess
import sys
from paths import DOCS



def test_docs_build_with_warnings_as_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "micado.client.html").exists()
    assert (tmp_path / "micado.models.application.html").exists()


def test_ci_runs_exactly_the_readme_test_command():
    root = DOCS.parent
    readme = (root / "README.rst").read_text()
    lines = [line.strip() for line in readme.splitlines()[:8] if line.startswith("    ")]
    assert len(lines) == 2, "README.rst must start with exactly two set-up commands"
    assert f"test_command='{lines[1]}'" in (root / ".ci" / "run").read_text()
