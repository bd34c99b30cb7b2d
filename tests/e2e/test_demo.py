"""The README's first command: the demo runs to the end and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_demo_runs_to_the_end(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    env.pop("MICADO_CLI_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "micado.testing.demo"], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Summary (seconds)" in result.stdout
    assert "left on the cloud: {'servers': [], 'attached_floating_ips': [], 'allocated_floating_ips': []}" in result.stdout
    for stage in ("create a MiCADO master", "fill in the stressng demo", "unfilled, it is refused", "deploy it", "update it", "delete it", "destroy the master"):
        assert stage in result.stdout
    assert list(tmp_path.iterdir()) == []  # HOME and TMPDIR: nothing left, no SDK caches
