"""The MiCADO master and its workflow.

:class:`~micado.master.facade.MicadoMaster` (``client.master``) is the object users
hold; it composes the parts: what ``create()`` takes (:mod:`~micado.master.spec`), its
steps (:mod:`~micado.master.lifecycle`; :mod:`~micado.master.deployment` for a host the
user already has), how records keep a launcher's fields (:mod:`~micado.master.records`)
and what ``cleanup`` finds (:mod:`~micado.master.cleanup`).
"""
