"""The old import path of the master facade, kept for code written against it.

The master and its workflow live in :mod:`micado.master` (the facade is
:class:`micado.master.facade.MicadoMaster`); ``micado.models`` holds the resource
models (applications).
"""

from micado.master.facade import DEFAULT_REMOTE_CERT_PATH, MasterCredentials, MicadoMaster

__all__ = ["MicadoMaster", "MasterCredentials", "DEFAULT_REMOTE_CERT_PATH"]
