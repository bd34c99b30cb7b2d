"""The resource models users work with, docker-style: applications
(:mod:`~micado.models.application`) on top of the low-level :mod:`micado.api`. The master
and its workflow are in :mod:`micado.master` (``micado.models.master`` still imports it).
"""
