"""The Ansible installer: playbook sources, safe extraction, layouts, working copy, real runs.

Everything runs for real: tarballs are built and unpacked on disk, URLs are served
by a loopback HTTP server, ``ansible-playbook`` is the one of this environment, and
the end-to-end runs go over SSH to a local sshd "VM" and end with the TOSCA
Submitter emulator answering over verified TLS on the VM's address.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from micado.config import paths
from micado.exceptions import CredentialsError, InstallError, InvalidArgument, MicadoTimeout
from micado.installer import playbooks
from micado.installer.ansible import (
    DEFAULT_MICADO_VERSION,
    PlaybookSource,
    cleanup_workdir,
    detect_layout,
    install,
    prepare_workdir,
    resolve_source,
    run_playbook,
)
from micado.installer.compat import rewrite_condition
from micado.installer.runner import ansible_playbook_command
from micado.testing.playbook import CERT_FILE, READY_FILE, build_tarball, build_tree

from leftovers import processes_mentioning
from loopback import FileServer

# Quotes, a shell variable, YAML's ": " and " #", braces and a backslash: all must arrive literally.
PASSWORD = "Web-Pa55 {7*7} 'q\" $HOME: #7f3e!\\"
CLOUD_SECRET = "cloud-Secret-0c1d"
CLOUD_CREDENTIALS = f"""\
resource:
  - type: nova
    auth_data:
      username: cloud-user
      password: {CLOUD_SECRET}
"""


#: A test that runs the real ansible-playbook (a few seconds each): out of the fast loop.
RUNS_ANSIBLE = pytest.mark.stack


@pytest.fixture
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MiCADO dir with a cloud credentials file, and a HOME of its own."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    directory = tmp_path / "micado-cli"
    monkeypatch.setenv(paths.ENV_DIR, str(directory))
    paths.ensure_dir()
    paths.credentials_file().write_text(CLOUD_CREDENTIALS)
    return directory


@pytest.fixture
def http_files():
    """A loopback HTTP server: put bytes in ``.files[path]``, see requests in ``.hits``."""
    with FileServer() as server:
        yield server


# --- sources and cache -------------------------------------------------------------------


@pytest.mark.parametrize("layout,host,run_dir", [
    ("0.9", "micado-target", "."), ("0.10", "micado", "."), ("0.12", "micado", "playbook/project"),
])
def test_layouts_are_detected_from_their_files(tmp_path: Path, layout: str, host: str, run_dir: str) -> None:
    tree = build_tree(layout, tmp_path / "top" / f"ansible-micado-{layout}")
    for folder in (tree, tmp_path / "top"):  # the tree itself, or the folder holding only it
        found = detect_layout(folder)
        assert found.root == tree
        assert found.layout.name == layout
        assert found.layout.host == host
        assert found.layout.run_dir == run_dir


def test_unknown_layout_lists_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text("---\n")
    with pytest.raises(InstallError) as caught:
        detect_layout(tmp_path)
    message = str(caught.value)
    for marker in ("micado_master/", "roles/", "host_vars/<host>.yml", "play 'vars:'", str(tmp_path)):
        assert marker in message


def test_an_unseen_release_keeping_a_known_shape_is_recognised(tmp_path: Path) -> None:
    """Other file names, another host, deeper folders: the shape decides, not a list of files."""
    tree = build_tree("0.12", tmp_path / "ansible-micado-0.13.0")
    project = tree / "playbook" / "project"
    (project / "micado.yml").rename(project / "deploy-master.yml")
    (project / "host_vars" / "micado.yml").rename(project / "host_vars" / "master-node.yml")
    text = (project / "deploy-master.yml").read_text().replace("hosts: micado", "hosts: master-node")
    (project / "deploy-master.yml").write_text(text)
    found = detect_layout(tmp_path)
    assert (found.root, found.layout.name, found.layout.playbook, found.layout.host) == (
        tree, "0.12", "deploy-master.yml", "master-node")
    assert found.layout.cloud_credentials == "credentials/credentials-cloud-api.yml"


def test_a_master_playbook_without_its_variables_is_an_unknown_shape(tmp_path: Path) -> None:
    tree = build_tree("0.10", tmp_path / "ansible-micado-x")
    shutil.rmtree(tree / "host_vars")
    with pytest.raises(InstallError, match="shape micado-client does not know"):
        detect_layout(tree)


def test_a_folder_is_used_where_it_is(micado_dir: Path, tmp_path: Path) -> None:
    tree = build_tree("0.12", tmp_path / "mine")
    resolved = PlaybookSource(tree).resolve()
    assert resolved.root == tree
    assert resolved.layout.name == "0.12"
    assert not paths.playbook_cache_dir().exists()


def test_a_tarball_is_unpacked_once_into_the_cache(micado_dir: Path, tmp_path: Path) -> None:
    tarball = build_tarball("0.9", tmp_path)
    assert tarball.name == "ansible-micado-0.9.1-rev1.tar.gz"
    events: list[tuple[str, str]] = []
    first = PlaybookSource(tarball).resolve(progress=lambda *event: events.append(event))
    assert first.layout.name == "0.9"
    assert first.root.name == "ansible-micado-0.9.1-rev1"
    assert first.root.parent.parent == paths.playbook_cache_dir()
    marker = first.root / "left-by-the-test"
    marker.write_text("cached")
    again = PlaybookSource(str(tarball)).resolve(progress=lambda *event: events.append(event))
    assert again == first
    assert marker.exists()
    assert [stage for stage, _ in events] == ["playbook", "playbook"]
    assert "cached" in events[-1][1]
    # Another tarball (other content) gets its own cache entry.
    other = PlaybookSource(build_tarball("0.12", tmp_path)).resolve()
    assert other.layout.name == "0.12"
    assert other.root.parent != first.root.parent
    assert not list(paths.playbook_cache_dir().glob(".*"))  # no staging folders left


def test_a_url_is_downloaded_once(micado_dir: Path, tmp_path: Path, http_files) -> None:
    http_files.files["/pb/micado.tar.gz"] = build_tarball("0.12", tmp_path).read_bytes()
    url = f"{http_files.url}/pb/micado.tar.gz"
    first = PlaybookSource(url).resolve()
    second = PlaybookSource(url).resolve()
    assert first == second
    assert first.layout.name == "0.12"
    assert http_files.hits == ["/pb/micado.tar.gz"]
    cache = paths.playbook_cache_dir()
    assert sorted(entry.name for entry in cache.iterdir()) == [first.root.parent.name]  # no tarball kept


def test_a_missing_url_is_an_install_error(micado_dir: Path, http_files) -> None:
    url = f"{http_files.url}/nothing.tar.gz"
    with pytest.raises(InstallError) as caught:
        PlaybookSource(url).resolve()
    assert url in str(caught.value)
    assert "404" in str(caught.value)
    assert list(paths.playbook_cache_dir().iterdir()) == []


def test_url_secrets_stay_out_of_messages_and_progress(
    micado_dir: Path, tmp_path: Path, http_files, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="micado")
    http_files.files["/private/micado.tar.gz?token=Tok3n-s3cret"] = build_tarball("0.9", tmp_path).read_bytes()
    base = http_files.url.replace("http://", "http://deploy:Url-Pa55w0rd@")
    events: list[tuple[str, str]] = []
    source = PlaybookSource(f"{base}/private/micado.tar.gz?token=Tok3n-s3cret")
    assert source.resolve(progress=lambda *event: events.append(event)).layout.name == "0.9"
    with pytest.raises(InstallError) as caught:
        PlaybookSource(f"{base}/private/missing.tar.gz?token=Tok3n-s3cret").resolve()
    shown = " ".join([repr(source), str(caught.value), caplog.text, *(message for _, message in events)])
    assert "deploy:***@127.0.0.1" in shown
    assert "?..." in shown
    assert "404" in str(caught.value)
    assert "Url-Pa55w0rd" not in shown
    assert "Tok3n-s3cret" not in shown


def test_a_release_is_fetched_by_version_and_cached_per_version(
    micado_dir: Path, tmp_path: Path, http_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = PlaybookSource()
    assert source.version == DEFAULT_MICADO_VERSION
    assert source.url == (
        f"https://github.com/micado-scale/ansible-micado/archive/refs/tags/{DEFAULT_MICADO_VERSION}.tar.gz"
    )
    # The same code path against a loopback "GitHub" (the URL template is configuration).
    monkeypatch.setattr(playbooks, "RELEASE_URL", http_files.url + "/archive/refs/tags/{version}.tar.gz")
    http_files.files["/archive/refs/tags/v0.9.1-rev1.tar.gz"] = build_tarball("0.9", tmp_path).read_bytes()
    tree = PlaybookSource(micado_version="0.9.1-rev1").resolve()
    assert tree.layout.name == "0.9"
    assert tree.root.parent == paths.playbook_cache_dir() / "v0.9.1-rev1"
    PlaybookSource(micado_version="v0.9.1-rev1").resolve()
    assert http_files.hits == ["/archive/refs/tags/v0.9.1-rev1.tar.gz"]
    with pytest.raises(InstallError) as caught:
        PlaybookSource(micado_version="v9.9.9").resolve()
    assert "404" in str(caught.value)
    assert "'v9.9.9'" in str(caught.value)
    assert "release tag" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"playbook": "x", "micado_version": "v0.12.0"}, ["either"]),
        ({"micado_version": "../../etc"}, ["micado_version", "../../etc"]),
        ({"micado_version": "latest"}, ["micado_version", "latest"]),
        ({"playbook": "/no/such/playbooks.tar.gz"}, ["/no/such/playbooks.tar.gz", "URL", "tarball", "folder"]),
    ],
)
def test_bad_sources_are_refused_before_anything_happens(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        PlaybookSource(**kwargs)
    for word in words:
        assert word in str(caught.value)


# --- unsafe tarballs ---------------------------------------------------------------------


def _evil_tarball(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    """A release-like tarball with one extra ``member``."""
    release = build_tree("0.9", path.parent / f"{path.name}.tree")
    with tarfile.open(path, "w:gz") as archive:
        archive.add(release, arcname="ansible-micado-6.6.6")
        member.size = len(data) if member.isfile() else 0
        archive.addfile(member, io.BytesIO(data) if data else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "member,reason",
    [
        (_member("ansible-micado-6.6.6/../../escaped.txt"), "escapes"),
        (_member("/tmp/absolute-escape.txt"), "absolute"),
        (_member("ansible-micado-6.6.6/link", tarfile.SYMTYPE, "../../../outside"), "symbolic link"),
        (_member("ansible-micado-6.6.6/abs-link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_member("ansible-micado-6.6.6/hard", tarfile.LNKTYPE, "../outside/file"), "hard link"),
        (_member("ansible-micado-6.6.6/hard-abs", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
        (_member("ansible-micado-6.6.6/null", tarfile.CHRTYPE), "device"),
        (_member("ansible-micado-6.6.6/disk", tarfile.BLKTYPE), "device"),
        (_member("ansible-micado-6.6.6/pipe", tarfile.FIFOTYPE), "FIFO"),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out", "hardlink-absolute",
         "char-device", "block-device", "fifo"],
)
def test_unsafe_tarballs_are_refused_naming_the_member(
    micado_dir: Path, tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    tarball = _evil_tarball(tmp_path / "evil.tar.gz", member, b"pwned" if member.isfile() else b"")
    paths.ensure_dir(paths.playbook_cache_dir())
    before = set(tmp_path.rglob("*"))
    with pytest.raises(InstallError) as caught:
        PlaybookSource(tarball).resolve()
    assert repr(member.name) in str(caught.value)
    assert reason in str(caught.value)
    assert list(paths.playbook_cache_dir().iterdir()) == []  # nothing cached, no staging left
    assert set(tmp_path.rglob("*")) == before  # nothing written anywhere else
    assert not Path("/tmp/absolute-escape.txt").exists()


def test_a_chain_of_links_each_pointing_inside_is_refused(micado_dir: Path, tmp_path: Path) -> None:
    # l1 -> ".." is the top folder, l1/l2 -> ".." the archive root, l1/l2/l3 -> ".." outside:
    # each link looks fine on its own; the file written through them would land outside.
    tarball = tmp_path / "chain.tar.gz"
    top = "ansible-micado-6.6.6"
    with tarfile.open(tarball, "w:gz") as archive:
        for name in ("micado-master.yml", "sample-hosts.yml"):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = 4
            archive.addfile(info, io.BytesIO(b"---\n"))
        folder = tarfile.TarInfo(f"{top}/d1")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for name in ("d1/l1", "d1/l1/l2", "d1/l1/l2/l3"):
            archive.addfile(_member(f"{top}/{name}", tarfile.SYMTYPE, ".."))
        payload = _member(f"{top}/d1/l1/l2/l3/chain-escaped.txt")
        payload.size = 5
        archive.addfile(payload, io.BytesIO(b"pwned"))
    paths.ensure_dir(paths.playbook_cache_dir())
    with pytest.raises(InstallError) as caught:
        PlaybookSource(tarball).resolve()
    assert f"{top}/d1/l1/l2" in str(caught.value)
    assert "through the symbolic link" in str(caught.value)
    assert list(paths.playbook_cache_dir().iterdir()) == []
    assert not list(tmp_path.parent.rglob("chain-escaped.txt"))


def test_safe_links_inside_the_tree_are_kept(micado_dir: Path, tmp_path: Path) -> None:
    tarball = _evil_tarball(tmp_path / "ok.tar.gz", _member("ansible-micado-6.6.6/alias.yml", tarfile.SYMTYPE,
                                                             "micado-master.yml"))
    tree = PlaybookSource(tarball).resolve()
    assert (tree.root / "alias.yml").is_symlink()
    assert (tree.root / "alias.yml").read_text() == (tree.root / "micado-master.yml").read_text()


def test_a_file_that_is_no_tarball_is_refused(micado_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "micado.tar.gz"
    bogus.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(InstallError, match="not a readable tar archive"):
        PlaybookSource(bogus).resolve()


def test_a_tarball_without_playbooks_is_not_cached(micado_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "other"
    (source / "project").mkdir(parents=True)
    (source / "project" / "site.yml").write_text("---\n")
    tarball = tmp_path / "other.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(source, arcname="other")
    with pytest.raises(InstallError, match="no ansible-micado release found in the tarball .*other.tar.gz"):
        PlaybookSource(tarball).resolve()
    assert list(paths.playbook_cache_dir().iterdir()) == []


# --- working copy ------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _load(path: Path):
    """Load a YAML file as ``ansible-playbook`` does (its own loader, which knows ``!unsafe``)."""
    from ansible.parsing.yaml.loader import AnsibleLoader

    return AnsibleLoader(path.read_text()).get_single_data()


@pytest.mark.parametrize("layout", ["0.9", "0.10", "0.12"])
def test_the_working_copy_has_inventory_credentials_and_config(
    micado_dir: Path, tmp_path: Path, layout: str
) -> None:
    tree = PlaybookSource(build_tarball(layout, tmp_path)).resolve()
    key = tmp_path / "id_ecdsa"
    registries = tmp_path / "registries.yml"
    registries.write_text("configs:\n  registry-1.docker.io:\n    auth:\n      username: me\n"
                          "      password: registry-Secret-77\n")
    work = prepare_workdir(
        "srv-1", tree, host="127.0.0.42", micado_user="admin-1", micado_password=PASSWORD,
        ssh_user="cloud", ssh_port=2222, ssh_key=key, registry_credentials=registries,
        settings={"enable_occopus": True, "web_session_timeout": 30, "grafana_admin_pwd": "grafana-Secret-1"},
    )
    assert work.path == paths.work_dir("srv-1")
    assert _mode(work.path) == 0o700

    # The web login reaches the release as the mapping 'security', with the settings, as extra vars.
    extra = _load(work.extra_vars)
    assert extra["security"] == {"authentication": {"username": "admin-1", "password": PASSWORD},
                                 "tls": {"provision_method": "self-signed"}}
    assert (extra["enable_occopus"], extra["web_session_timeout"]) == (True, 30)
    # No web credentials file: the release would read it as text (0.11/0.12) and it would sit on disk.
    assert not list(work.path.rglob("credentials-micado.yml"))
    # The cloud and registry credentials go where the release reads them.
    layout_paths = tree.layout
    assert work.cloud_credentials == work.run_dir / layout_paths.cloud_credentials
    assert work.cloud_credentials.read_text() == CLOUD_CREDENTIALS
    registry_copy = work.run_dir / layout_paths.registry_credentials
    assert registry_copy.read_text() == registries.read_text()
    assert registry_copy.name == ("credentials-registries.yml" if layout == "0.12"
                                  else "credentials-docker-registry.yml")
    assert set(work.secret_files) == {work.cloud_credentials, registry_copy, work.extra_vars}
    for secret_file in work.secret_files:
        assert _mode(secret_file) == 0o600
    for secret in ("registry-Secret-77", "grafana-Secret-1", PASSWORD, CLOUD_SECRET):
        assert secret in work.redact

    # The rewrites the shipped ansible-core needs are in the copy, never in the cached release.
    assert tree.plan.rewrites
    for rewrite in tree.plan.rewrites:
        assert (tree.run_dir / rewrite.file).read_text() != (work.run_dir / rewrite.file).read_text()
    assert "- include:" not in (work.run_dir / "roles/micado_master/start/tasks/main.yml").read_text()

    inventory = _load(work.inventory)
    host = tree.layout.host
    assert list(inventory["all"]["hosts"]) == [host]
    settings = inventory["all"]["hosts"][host]
    assert settings["ansible_host"] == "127.0.0.42"
    assert settings["ansible_port"] == 2222
    assert settings["ansible_user"] == "cloud"
    assert settings["ansible_ssh_private_key_file"] == str(key)
    # Every text value is data to Ansible, never a template (an INI inventory's would be).
    assert 'ansible_host: !unsafe "127.0.0.42"' in work.inventory.read_text()
    assert 'ansible_user: !unsafe "cloud"' in work.inventory.read_text()
    common = settings["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={paths.known_hosts_file()}" in common
    assert "StrictHostKeyChecking=yes" in common
    assert "-F /dev/null" in common
    assert work.inventory == work.path / "inventory.yml"

    config = work.config.read_text()
    assert "host_key_checking = True" in config
    assert f"inventory = {work.inventory}" in config
    for public in (work.inventory, work.config):
        assert PASSWORD not in public.read_text()
        assert CLOUD_SECRET not in public.read_text()
    assert PASSWORD not in repr(work)

    # A second preparation replaces the first (same master id).
    again = prepare_workdir("srv-1", tree, host="127.0.0.43", micado_user="u", micado_password="p2", ssh_key=key)
    assert "127.0.0.43" in again.inventory.read_text()
    assert _load(again.extra_vars)["security"]["authentication"]["password"] == "p2"


def test_the_working_copy_needs_cloud_credentials_and_a_sane_id(micado_dir: Path, tmp_path: Path) -> None:
    tree = detect_layout(build_tree("0.9", tmp_path / "tree"))
    common = dict(host="127.0.0.2", micado_user="admin", micado_password=PASSWORD, ssh_key=tmp_path / "k")
    with pytest.raises(CredentialsError) as caught:
        prepare_workdir("srv", tree, cloud_credentials=tmp_path / "missing.yml", **common)
    assert "missing.yml" in str(caught.value)
    broken = tmp_path / "broken.yml"
    broken.write_text("resource: [\n  - type: nova\n")
    with pytest.raises(CredentialsError, match="broken.yml"):
        prepare_workdir("srv", tree, cloud_credentials=broken, **common)
    for bad in ("", "../escape", "a/b"):
        with pytest.raises(InvalidArgument, match="master id"):
            prepare_workdir(bad, tree, **common)
    with pytest.raises(InvalidArgument, match="micado_password"):
        prepare_workdir("srv", tree, **{**common, "micado_password": ""})
    assert not (micado_dir / "work" / "srv").exists()
    # Jinja in the web login is data to Ansible (tagged !unsafe), not refused.
    work = prepare_workdir("srv", tree, **{**common, "micado_password": "pa{{ 7*7 }}ss{%if%}", "micado_user": "ad{#min"})
    assert _load(work.extra_vars)["security"]["authentication"] == {"username": "ad{#min",
                                                                    "password": "pa{{ 7*7 }}ss{%if%}"}
    assert '!unsafe "pa{{ 7*7 }}ss{%if%}"' in work.extra_vars.read_text()


# --- running ansible-playbook (controller-side plays: no SSH needed) ---------------------


def test_ansible_playbook_comes_from_this_environment() -> None:
    command = ansible_playbook_command()
    assert Path(command[0]).parent == Path(os.sys.executable).parent or command[0] == os.sys.executable


# --- playbooks written for older Ansible: rewritten in the copy, or refused before any cloud call ---
# The releases use `include:` (removed in ansible-core 2.16), `vars:` as a list, template
# delimiters inside conditionals and non-boolean conditionals (both refused by 2.19).


def _with_include(tmp_path: Path) -> Path:
    tree = build_tree("0.12", tmp_path / "old-0.12")
    tasks = tree / "playbook/project/roles/micado_master/start/tasks"
    (tasks / "set-hostname.yml").write_text("---\n- name: Set the hostname\n  debug: msg=hi\n")
    main = tasks / "main.yml"
    main.write_text("---\n- include: set-hostname.yml\n\n" + main.read_text().removeprefix("---\n"))
    return tree


@pytest.mark.parametrize("expression, expected", [
    ("x is defined and x", "x is defined and x is truthy"),
    ("size >= {{ min_size }}", "size >= (min_size)"),
    ("os in {{ versions }} and ok", "os in (versions) and ok is truthy"),
    ("{{ item.that }}", "{{ item.that }}"),  # one template as a whole: 2.19 still evaluates it
    ("enabled or other", "enabled or other is truthy"),  # 'enabled' is a known boolean
    ("(a and b.stat.exists) or not c", "(a is truthy and b.stat.exists) or not c"),
    ("items | length", "(items | length) is truthy"),
    ("flag | bool and name == 'x'", "flag | bool and name == 'x'"),
    ("a if b else c", "a if b else c"),
    ("result.rc", "result.rc is truthy"),
])
def test_conditionals_are_rewritten_generically(expression: str, expected: str) -> None:
    assert rewrite_condition(expression, known_booleans={"enabled"}) == expected


def test_a_statement_inside_a_conditional_is_not_rewritten() -> None:
    with pytest.raises(ValueError, match="statement"):
        rewrite_condition("{% if x %}true{% endif %}")


@RUNS_ANSIBLE
@pytest.mark.parametrize("layout", ["0.9", "0.10", "0.12"])
def test_removed_constructs_are_rewritten_in_the_copy_and_logged(
    micado_dir: Path, tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    tree = PlaybookSource(build_tree(layout, tmp_path / "tree")).resolve()
    kinds = {rewrite.why.split(" ")[0] for rewrite in tree.plan.rewrites}
    assert {"'include'", "template", "ansible-core"} <= kinds
    if layout == "0.9":
        assert "'vars'" in kinds
    with caplog.at_level(logging.INFO, logger="micado"):
        work = prepare_workdir("srv-rw", tree, host="127.0.0.3", micado_user="admin",
                               micado_password=PASSWORD, ssh_key=tmp_path / "k")
    logged = [record.getMessage() for record in caplog.records if "rewrote for ansible-core" in record.getMessage()]
    assert len(logged) == len(tree.plan.rewrites)
    assert any("pre-task/15-create-remote-tmp.yml:15: 'ans_remote_tmp is defined and ans_remote_tmp' -> "
               "'\"ans_remote_tmp is defined and ans_remote_tmp is truthy\"'" in line for line in logged)
    # The shipped ansible-playbook parses the rewritten copy, and refuses the original.
    env = {**os.environ, "ANSIBLE_CONFIG": str(work.config), "ANSIBLE_HOME": str(work.path / ".ansible")}
    command = [*ansible_playbook_command(), "--syntax-check", "-i", str(work.inventory), work.playbook]
    rewritten = subprocess.run(command, cwd=work.run_dir, env=env, capture_output=True, text=True, timeout=120)
    assert rewritten.returncode == 0, rewritten.stdout + rewritten.stderr
    original = subprocess.run(command, cwd=tree.run_dir, env=env, capture_output=True, text=True, timeout=120)
    assert original.returncode != 0


@pytest.mark.parametrize("task, line, problem", [
    ("- include: set-hostname.yml name=x\n", 2, "inline arguments"),
    ("- debug: msg=hi\n  when: '{% if x %}true{% endif %}'\n", 3, "statement"),
    ("- debug: msg=hi\n  sudo: true\n", 3, "'sudo' keyword was removed"),
])
def test_what_no_rewrite_covers_is_refused_naming_file_and_line(
    micado_dir: Path, tmp_path: Path, task: str, line: int, problem: str
) -> None:
    tree = build_tree("0.12", tmp_path / "old-0.12")
    main = tree / "playbook/project/roles/micado_master/start/tasks/main.yml"
    main.write_text("---\n" + task + main.read_text().removeprefix("---\n"))
    with pytest.raises(InstallError) as caught:
        PlaybookSource(tree).resolve()
    message = str(caught.value)
    assert f"roles/micado_master/start/tasks/main.yml:{line}: " in message
    assert problem in message
    assert "MICADO_ANSIBLE_PLAYBOOK" in message
    assert "playbook=" in message


@RUNS_ANSIBLE
def test_another_ansible_playbook_can_be_named(
    micado_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for the ansible-playbook of an older Ansible: it records that it ran.
    ran = tmp_path / "ran"
    wrapper = tmp_path / "old-ansible" / "ansible-playbook"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\ntouch "{ran}"\nexec "{ansible_playbook_command()[0]}" "$@"\n')
    monkeypatch.setenv("MICADO_ANSIBLE_PLAYBOOK", str(wrapper))
    with pytest.raises(InstallError, match="MICADO_ANSIBLE_PLAYBOOK=.* is not an executable file"):
        PlaybookSource(_with_include(tmp_path)).resolve()  # checked before anything else
    wrapper.chmod(0o755)
    assert ansible_playbook_command() == [str(wrapper)]
    PlaybookSource(_with_include(tmp_path / "again")).resolve()  # that Ansible decides, not us
    tree = PlaybookSource(build_tree("0.9", tmp_path / "fail", fail=True)).resolve()
    assert tree.plan.rewrites == ()  # nothing rewritten for another Ansible
    work = prepare_workdir("srv-old", tree, host="127.0.0.3", micado_user="admin",
                           micado_password=PASSWORD, ssh_key=tmp_path / "k")
    # Here that "older Ansible" is the shipped one: it refuses the unrewritten 0.9 play vars.
    with pytest.raises(InstallError, match="Vars in a Play must be specified as a dictionary"):
        run_playbook(work, timeout=120)
    assert ran.exists()
    assert paths.log_file("srv-old").read_text().startswith(f"# micado-client: {wrapper} ")


@RUNS_ANSIBLE
@pytest.mark.parametrize("layout", ["0.9", "0.10", "0.12"])
def test_a_failing_play_names_the_task_and_the_log(
    micado_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    # The caller's Ansible settings must not matter: ours are explicit.
    home = Path(os.environ["HOME"])
    (home / ".ansible.cfg").write_text("[defaults]\nstdout_callback = json\nhost_key_checking = False\n")
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "json")
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    tree = PlaybookSource(build_tarball(layout, tmp_path, fail=True)).resolve()
    work = prepare_workdir("srv-fail", tree, host="127.0.0.3", micado_user="admin",
                           micado_password=PASSWORD, ssh_key=tmp_path / "k")
    events: list[tuple[str, str]] = []
    with pytest.raises(InstallError) as caught:
        run_playbook(work, progress=lambda *event: events.append(event), timeout=120)
    error = caught.value
    log = paths.log_file("srv-fail")
    assert error.task == "(Emulator) Injected failure"
    assert error.log_path == log
    assert "(Emulator) Injected failure" in str(error)
    assert str(log) in str(error)
    tasks = [message for stage, message in events if stage == "ansible"]
    assert tasks.index("(Emulator) Injected failure") > 0
    assert not any("Start the TOSCA Submitter" in task for task in tasks)  # the play stopped there
    assert _mode(log) == 0o600
    text = log.read_text()
    assert "TASK [(Emulator) Injected failure]" in text
    assert PASSWORD not in text
    assert CLOUD_SECRET not in text
    assert not (home / ".ansible").exists()  # ANSIBLE_HOME is the working copy's


@RUNS_ANSIBLE
def test_an_unreachable_master_is_named_as_such(micado_dir: Path, tmp_path: Path) -> None:
    from micado.testing.vm import free_port

    tree = PlaybookSource(build_tree("0.12", tmp_path / "tree")).resolve()
    work = prepare_workdir("srv-gone", tree, host="127.0.0.1", micado_user="admin", micado_password=PASSWORD,
                           ssh_port=free_port(), ssh_key=tmp_path / "k")  # nothing listens there
    with pytest.raises(InstallError) as caught:
        run_playbook(work, timeout=120)
    assert caught.value.task == "(System) Read the VM environment"
    assert "unreachable" in str(caught.value)


def _custom_play(tmp_path: Path, tasks: str) -> Path:
    """A 0.9-layout tree whose play runs only ``tasks`` (YAML, indented by 4)."""
    tree = build_tree("0.9", tmp_path / "custom")
    (tree / "micado-master.yml").write_text(
        "---\n- name: Custom play\n  hosts: micado-target\n  gather_facts: false\n"
        "  vars:\n    cloud_cred_path: ./credentials-cloud-api.yml\n"
        "  roles:\n    - role: micado_master/start\n      when: false\n"  # a MiCADO release's shape
        "  tasks:\n" + tasks
    )
    return tree


@RUNS_ANSIBLE
def test_secrets_are_masked_in_the_log_even_if_a_task_prints_them(micado_dir: Path, tmp_path: Path) -> None:
    tree = _custom_play(tmp_path, """\
    - name: Load the cloud credentials
      ansible.builtin.include_vars:
        file: ./credentials-cloud-api.yml
        name: cloud
    - name: Careless debug output
      ansible.builtin.debug:
        msg: "the password is {{ security.authentication.password }}"
    - name: More careless debug output
      ansible.builtin.debug:
        var: cloud
""")
    work = prepare_workdir("srv-leak", detect_layout(tree), host="127.0.0.4", micado_user="admin",
                           micado_password=PASSWORD, ssh_key=tmp_path / "k")
    log = run_playbook(work, timeout=120)
    text = log.read_text()
    assert "the password is ********" in text
    assert PASSWORD not in text
    assert json.dumps(PASSWORD)[1:-1] not in text
    assert "cloud-user" in text
    assert CLOUD_SECRET not in text


@RUNS_ANSIBLE
def test_a_play_past_its_deadline_is_killed(micado_dir: Path, tmp_path: Path) -> None:
    tree = _custom_play(tmp_path, """\
    - name: Take a long time
      ansible.builtin.pause:
        seconds: 60
""")
    work = prepare_workdir("srv-slow", detect_layout(tree), host="127.0.0.5", micado_user="admin",
                           micado_password=PASSWORD, ssh_key=tmp_path / "k")
    with pytest.raises(MicadoTimeout) as caught:
        run_playbook(work, timeout=2)
    assert "Take a long time" in str(caught.value)
    assert str(paths.log_file("srv-slow")) in str(caught.value)
    assert processes_mentioning(str(work.inventory)) == []


@RUNS_ANSIBLE
def test_ignored_failures_are_not_blamed(micado_dir: Path, tmp_path: Path) -> None:
    tree = _custom_play(tmp_path, """\
    - name: Allowed to fail
      ansible.builtin.fail:
        msg: never mind
      ignore_errors: true
    - name: Really fails
      ansible.builtin.fail:
        msg: this one counts
""")
    work = prepare_workdir("srv-ign", detect_layout(tree), host="127.0.0.6", micado_user="admin",
                           micado_password=PASSWORD, ssh_key=tmp_path / "k")
    with pytest.raises(InstallError) as caught:
        run_playbook(work, timeout=120)
    assert caught.value.task == "Really fails"
    assert "this one counts" in str(caught.value)


@RUNS_ANSIBLE
def test_a_progress_callback_that_raises_stops_the_play(micado_dir: Path, tmp_path: Path) -> None:
    tree = _custom_play(tmp_path, """\
    - name: Take a long time
      ansible.builtin.pause:
        seconds: 60
""")
    work = prepare_workdir("srv-cb", detect_layout(tree), host="127.0.0.7", micado_user="admin",
                           micado_password=PASSWORD, ssh_key=tmp_path / "k")

    def callback(stage: str, message: str) -> None:
        if message == "Take a long time":
            raise KeyError("the caller gave up")

    with pytest.raises(KeyError):
        run_playbook(work, progress=callback, timeout=120)
    assert processes_mentioning(str(work.inventory)) == []


# --- end to end: over SSH to a local VM --------------------------------------------------


@pytest.mark.parametrize("layout", ["0.9", "0.12"])
def test_the_play_deploys_the_submitter_on_the_vm(
    micado_dir: Path, tmp_path: Path, vm_pool, micado_playbooks, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from micado.installer import ssh
    from micado.testing.tls import split_pem
    from micado.testing.vm import random_loopback_address

    # Every ssh run (ours, Ansible's, the one closing Ansible's connections) is recorded:
    # ssh reads ~/.ssh of the passwd entry (not $HOME), so only -F /dev/null keeps it out.
    calls = tmp_path / "ssh-calls"
    shim = tmp_path / "bin" / "ssh"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" | tr "\\n" " " >> "{calls}"\necho >> "{calls}"\n'
                    f'exec "{shutil.which("ssh")}" "$@"\n')  # one line per call
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")

    keys = ssh.ensure_keypair()
    server_id = f"srv-{layout.replace('.', '-')}"
    vm = vm_pool.boot({"id": server_id, "user_data": f"#cloud-config\nssh_authorized_keys:\n  - {keys.public_key}\n"})
    address = random_loopback_address()
    vm_pool.set_address(server_id, address)
    ssh.wait_for_ssh(address, port=vm_pool.ssh_port, user=vm_pool.user, key=keys.private_key, timeout=30)

    events: list[tuple[str, str]] = []
    if layout == "0.9":  # the three steps one by one
        tree = PlaybookSource(micado_playbooks[layout]).resolve()
        work = prepare_workdir(
            server_id, tree, host=address, micado_user="tester", micado_password=PASSWORD,
            ssh_user=vm_pool.user, ssh_port=vm_pool.ssh_port, ssh_key=keys.private_key,
        )
        log = run_playbook(work, progress=lambda *event: events.append(event), timeout=180)
    else:  # all at once, as the master model does
        tree = resolve_source(playbook=str(micado_playbooks[layout]))
        log = install(
            tree, master_id=server_id, host=address, micado_user="tester", micado_password=PASSWORD,
            key=keys.private_key, port=vm_pool.ssh_port, user=vm_pool.user, timeout=180,
            progress=lambda *event: events.append(event),
        )
    assert tree.layout.name == layout
    assert log == paths.log_file(server_id)

    tasks = [message for stage, message in events if stage == "ansible"]
    assert "micado_master/start : (MiCADO) Start the TOSCA Submitter" in tasks
    assert (vm.root / READY_FILE).is_file()
    recorded = calls.read_text().splitlines()
    assert any(" -O exit " in call for call in recorded)  # Ansible's connection was closed
    assert len(recorded) > 3 and all(call.startswith("-F /dev/null ") or " -F /dev/null " in call
                                     for call in recorded), recorded
    text = log.read_text()
    assert PASSWORD not in text
    assert CLOUD_SECRET not in text
    assert "failed=0" in text

    # The certificate, fetched the way the master model will, verifies the API on the VM address.
    pem = ssh.fetch_file(address, CERT_FILE, tmp_path / "ssl.pem", port=vm_pool.ssh_port,
                         user=vm_pool.user, key=keys.private_key)
    cert = tmp_path / "cert.pem"
    cert.write_bytes(split_pem(pem.read_bytes())[0])
    url = f"https://{address}:{vm_pool.api_port}/toscasubmitter/v2.0/applications/"
    answer = requests.get(url, auth=("tester", PASSWORD), verify=str(cert), timeout=10)
    assert answer.status_code == 200
    assert answer.json()["applications"] == []
    refused = requests.get(url, auth=("tester", "wrong"), verify=str(cert), timeout=10)
    assert refused.status_code == 401
    # The password never sat on the VM's disk or a command line for long.
    assert not (vm.root / "var/lib/micado/submitter.password").exists()

    cleanup_workdir(server_id)
    assert not paths.work_dir(server_id).exists()
    assert log.exists()
    cleanup_workdir(server_id)  # twice is fine

    vm_pool.delete(server_id)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, verify=str(cert), timeout=5)
