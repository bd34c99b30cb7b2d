"""The ``micado`` command: a thin shell over :class:`~micado.MicadoClient`.

Exit codes: 0 success, 2 usage errors (bad arguments, credentials), 3 errors answered by
the MiCADO API, 4 connection errors and timeouts, 1 any other failure (cloud, installer).
Errors print one line (JSON with ``--json``); ``--debug`` adds the traceback and changes
nothing else.

The modules: :mod:`~micado.cli.main` (the entry point, signals), :mod:`~micado.cli.parser`
(the commands and options), :mod:`~micado.cli.master` and :mod:`~micado.cli.app` (what the
commands do), :mod:`~micado.cli.output` (text, JSON, tables, progress, questions),
:mod:`~micado.cli.errors` (an error's line and exit code, warnings as lines) and
:mod:`~micado.cli.argv` (option values that begin with a dash).
"""

from micado.cli.errors import exit_code
from micado.cli.main import main
from micado.cli.parser import build_parser

__all__ = ["main", "build_parser", "exit_code"]
