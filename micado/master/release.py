"""What a master was made with, kept in its record, so that later plays run the same release.

``create`` and ``deploy`` record, in ``extra``:

* ``release``: where the playbooks came from (``version`` for a release tag, or
  ``source``: the tarball, folder or URL given as ``playbook=``), the shape of the tree
  (``layout``) and its checksum (``digest``: :func:`~micado.installer.playbooks.release_digest`);
* ``settings``: the settings given, except those whose names look secret, which go
  to the record's encrypted ``secret_settings`` (and ``grafana_admin_pwd``, which is the
  record's ``grafana_password``);
* ``remote_cert_path`` and the SSH access (``ssh_user``, ``ssh_port``; ``ssh_key`` for
  a deployed host: the user's own key, which is never copied).

:func:`recorded_release` finds the same playbooks again (from the cache, or downloaded
again) and refuses them when their checksum is not the recorded one; a master made
before releases were recorded is taken at its recorded version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from micado.exceptions import InstallError, MicadoException
from micado.installer import playbooks
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from micado.config.store import MasterRecord
    from micado.installer.playbooks import PlaybookTree

__all__ = ["release_facts", "split_settings", "recorded_settings", "recorded_release", "GRAFANA_SETTING"]

#: The release variable of the Grafana admin password (kept as the record's ``grafana_password``).
GRAFANA_SETTING = "grafana_admin_pwd"
_SECRET_WORDS = ("password", "pwd", "secret", "token", "key", "credential")


def release_facts(playbook: str | os.PathLike[str] | None, micado_version: str | None,
                  tree: PlaybookTree) -> dict[str, Any]:
    """The record's ``extra["release"]`` for playbooks resolved from ``playbook``/``micado_version``."""
    from micado.installer.archive import display_url

    facts: dict[str, Any] = {"layout": tree.layout.name, "digest": playbooks.release_digest(tree.root)}
    if playbook is None:
        facts["version"] = playbooks.PlaybookSource(None, micado_version=micado_version).version
    elif isinstance(playbook, str) and playbook.startswith(("http://", "https://")):
        shown = display_url(playbook)
        facts["source"] = playbook if shown == playbook else shown  # a URL's password is never recorded
        facts["source_complete"] = shown == playbook
    else:
        facts["source"] = str(playbooks.PlaybookSource(playbook).path)
    return facts


def _looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def split_settings(settings: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``(settings to keep in extra, JSON of the secret-looking ones or None)``.

    The Grafana password goes in neither: it is the record's ``grafana_password``.
    """
    given = {name: value for name, value in settings.items() if name != GRAFANA_SETTING}
    public = {name: value for name, value in given.items() if not _looks_secret(name)}
    secret = {name: value for name, value in given.items() if _looks_secret(name)}
    return public, (json.dumps(secret) if secret else None)


def recorded_settings(record: MasterRecord) -> dict[str, Any]:
    """The settings the master was made (or last reconfigured) with, secret ones and the Grafana password included."""
    settings = dict(record.extra.get("settings") or {})
    if record.secret_settings:
        settings.update(json.loads(record.secret_settings))
    if record.grafana_password:
        settings[GRAFANA_SETTING] = record.grafana_password
    return settings


def recorded_release(record: MasterRecord, *, progress: ProgressCallback) -> PlaybookTree:
    """The playbooks the master was made with: the same tag, tarball, folder or URL, with the same checksum.

    Raises:
        MicadoException: the record does not say (a master deployed by another client),
            or its URL was recorded without its password.
        InstallError: the source cannot be had, or its checksum is not the recorded one.
        InvalidArgument: the recorded tarball or folder no longer exists.
    """
    release = record.extra.get("release")
    if not isinstance(release, dict):
        version = record.extra.get("micado_version")
        if not isinstance(version, str):
            raise MicadoException(f"master {record.id}: its record does not say which ansible-micado release "
                                  "made it, so no play can be run on it")
        release = {"version": version}
    if release.get("source_complete") is False:
        raise MicadoException(f"master {record.id} was made from {release.get('source')}, whose password is not "
                              "recorded; day-2 plays cannot fetch it again")
    source = release.get("source")
    tree = playbooks.resolve_source(source, None if source else release.get("version"), progress=progress)
    digest = release.get("digest")
    if digest and playbooks.release_digest(tree.root) != digest:
        where = source or release.get("version")
        raise InstallError(f"master {record.id}: the playbooks of {where} are no longer those it was made with "
                           f"(checksum {digest}); restore them, or remove the changed cache folder "
                           f"{tree.root} so that the release is downloaded again")
    return tree
