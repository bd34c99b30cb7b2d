"""``python -m micado``: the ``micado`` command."""

import sys

from micado.cli import main

sys.exit(main())
