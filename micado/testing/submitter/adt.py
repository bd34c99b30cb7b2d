"""Reading and checking ADTs the way the TOSCA Submitter does, for its emulator.

The real server saves the uploaded ADT (or fetches its ``url``), parses it with
ruamel.yaml and hands it to toscaparser; any failure becomes
``500 Error while validating: <message>``. These functions do the parts that
matter to a client: real YAML parsing, CSAR archives, fetching URLs with a
timeout, and the top-level TOSCA checks (version present and known, no unknown
sections). They raise ``ValueError`` (or ``OSError`` for fetches) whose text is
the ``<message>``; the emulator turns any exception into that answer, as the
server does.
"""

from __future__ import annotations

import io
import posixpath
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import Any

__all__ = [
    "VALID_TOSCA_VERSIONS",
    "TOSCA_SECTIONS",
    "MAX_ADT_BYTES",
    "is_csar_name",
    "load_adt_bytes",
    "load_adt_url",
    "check_tosca",
]

#: The ``tosca_definitions_version`` values toscaparser accepts.
VALID_TOSCA_VERSIONS = (
    "tosca_simple_yaml_1_0",
    "tosca_simple_yaml_1_2",
    "tosca_simple_yaml_1_3",
    "tosca_simple_profile_for_nfv_1_0_0",
)

#: The top-level sections a TOSCA service template may have (TOSCA Simple Profile 1.3).
TOSCA_SECTIONS = frozenset(
    {
        "tosca_definitions_version",
        "tosca_default_namespace",
        "namespace",
        "metadata",
        "template_name",
        "template_author",
        "template_version",
        "description",
        "imports",
        "repositories",
        "dsl_definitions",
        "artifact_types",
        "data_types",
        "capability_types",
        "interface_types",
        "relationship_types",
        "node_types",
        "group_types",
        "policy_types",
        "topology_template",
    }
)

#: Larger ADTs (or CSAR members) are refused: an emulator has no use for them.
MAX_ADT_BYTES = 16 * 1024 * 1024

_META_PATH = "TOSCA-Metadata/TOSCA.meta"


def is_csar_name(name: str) -> bool:
    """Tell whether a file name or URL path names a CSAR archive (``.csar`` or ``.zip``).

    Args:
        name: a file name or the path part of a URL.
    """
    return name.lower().endswith((".csar", ".zip"))


def _parse_yaml(data: bytes | str, name: str) -> Any:
    """Parse one YAML document with ruamel.yaml's safe loader.

    A new loader per call: ruamel loaders keep state between calls and are not
    thread-safe, and the emulator serves requests in threads.
    """
    from ruamel.yaml import YAML

    text = data.decode("utf-8") if isinstance(data, bytes) else data
    stream = io.StringIO(text)
    # ruamel names the stream in its error marks ("in "<name>", line 3, column 5").
    stream.name = name
    return YAML(typ="safe", pure=True).load(stream)


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f'"{name}" is not a YAML text file: byte {error.start} is not UTF-8 ({error.reason})'
        ) from None


def check_tosca(document: Any, name: str) -> dict[str, Any]:
    """Check the top level of a parsed ADT like toscaparser does.

    Args:
        document: the parsed YAML document.
        name: the file name or URL, for the messages.

    Returns:
        The document, a mapping.

    Raises:
        ValueError: not a mapping, ``tosca_definitions_version`` missing or not one of
            :data:`VALID_TOSCA_VERSIONS`, or a top-level section TOSCA does not define.
    """
    prefix = f'The input "{name}" failed validation with the following error(s): '
    if not isinstance(document, dict):
        kind = "an empty document" if document is None else f"a {type(document).__name__}"
        raise ValueError(f"{prefix}the template must be a YAML mapping, not {kind}")
    if "tosca_definitions_version" not in document:
        raise ValueError(
            f"{prefix}MissingRequiredFieldError: Template is missing required field "
            '"tosca_definitions_version".'
        )
    version = document["tosca_definitions_version"]
    if version not in VALID_TOSCA_VERSIONS:
        raise ValueError(
            f'{prefix}InvalidTemplateVersion: The template version "{version}" is invalid. '
            f'Valid versions are "{", ".join(VALID_TOSCA_VERSIONS)}".'
        )
    unknown = [str(key) for key in document if key not in TOSCA_SECTIONS]
    if unknown:
        raise ValueError(
            f'{prefix}UnknownFieldError: Template contains unknown field "{unknown[0]}". '
            "Refer to the definition to verify valid values."
        )
    return document


def _read_member(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    info = archive.getinfo(member)
    if info.file_size > MAX_ADT_BYTES:
        raise ValueError(f'"{member}" in the CSAR "{name}" is larger than {MAX_ADT_BYTES} bytes')
    return archive.read(info)


def _csar_entry(archive: zipfile.ZipFile, name: str) -> str:
    """Find the entry definitions of a CSAR: TOSCA.meta, or the single top-level YAML."""
    members = {info.filename for info in archive.infolist() if not info.is_dir()}
    if _META_PATH in members:
        meta = _parse_yaml(_decode(_read_member(archive, _META_PATH, name), _META_PATH), _META_PATH)
        entry = meta.get("Entry-Definitions") if isinstance(meta, dict) else None
        if not isinstance(entry, str) or not entry:
            raise ValueError(
                f'The CSAR "{name}" is missing the required metadata "Entry-Definitions" '
                f'in "{_META_PATH}".'
            )
        entry = posixpath.normpath(entry.lstrip("/"))
        if entry not in members:
            raise ValueError(
                f'The "Entry-Definitions" file "{entry}" defined in the CSAR "{name}" does not exist.'
            )
        return entry
    top_level = sorted(
        member for member in members if "/" not in member and member.lower().endswith((".yaml", ".yml"))
    )
    if len(top_level) != 1:
        found = ", ".join(top_level) if top_level else "none"
        raise ValueError(
            f'"{name}" is not a valid CSAR as it does not contain the required file "TOSCA.meta" '
            f'in the folder "TOSCA-Metadata", and it needs exactly one top-level YAML file '
            f"instead (found: {found})."
        )
    return top_level[0]


def _load_csar(data: bytes, name: str) -> dict[str, Any]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError(f'"{name}" is not a valid zip file.') from None
    with archive:
        entry = _csar_entry(archive, name)
        text = _decode(_read_member(archive, entry, name), entry)
    return check_tosca(_parse_yaml(text, entry), f"{name}/{entry}")


def load_adt_bytes(data: bytes, name: str) -> dict[str, Any]:
    """Parse and check an uploaded ADT: YAML text, or a CSAR when ``name`` says so.

    Args:
        data: the uploaded bytes.
        name: the uploaded file name (its extension picks YAML or CSAR).

    Returns:
        The ADT as a mapping (for a CSAR, its entry definitions).

    Raises:
        ValueError: the YAML does not parse (the parser's message), the archive is
            not a usable CSAR, or :func:`check_tosca` refuses the document.
    """
    if len(data) > MAX_ADT_BYTES:
        raise ValueError(f'"{name}" is larger than {MAX_ADT_BYTES} bytes')
    if is_csar_name(name):
        return _load_csar(data, name)
    return check_tosca(_parse_yaml(_decode(data, name), name), name)


def load_adt_url(url: str, timeout: float) -> dict[str, Any]:
    """Fetch an ADT from ``url`` (http or https only) and parse it like an upload.

    Proxies from the environment are not used: the emulator serves loopback tests.

    Args:
        url: where the ADT is; a path ending in ``.csar``/``.zip`` is read as a CSAR.
        timeout: seconds for connecting and for each read.

    Returns:
        The ADT as a mapping.

    Raises:
        OSError: the URL could not be fetched (message in the server's words,
            ``Cannot find input file <reason>``).
        ValueError: what :func:`load_adt_bytes` raises.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        # The real server would also read local paths and file:// URLs; an emulator
        # reachable over the network must not.
        raise FileNotFoundError(
            f"Cannot find input file <urlopen error unknown url type: {parts.scheme or url}>"
        )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            data = response.read(MAX_ADT_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        raise FileNotFoundError(f"Cannot find input file {error}") from None
    name = posixpath.basename(parts.path) or url
    return load_adt_bytes(data, name)
