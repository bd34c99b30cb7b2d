"""The demo ADTs of an ansible-micado release, and the placeholders they leave to fill in.

Every release keeps ready-made application descriptions under ``demos/<name>/``, one per
cloud: ``demos/stressng/stressng_nova.yaml``, ``demos/nginx/nginx_ec2.yaml``... (the
official client's ``micado demo NAME CLOUD`` opens one of these). What the user must give
(an image id, a flavour, a network) is written there as a placeholder value:
``ADD_YOUR_ID_HERE (e.g. 6bba...)`` or ``<REGION_NAME> (e.g. us-west1)``, sometimes after
``(OPTIONAL)``. Such an ADT is valid YAML and the TOSCA Submitter takes it, only to fail
later in the cloud, so :func:`unfilled_fields` finds them and
:meth:`micado.models.application.Applications.create` refuses an ADT that still has
one, naming the field, before anything is sent.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from micado.exceptions import InvalidArgument
from micado.progress import ProgressCallback, as_callback

__all__ = [
    "Demo", "find_demos", "release_demos", "choose_demo", "short_field", "unfilled_fields", "refuse_unfilled",
    "fill", "DEMOS_FOLDER",
]

#: Where a release keeps its demos, relative to its top folder.
DEMOS_FOLDER = "demos"
#: A value the user has to replace: ``ADD_YOUR_..._HERE`` or ``<UPPER_CASE>``, maybe after ``(OPTIONAL)``.
_PLACEHOLDER = re.compile(r"^\s*(?:\(OPTIONAL\)\s*)?(?:ADD_[A-Z0-9_]+|<[A-Z][A-Z0-9_]*>)(?:\s|$)")
#: Demo ADTs are a few KB; a file over this is not one.
_MAX_DEMO_BYTES = 256 << 10


@dataclasses.dataclass(frozen=True)
class Demo:
    """One demo ADT of a release.

    Attributes:
        name: the demo (``stressng``, ``nginx``, ``wordpress``, ``cqueue``...).
        cloud: the cloud it is written for, as the release names it (``nova``, ``ec2``,
            ``gce``, ``azure``...).
        path: the file in the release.
    """

    name: str
    cloud: str
    path: Path

    @property
    def file_name(self) -> str:
        """``<name>_<cloud>.yaml``, the release's name for it."""
        return self.path.name

    def text(self) -> str:
        """The ADT as the release has it.

        Raises:
            InvalidArgument: the file cannot be read, is not UTF-8 or is too large for an ADT.
        """
        from micado.config.bounded_yaml import read_limited

        try:
            return read_limited(self.path, _MAX_DEMO_BYTES)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
            raise InvalidArgument(f"the demo {self.path} cannot be read: {reason}") from None

    def fields_to_fill(self) -> list[str]:
        """The key paths of its placeholders (see :func:`unfilled_fields`)."""
        return unfilled_fields(_load(self.text(), str(self.path)))


def find_demos(release_root: Path) -> list[Demo]:
    """The demos of the release unpacked at ``release_root``, by name then cloud.

    A demo is ``demos/<name>/<name>_<cloud>.yaml``; other files there (scripts,
    ``manual-*.yaml``, ``nginx-firewall/nginx_*.yaml``) are not, nor are symbolic links.

    Raises:
        InvalidArgument: the folder cannot be read.
    """
    folder = Path(release_root) / DEMOS_FOLDER
    found = []
    try:
        for directory in sorted(folder.iterdir()) if folder.is_dir() else []:
            if not directory.is_dir() or directory.is_symlink():
                continue
            prefix = f"{directory.name}_"
            for file in sorted(directory.glob(f"{prefix}*.yaml")):
                cloud = file.name[len(prefix):-len(".yaml")]
                if cloud and file.is_file() and not file.is_symlink():
                    found.append(Demo(directory.name, cloud, file))
    except OSError as error:
        raise InvalidArgument(f"the demos of {release_root} cannot be read: {error.strerror or error}") from None
    return found


def release_demos(playbook: str | Path | None = None, micado_version: str | None = None, *,
                  progress: ProgressCallback | bool | None = None) -> list[Demo]:
    """The demos of a release: ``playbook=`` (a tarball, folder or URL) or the release
    ``micado_version`` (default: the one ``master.create`` would use), taken from the
    playbook cache or downloaded once, as ``create`` does.

    Raises:
        InvalidArgument: the source does not exist or is not an ansible-micado release.
        InstallError: the release cannot be had.
    """
    from micado.installer import playbooks

    return find_demos(playbooks.resolve_source(playbook, micado_version, progress=as_callback(progress)).root)


def choose_demo(demos: list[Demo], name: str, cloud: str | None, *, where: str) -> Demo:
    """The demo ``name`` for ``cloud`` among ``demos`` (the one cloud it has, if ``cloud`` is ``None``).

    Args:
        where: the release, for messages.

    Raises:
        InvalidArgument: no such demo, no such cloud for it (the ones there are listed),
            or no cloud given and the demo has several.
    """
    of_name = [demo for demo in demos if demo.name == name.lower()]
    if not of_name:
        names = ", ".join(sorted({demo.name for demo in demos})) or "none"
        raise InvalidArgument(f"{where} has no demo {name!r} (its demos: {names})")
    clouds = [demo.cloud for demo in of_name]
    if cloud is None:
        if len(of_name) == 1:
            return of_name[0]
        raise InvalidArgument(f"the demo {name!r} of {where} is written for several clouds: choose one of "
                              f"{', '.join(clouds)}")
    for demo in of_name:
        if demo.cloud == cloud.lower():
            return demo
    raise InvalidArgument(f"the demo {name!r} of {where} has no ADT for the cloud {cloud!r} "
                          f"(it has: {', '.join(clouds)})")


def short_field(path: str) -> str:
    """A field's key path without the ``topology_template.node_templates.`` every node's fields start with."""
    return path.removeprefix("topology_template.node_templates.")


def unfilled_fields(document: Any) -> list[str]:
    """The key paths (``topology_template.node_templates.worker-node.properties.image_id``,
    ``...security_groups[0]``) of the placeholder values left in an ADT, in document order."""
    return [path for path, _ in _placeholders(document, "")]


def _placeholders(node: Any, path: str) -> Iterator[tuple[str, str]]:
    # Iterative on purpose: a document can nest as deep as its reader allows.
    stack: list[tuple[Any, str]] = [(node, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if _PLACEHOLDER.match(value):
                yield where, value
        elif isinstance(value, Mapping):
            stack.extend(reversed([(item, f"{where}.{key}" if where else str(key)) for key, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(item, f"{where}[{index}]") for index, item in enumerate(value)]))


def refuse_unfilled(document: Any, shown: str) -> None:
    """Refuse an ADT that still holds a demo's placeholders.

    Raises:
        InvalidArgument: ``<shown> still has placeholders to fill in: <paths>`` (one line).
    """
    fields = unfilled_fields(document)
    if fields:
        raise InvalidArgument(f"{shown} still has placeholder values to fill in (or remove, if optional): "
                              f"{', '.join(fields)}")


def fill(text: str, values: Mapping[str, Any], *, shown: str = "the ADT") -> str:
    """The ADT ``text`` with placeholders replaced, comments and layout kept.

    Args:
        text: the ADT (YAML).
        values: a value per field, by its key path (as :func:`unfilled_fields` gives it)
            or the end of it (``worker-node.properties.image_id``, ``image_id``; a list's
            items by the list's key, ``security_groups``), the most precise one winning.
            Only placeholder values are replaced.
        shown: the ADT's name in messages.

    Raises:
        InvalidArgument: a value names no placeholder of the ADT, or the text is not YAML.
    """
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    document = _load(text, shown, yaml)
    used: set[str] = set()
    for path, _ in list(_placeholders(document, "")):
        field = re.sub(r"\[\d+\]$", "", path)  # a list's items go by the list's key
        names = [name for name in values if name in (path, field) or field.endswith(f".{name}")]
        if names:
            name = max(names, key=len)  # the most precise one given
            used.add(name)
            _set(document, path, values[name])
    unused = sorted(set(values) - used)
    if unused:
        left = ", ".join(unfilled_fields(document)) or "none"
        raise InvalidArgument(f"{shown} has no placeholder {', '.join(unused)} (placeholders left: {left})")
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _set(document: Any, path: str, value: Any) -> None:
    steps = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = document
    for step in steps[:-1]:
        node = node[int(step[1:-1])] if step.startswith("[") else node[step]
    last = steps[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value


def _load(text: str, shown: str, yaml: Any = None) -> Any:
    from micado.config.bounded_yaml import Refused, YamlSyntaxError, safe_load

    try:
        document = safe_load(text)  # the bounds and a clean syntax error first, for any reader below
    except (YamlSyntaxError, Refused) as error:
        raise InvalidArgument(f"{shown} is not a usable ADT: {error}") from None
    return document if yaml is None else yaml.load(text)
