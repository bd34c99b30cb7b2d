"""How a master is made: what ``create()`` takes (:mod:`~micado.master.spec`) and its steps
(:mod:`~micado.master.lifecycle`). The object users hold is
:class:`micado.models.master.MicadoMaster`; it delegates here.
"""
