"""micado-client: create MiCADO masters on clouds and manage their applications.

    >>> from micado import MicadoClient
    >>> client = MicadoClient(endpoint="https://micado/toscasubmitter/", version="v2.0",
    ...                       verify=False, auth=("ssl_user", "ssl_pass"))  # doctest: +SKIP
"""

from micado._version import __version__
from micado.client import MicadoClient
from micado.exceptions import *  # noqa: F401,F403  (the public error hierarchy)
from micado.exceptions import __all__ as _exception_names

__all__ = ["MicadoClient", "__version__", *_exception_names]
