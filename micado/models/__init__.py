"""The objects users work with: applications (:mod:`~micado.models.application`) and
the master (:mod:`~micado.models.master`), on top of the low-level :mod:`micado.api`.
"""
