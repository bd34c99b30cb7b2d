"""Low-level access to the TOSCA Submitter REST API.

:class:`~micado.api.client.SubmitterClient` makes one HTTP call per method and
returns plain data; :mod:`micado.models` builds the objects users work with on top.
"""
