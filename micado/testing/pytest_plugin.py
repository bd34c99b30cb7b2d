"""Pytest fixtures of the local MiCADO stack, registered through the ``pytest11`` entry point.

Every fixture starts its emulator on loopback, yields a handle to it, and stops it
(and everything it started) at teardown. Heavy imports happen inside the fixtures.
"""

from __future__ import annotations

import pytest

# --- submitter fixtures --------------------------------------------------------------

# --- openstack fixtures --------------------------------------------------------------

# --- vm / stack fixtures -------------------------------------------------------------
