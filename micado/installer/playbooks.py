"""Where the ansible-micado playbooks come from, and how they are laid out.

:class:`PlaybookSource` ``.resolve()`` (or :func:`resolve_source`) finds the
playbooks: a MiCADO release (``micado_version``, default
:data:`DEFAULT_MICADO_VERSION`) downloaded from GitHub, or ``playbook=`` a local
tarball, a local folder or an http(s) URL. Downloads and tarballs are unpacked
safely (:mod:`micado.installer.archive`) into the cache
(:func:`micado.config.paths.playbook_cache_dir`), once per version, URL or file
content. The result is a :class:`PlaybookTree`: a folder and its :class:`Layout`.

Releases are told apart by their shape, not by a list of file names
(:class:`Layout`): the play that runs the ``micado_master`` roles, and where it takes
its variables from (play ``vars`` in 0.9; ``host_vars/`` beside it in 0.10, and one or
two folders down in 0.11/0.12). A release never seen before that keeps one of these
shapes is handled the same way; anything else is refused before the cloud is touched.
:func:`check_tree` then plans the rewrites the installed ansible-core needs
(:mod:`micado.installer.compat`).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from micado.config import paths
from micado.exceptions import InstallError, InvalidArgument
from micado.installer import archive, compat
from micado.progress import ProgressCallback, as_callback

__all__ = [
    "DEFAULT_MICADO_VERSION",
    "ENV_MICADO_VERSION",
    "default_micado_version",
    "RELEASE_URL",
    "ENV_RELEASE_URL",
    "release_url",
    "Layout",
    "LAYOUTS",
    "PlaybookTree",
    "PlaybookSource",
    "MANAGED_VARIABLES",
    "check_tree",
    "detect_layout",
    "release_digest",
    "release_tags",
    "playbook_tags",
    "file_reads",
    "resolve_source",
]

#: The newest ansible-micado release (see the project's tags and changelog).
DEFAULT_MICADO_VERSION = "v0.12.6"
#: Environment variable with the release to deploy when ``micado_version=`` is not given
#: (the name the official micado-client 0.12 reads).
ENV_MICADO_VERSION = "MICADO_VERS"


def default_micado_version() -> str:
    """The release deployed when neither ``micado_version=`` nor ``playbook=`` is given.

    :envvar:`MICADO_VERS` when it is set (and not blank), else :data:`DEFAULT_MICADO_VERSION`.
    """
    return os.environ.get(ENV_MICADO_VERSION, "").strip() or DEFAULT_MICADO_VERSION

#: GitHub's source tarball of a tag; it unpacks to ``ansible-micado-<version without v>/``.
RELEASE_URL = "https://github.com/micado-scale/ansible-micado/archive/refs/tags/{version}.tar.gz"

#: Environment variable: another place to download releases from, a URL with ``{version}``
#: (a mirror inside a closed network, or the local stack's loopback server).
ENV_RELEASE_URL = "MICADO_RELEASE_URL"

_VERSION_RE = re.compile(r"^v?\d+(\.\d+)*([-.+][A-Za-z0-9]+)*$")


#: Where the roles that deploy a MiCADO master live, below a playbook's folder.
_MASTER_ROLE = "micado_master"
#: How deep below the tree's root a master playbook is looked for (0.12: playbook/project/).
_SEARCH_DEPTH = 2
#: Folders never searched for the master playbook.
_NOT_PLAYBOOK_FOLDERS = frozenset({"roles", "demos", "tests", "credentials", "host_vars", "group_vars",
                                   "inventory", "templates", "files", "manifests", "pre-task", "docs"})
#: The release's variables the installer sets itself: never a user setting.
MANAGED_VARIABLES = frozenset({"security"})
#: Variables that name where a release reads container-registry credentials (0.11+, then 0.9/0.10).
_REGISTRY_PATH_VARIABLES = ("registry_cred_path", "docker_cred_path")


@dataclass(frozen=True)
class Layout:
    """Where things are in one ansible-micado release, found from the shape of its tree.

    Three shapes are known, each found by what it holds rather than by file names:

    * ``"0.9"``: the master playbook at the top of the tree sets the release's
      variables itself (play ``vars:``);
    * ``"0.10"``: the master playbook at the top, its variables in
      ``host_vars/<host>.yml`` (and ``group_vars/``) beside it;
    * ``"0.12"`` (0.11 too): the same as 0.10, one or two folders down
      (``playbook/project/``).

    The master playbook is the play whose roles include ``micado_master/...`` roles
    found in the ``roles/`` folder beside it. Paths are POSIX strings.

    Attributes:
        name: the shape, ``"0.9"``, ``"0.10"`` or ``"0.12"``.
        run_dir: the master playbook's folder, relative to the tree root;
            ``ansible-playbook`` runs there, as the release's relative paths expect.
        playbook: the master playbook's file name in ``run_dir``.
        host: the inventory host the play targets (``hosts:``).
        variables: the release's own variables (defaults of its settings and paths).
        variable_files: where they are set, relative to ``run_dir``.
        cloud_credentials: where the release reads the cloud credentials, relative to ``run_dir``.
        web_credentials: where it would read the web credentials file, if it says.
        registry_credentials: where it reads container-registry credentials, if it says.
        registry_variable: the variable that says so (``registry_cred_path``, ``docker_cred_path``).
        gce_credentials: where it reads a GCE service account's key (``gce_cred_path``), if it says.
        booleans: the names of the release's variables whose defaults are booleans.
    """

    name: str
    run_dir: str
    playbook: str
    host: str
    variables: dict[str, Any] = field(repr=False, compare=False)
    variable_files: tuple[str, ...]
    cloud_credentials: str
    web_credentials: str | None = None
    registry_credentials: str | None = None
    registry_variable: str | None = None
    gce_credentials: str | None = None
    booleans: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @property
    def settings(self) -> list[str]:
        """The variables a user may set (``create(settings=...)``), sorted."""
        return sorted(name for name in self.variables
                      if name not in MANAGED_VARIABLES and not name.endswith("_cred_path"))


#: The shapes, newest first, with how each is told apart (for messages).
LAYOUTS: tuple[tuple[str, str], ...] = (
    ("0.12", "a master playbook in a sub-folder (playbook/project/), variables in host_vars/<host>.yml"),
    ("0.10", "a master playbook at the top, variables in host_vars/<host>.yml"),
    ("0.9", "a master playbook at the top that sets its variables in play 'vars:'"),
)


@dataclass(frozen=True)
class PlaybookTree:
    """A folder of ansible-micado playbooks, its layout, and what it needs rewritten.

    Attributes:
        root: the top folder of the release.
        layout: the detected :class:`Layout`.
        plan: the rewrites the installed ansible-core needs
            (:func:`micado.installer.compat.check_playbooks`), applied to each master's
            working copy; empty when another ``ansible-playbook`` was named.
    """

    root: Path
    layout: Layout
    plan: compat.RewritePlan = field(default_factory=compat.RewritePlan, repr=False, compare=False)

    @property
    def run_dir(self) -> Path:
        """The folder the master playbook runs from."""
        return self.root / self.layout.run_dir


def detect_layout(folder: Path) -> PlaybookTree:
    """Find the ansible-micado release in ``folder`` (or in its only sub-folder) by its shape.

    Release tarballs hold one top folder (``ansible-micado-<version>/``), so a folder
    with exactly one sub-folder is looked into too.

    Args:
        folder: an unpacked tarball or a playbook folder.

    Returns:
        The tree root and its layout (no rewrite plan yet: see :func:`check_tree`).

    Raises:
        InstallError: no master playbook, or one whose shape is unknown; the message
            says what was looked for.
    """
    candidates = [folder]
    if folder.is_dir():
        entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            candidates.insert(0, entries[0])  # the release's own top folder is its root
    for candidate in candidates:
        found = _master_playbooks(candidate)
        if found:
            depth = min(len(path.relative_to(candidate).parts) for path, _ in found)
            shallowest = [(path, play) for path, play in found if len(path.relative_to(candidate).parts) == depth]
            if len(shallowest) > 1:
                names = ", ".join(str(path.relative_to(candidate)) for path, _ in shallowest)
                raise InstallError(f"{folder} holds more than one MiCADO master playbook ({names}); "
                                   "pass playbook= the folder of one release")
            path, play = shallowest[0]
            return PlaybookTree(root=candidate, layout=_layout(candidate, path, play))
    shapes = "; ".join(f"MiCADO {name}: {what}" for name, what in LAYOUTS)
    raise InstallError(
        f"no ansible-micado release found in {folder}: looked for a playbook whose play runs the "
        f"'{_MASTER_ROLE}/...' roles of a roles/ folder beside it ({shapes})"
    )


def _master_playbooks(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(file, play)`` for every play that deploys a MiCADO master, near the top of ``root``."""
    found = []
    folders = [root]
    for _depth in range(_SEARCH_DEPTH + 1):
        next_folders = []
        for folder in folders:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir() and not entry.is_symlink() and entry.name not in _NOT_PLAYBOOK_FOLDERS:
                    next_folders.append(entry)
                elif entry.suffix in (".yml", ".yaml") and entry.is_file() and not entry.is_symlink():
                    play = _master_play(entry)
                    if play is not None:
                        found.append((entry, play))
        folders = next_folders
    return found


def _master_play(path: Path) -> dict[str, Any] | None:
    """The play of ``path`` that runs a ``micado_master/...`` role present beside it, if any."""
    try:
        if path.stat().st_size > _MAX_PLAYBOOK_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if _MASTER_ROLE not in text or "hosts" not in text:
        return None
    document = _load_yaml(text)
    if not isinstance(document, list):
        return None
    for play in document:
        if not isinstance(play, dict) or not isinstance(play.get("hosts"), str):
            continue
        for role in play.get("roles") or []:
            name = role.get("role", role.get("name")) if isinstance(role, dict) else role
            if (isinstance(name, str) and name.split("/")[0] == _MASTER_ROLE
                    and (path.parent / "roles" / name).is_dir()):
                return play
    return None


_MAX_PLAYBOOK_BYTES = 1 << 20


def _load_yaml(text: str) -> Any:
    from micado.config.bounded_yaml import YamlSyntaxError, safe_load

    try:
        return safe_load(text)
    except (YamlSyntaxError, RecursionError, ValueError):
        return None


def _layout(root: Path, playbook: Path, play: dict[str, Any]) -> Layout:
    run_dir = playbook.parent
    host = play["hosts"]
    where = playbook.relative_to(root)
    variable_files: list[str] = []
    play_vars = play.get("vars")
    if play_vars:
        name = "0.9"
        variables = _merged(play_vars)
        if variables is None:
            raise InstallError(f"{where}: the play's 'vars' is neither a mapping nor a list of mappings")
        variable_files.append(playbook.name)
    else:
        host_vars = _first_file(run_dir / "host_vars", host)
        if host_vars is None:
            shapes = "; ".join(f"MiCADO {n}: {what}" for n, what in LAYOUTS)
            raise InstallError(
                f"{where} deploys a MiCADO master but its release has a shape micado-client does not "
                f"know: no play 'vars' and no host_vars/{host}.yml beside it ({shapes})"
            )
        name = "0.10" if run_dir == root else "0.12"
        variables = {}
        for path in [_first_file(run_dir / "group_vars", "all"), host_vars]:
            if path is None:
                continue
            loaded = _load_yaml(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise InstallError(f"{path.relative_to(root)} is not a mapping of variables")
            variables.update(loaded)
            variable_files.append(path.relative_to(run_dir).as_posix())
    cloud = _path_variable(variables, "cloud_cred_path", where)
    if cloud is None:
        raise InstallError(f"{where}: the release does not say where it reads the cloud credentials "
                           "(no 'cloud_cred_path' variable)")
    registry_variable = next((name_ for name_ in _REGISTRY_PATH_VARIABLES if name_ in variables), None)
    registry = _path_variable(variables, registry_variable, where) if registry_variable is not None else None
    booleans = {key for key, value in variables.items() if isinstance(value, bool)}
    for defaults in sorted(run_dir.glob("roles/**/defaults/main.y*ml")):
        loaded = _load_yaml(defaults.read_text(encoding="utf-8", errors="replace"))
        if isinstance(loaded, dict):
            booleans |= {key for key, value in loaded.items() if isinstance(value, bool)}
    return Layout(
        name=name, run_dir=run_dir.relative_to(root).as_posix(), playbook=playbook.name, host=host,
        variables=variables, variable_files=tuple(variable_files), cloud_credentials=cloud,
        web_credentials=_path_variable(variables, "micado_cred_path", where),
        registry_credentials=registry, registry_variable=registry_variable, booleans=frozenset(booleans),
        gce_credentials=_path_variable(variables, "gce_cred_path", where),
    )


def _merged(play_vars: Any) -> dict[str, Any] | None:
    if isinstance(play_vars, dict):
        return dict(play_vars)
    if isinstance(play_vars, list) and all(isinstance(item, dict) for item in play_vars):
        merged: dict[str, Any] = {}
        for item in play_vars:
            merged.update(item)
        return merged
    return None


def _first_file(folder: Path, stem: str) -> Path | None:
    for suffix in (".yml", ".yaml", ""):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _path_variable(variables: dict[str, Any], name: str, where: Path) -> str | None:
    """A file path variable of the release, relative to the playbook's folder and inside it."""
    value = variables.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or "{{" in value or not value.strip():
        raise InstallError(f"{where}: {name} is {value!r}, not a plain file path micado-client can fill in")
    normal = posixpath.normpath(value.strip())
    if normal.startswith(("/", "..")):
        raise InstallError(f"{where}: {name} {value!r} points outside the playbooks' folder")
    return normal


#: How a task may use a file named by a variable: its content read as variables, or moved as it is.
_VARS_READERS = frozenset({"include_vars"})
_CHECKERS = frozenset({"stat"})
_VERBATIM_READERS = frozenset({"copy", "slurp", "fetch"})
#: Keys of a task (or play) that name no file read: conditions, names, loops...
_TASK_KEYWORDS = frozenset({"name", "when", "tags", "register", "notify", "listen", "changed_when",
                            "failed_when", "until", "retries", "delay", "delegate_to", "become", "become_user",
                            "no_log", "ignore_errors", "loop_control", "run_once", "environment", "vars",
                            "hosts", "gather_facts", "remote_user", "connection", "check_mode"})
#: Keys that hold more tasks or plays.
_NESTED_TASKS = frozenset({"block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"})


def file_reads(run_dir: Path, variable: str) -> frozenset[str]:
    """How the release's tasks use the file that ``variable`` names (e.g. ``cloud_cred_path``).

    Every task file below ``run_dir`` is looked at (not templates, files or variable
    files: :func:`micado.installer.compat.plan_rewrites` looks at the same ones). A task
    whose action's arguments mention ``variable`` is counted by its action:

    * ``"vars"``: ``include_vars`` reads the file as variables, whose strings Ansible
      evaluates as templates where the play uses them;
    * ``"checked"``: ``stat`` looks whether it is there;
    * ``"verbatim"``: ``copy``, ``slurp``, ``fetch`` move its bytes;
    * ``"other:<action>"``: anything else (``template`` would evaluate its text).

    Returns:
        The uses found; empty when no task names the variable.
    """
    word = re.compile(rf"\b{re.escape(variable)}\b")
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        actions = [key for key in node if isinstance(key, str) and key not in _TASK_KEYWORDS
                   and key not in _NESTED_TASKS and key != "args"]
        mentions = word.search(repr(node.get("args", ""))) is not None
        for key, value in node.items():
            if key in _NESTED_TASKS:
                walk(value)
            elif key in actions and (mentions or word.search(repr(value))):
                action = key.rsplit(".", 1)[-1]  # ansible.builtin.copy -> copy
                found.add("vars" if action in _VARS_READERS else "checked" if action in _CHECKERS
                          else "verbatim" if action in _VERBATIM_READERS else f"other:{action}")

    for path in compat.playbook_files(run_dir):
        try:
            text = path.read_bytes()[:_MAX_PLAYBOOK_BYTES + 1].decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if word.search(text):
            document = _load_yaml(text) if len(text) <= _MAX_PLAYBOOK_BYTES else None
            if document is None:
                found.add("other:unreadable task file")  # cannot tell: counted as a use that templates
            walk(document)
    return frozenset(found)


def release_digest(root: Path) -> str:
    """A checksum of a release tree: the SHA-256 of every file's path and bytes, in path order.

    It names the release a master was made with whatever it came from (a tag, a
    tarball, a folder or a URL), so that a later play on that master can make sure it
    runs the same playbooks. Symbolic links count by their target's text.

    Raises:
        InstallError: a file of the tree cannot be read.
    """
    digest = hashlib.sha256()
    try:
        for folder, subfolders, files in os.walk(root):
            subfolders.sort()
            for name in sorted(files):
                path = Path(folder) / name
                relative = path.relative_to(root).as_posix().encode()
                digest.update(len(relative).to_bytes(4, "big") + relative)
                data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
                digest.update(len(data).to_bytes(8, "big") + data)
    except OSError as exc:
        raise InstallError(f"cannot read the playbooks in {root}: {exc.strerror or exc}") from None
    return "sha256:" + digest.hexdigest()


def playbook_tags(path: Path) -> frozenset[str]:
    """The tags named anywhere in one playbook or task file (plays, roles, blocks, tasks)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            tags = node.get("tags")
            if isinstance(tags, str):
                found.update(tag.strip() for tag in tags.split(","))
            elif isinstance(tags, list):
                found.update(tag for tag in tags if isinstance(tag, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    text = compat.read_task_file(path)
    if text is not None:
        walk(_load_yaml(text))
    return frozenset(found)


def release_tags(tree: PlaybookTree) -> frozenset[str]:
    """Every tag the release's plays and tasks name (``update-auth``, ``edge-files``...)."""
    found: set[str] = set()
    for path in compat.playbook_files(tree.run_dir):
        found |= playbook_tags(path)
    return frozenset(found)


def release_url(version: str) -> str:
    """Where the tarball of a release tag is downloaded from.

    :data:`RELEASE_URL`, or the template in :envvar:`MICADO_RELEASE_URL` when set.

    Raises:
        InvalidArgument: :envvar:`MICADO_RELEASE_URL` is not an http(s) URL with ``{version}``.
    """
    template = os.environ.get(ENV_RELEASE_URL) or RELEASE_URL
    if "{version}" not in template or urlparse(template).scheme not in ("http", "https"):
        raise InvalidArgument(f"{ENV_RELEASE_URL} must be an http(s) URL holding '{{version}}', "
                              f"e.g. {RELEASE_URL}")
    return template.replace("{version}", version)


def check_tree(tree: PlaybookTree) -> PlaybookTree:
    """``tree`` with its rewrite plan, once the installed ansible-core can run it after the rewrites.

    Raises:
        InstallError: a construct no rewrite covers
            (:func:`micado.installer.compat.check_playbooks`).
    """
    plan = compat.check_playbooks(tree.run_dir, tree.layout.playbook, known_booleans=tree.layout.booleans)
    return PlaybookTree(root=tree.root, layout=tree.layout, plan=plan)


class PlaybookSource:
    """Where the ansible-micado playbooks come from.

    Exactly one of the two arguments may be given; with neither, the release
    :func:`default_micado_version` (:envvar:`MICADO_VERS`, else :data:`DEFAULT_MICADO_VERSION`) is used.

    Args:
        playbook: a local tarball, a local folder, or an ``http(s)://`` URL of a tarball.
        micado_version: a release tag of ansible-micado, e.g. ``"v0.12.0"``
            (a missing leading ``v`` is added).

    Raises:
        InvalidArgument: both are given, the version is malformed, or ``playbook``
            is neither a URL nor an existing file or folder.
    """

    def __init__(self, playbook: str | os.PathLike[str] | None = None, *, micado_version: str | None = None):
        if playbook is not None and micado_version is not None:
            raise InvalidArgument("give either playbook= or micado_version=, not both")
        self.version: str | None = None
        self.url: str | None = None
        self.path: Path | None = None
        if playbook is None:
            version = micado_version or default_micado_version()
            if not isinstance(version, str) or not _VERSION_RE.match(version):
                given = "micado_version" if micado_version else ENV_MICADO_VERSION
                raise InvalidArgument(
                    f"{given}={version!r} is not a release tag like {DEFAULT_MICADO_VERSION!r}"
                )
            self.version = version if version.startswith("v") else f"v{version}"
            self.url = release_url(self.version)
        elif isinstance(playbook, str) and urlparse(playbook).scheme in ("http", "https"):
            self.url = playbook
        else:
            path = Path(playbook).expanduser()
            if not path.exists():
                raise InvalidArgument(
                    f"playbook={str(playbook)!r} is neither an http(s) URL nor an existing "
                    "tarball or folder"
                )
            self.path = path.resolve()

    def __repr__(self) -> str:
        where = self.version or (archive.display_url(self.url) if self.url else str(self.path))
        return f"PlaybookSource({where!r})"

    def _cache_key(self) -> str:
        if self.version is not None and self.url == RELEASE_URL.format(version=self.version):
            return self.version
        if self.version is not None and self.url is not None:  # a mirror: never mixed with the real one
            return f"{self.version}-" + hashlib.sha256(self.url.encode()).hexdigest()[:12]
        if self.url is not None:
            return "url-" + hashlib.sha256(self.url.encode()).hexdigest()[:20]
        assert self.path is not None
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return "file-" + digest.hexdigest()[:20]

    def resolve(self, *, timeout: float = 300.0, progress: ProgressCallback | bool | None = None) -> PlaybookTree:
        """Return the playbooks, downloading and unpacking them if not cached yet.

        A local folder is used where it is (:func:`prepare_workdir` copies it).

        Args:
            timeout: seconds allowed for a download.
            progress: receives ``("playbook", message)`` events.

        Returns:
            The tree in the cache (or the local folder) and its layout.

        Raises:
            InstallError: the download failed, the tarball is unreadable or unsafe,
                the layout is unknown, or the playbooks use what the installed
                ansible-core removed (:func:`micado.installer.compat.check_playbooks`).
            MicadoTimeout: the download ran past ``timeout``.
        """
        report = as_callback(progress)
        if self.path is not None and self.path.is_dir():
            return check_tree(detect_layout(self.path))
        cache = paths.ensure_dir(paths.playbook_cache_dir())
        key = self._cache_key()
        target = cache / key
        if target.is_dir():
            report("playbook", f"using the cached playbooks {key}")
            return check_tree(detect_layout(target))
        downloaded: Path | None = None
        if self.path is not None:
            tarball = self.path
        else:
            assert self.url is not None
            report("playbook", f"downloading {archive.display_url(self.url)}")
            try:
                downloaded = archive.download(
                    self.url, cache / f"{key}.tar.gz", timeout=timeout, progress=report
                )
            except InstallError as exc:
                if self.version is None:
                    raise
                raise InstallError(
                    f"{exc} (is {self.version!r} an ansible-micado release tag? The newest known "
                    f"is {DEFAULT_MICADO_VERSION!r}; or pass playbook= a tarball, folder or URL)"
                ) from exc
            tarball = downloaded
        report("playbook", f"unpacking {tarball.name}")
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
        try:
            archive.safe_extract(tarball, staging)
            try:
                detect_layout(staging)  # refuse to cache something we cannot use
            except InstallError as exc:
                raise InstallError(str(exc).replace(str(staging), f"the tarball {tarball}")) from None
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # not a concurrent resolve winning the race
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging)
            if downloaded is not None:
                downloaded.unlink(missing_ok=True)
        return check_tree(detect_layout(target))


def resolve_source(
    playbook: str | os.PathLike[str] | None = None,
    micado_version: str | None = None,
    *,
    timeout: float = 300.0,
    progress: ProgressCallback | bool | None = None,
) -> PlaybookTree:
    """Find the playbooks: ``PlaybookSource(playbook, micado_version=...).resolve()``.

    Args:
        playbook: a local tarball, a local folder or an http(s) URL; or ``None``.
        micado_version: an ansible-micado release tag; default :func:`default_micado_version`.
        timeout: seconds allowed for a download.
        progress: receives ``("playbook", message)`` events.

    Returns:
        The playbooks and their layout.

    Raises:
        InvalidArgument: see :class:`PlaybookSource`.
        InstallError: see :meth:`PlaybookSource.resolve`.
        MicadoTimeout: the download ran past ``timeout``.
    """
    return PlaybookSource(playbook, micado_version=micado_version).resolve(timeout=timeout, progress=progress)
