"""``python -m micado.cli``: the ``micado`` command."""

import sys

from micado.cli.main import main

sys.exit(main())
