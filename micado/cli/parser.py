"""The command line of ``micado``: its commands, options and help, and how a usage error is raised."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from micado import exceptions as errors
from micado._version import __version__
from micado.launcher.registry import DEFAULT_LAUNCHER, launcher_names
from micado.master.spec import ANY, Option
from micado.master.spec import options as create_options

__all__ = ["ENV_MASTER", "FILE", "Parser", "UsageError", "build_parser"]

#: The environment variable naming the master of ``micado app`` when ``--master`` is not given.
ENV_MASTER = "MICADO_MASTER"
#: What shell completion offers for options that take a file: shtab.FILE for our two
#: shells, written out so that every run does not import shtab.
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files"}

_MASTER_ID_HELP = "a stored master's id, or a prefix of it that only it has"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are raised, so that ``main`` reports them like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


class UsageError(errors.InvalidArgument):
    """Bad command-line arguments, as argparse words them; the parser prints its usage with it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``micado``."""
    parser = Parser(prog="micado", description="Create MiCADO masters and manage their applications.")
    parser.add_argument("--version", action="version", version=f"micado {__version__} (micado-client)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (errors too, on stderr)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{init,master,app,completion}")

    init = groups.add_parser("init", help="write a credentials file template to fill in")
    init.add_argument("--print", action="store_true", dest="print_only",
                      help="print the template instead of writing the file")
    master = groups.add_parser("master", help="create, attach, list and destroy MiCADO masters")
    _add_master_commands(master.add_subparsers(dest="command", required=True))
    _add_app_commands(groups.add_parser("app", help="manage the applications of a master"))
    completion = groups.add_parser("completion", help="print the shell completion script (bash or zsh)")
    completion.add_argument("shell", choices=("bash", "zsh"))
    return parser


def _add_file_option(container: Any, *flags: str, **settings: Any) -> None:
    """Add to ``container`` (a parser or a group of its options) an option that takes a file:
    shell completion offers file names for it (shtab reads the action's ``complete``)."""
    container.add_argument(*flags, **settings).complete = FILE


_VAULT_HELP = ("a file holding the password of credentials files encrypted with ansible-vault (default: "
               "$MICADO_VAULT_PASSWORD_FILE; asked for on a terminal when a file is vaulted)")


def _add_vault_option(command: argparse.ArgumentParser) -> None:
    _add_file_option(command, "--vault-password-file", metavar="FILE", help=_VAULT_HELP)


def _add_cloud_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--cloud", metavar="NAME",
                         help="log in to OpenStack as the cloud NAME of your clouds.yaml (openstacksdk's own "
                              "config, e.g. --cloud \"$OS_CLOUD\") instead of the MiCADO credentials file")


def _add_master_commands(commands: Any) -> None:
    """Add the commands of ``micado master``.

    Args:
        commands: the ``master`` group's ``add_subparsers()`` object.
    """
    _add_create_command(commands)
    for name in ("attach", "destroy"):
        command = commands.add_parser(name, help=f"{name} a stored master")
        command.add_argument("master_id", help=_MASTER_ID_HELP)
        _add_cloud_option(command)
    commands.choices["destroy"].add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation (it is asked only on a terminal)")
    _add_vault_option(commands.choices["destroy"])
    commands.add_parser("list", help="list the masters this client created")
    _add_cleanup_command(commands)
    info = commands.add_parser("info", help="show a stored master and its web addresses (passwords only with "
                                            "--show-password)")
    info.add_argument("master_id", help=_MASTER_ID_HELP)
    info.add_argument("--show-password", action="store_true",
                      help="also print the MiCADO web password and the Grafana admin password")
    commands.choices["list"].add_argument("--status", action="store_true",
                                          help="add a live column: whether each master answers (see master status)")
    _add_deploy_command(commands)
    _add_day2_commands(commands)


def _add_create_command(commands: Any) -> None:
    """``master create``: its options are generated from :func:`micado.master.spec.options`."""
    create = commands.add_parser("create", help="create a master on a cloud (password: MICADO_PASSWORD)")
    create.add_argument("--launcher", default=DEFAULT_LAUNCHER,
                        help=f"cloud interface: {', '.join(launcher_names())} (default: {DEFAULT_LAUNCHER})")
    _add_spec_options(create, create_options())
    create.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                        help="a setting of the ansible-micado release, e.g. enable_occopus=true "
                             "(repeatable; values are typed like YAML: true, 600, text)")
    _add_file_option(create, "--kwargs-file", help="JSON file of create() keyword arguments (flags override it)")
    _add_vault_option(create)
    _add_cloud_option(create)


def _add_spec_options(command: argparse.ArgumentParser, options: list[Option]) -> None:
    """One option per argument of :func:`micado.master.spec.options`: help and default declared there."""
    for option in options:
        default = "" if option.default in (None, "") else f" (default: {option.default})"
        command.add_argument("--" + option.name.replace("_", "-"), dest=option.name, type=option.type,
                             help=option.help + default)


def _add_cleanup_command(commands: Any) -> None:
    cleanup = commands.add_parser(
        "cleanup", help="remove what interrupted creates left: servers, addresses, records, working copies")
    cleanup.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    cleanup.add_argument("--include-unowned", action="store_true",
                         help="also remove servers and addresses not made by this MiCADO dir (another dir's, "
                              "or marked without a store identity) launched at least --min-age ago")
    cleanup.add_argument("--min-age", metavar="DURATION",
                         help="with --include-unowned: how long ago the launch must be, e.g. 30m, 2h, 1d or "
                              "seconds (default: 2h)")
    cleanup.add_argument("--yes", "-y", action="store_true",
                         help="do not ask before --include-unowned removes (needed when not on a terminal)")
    _add_vault_option(cleanup)
    _add_cloud_option(cleanup)


def _add_deploy_command(commands: Any) -> None:
    deploy = commands.add_parser(
        "deploy", help="install MiCADO on a host you already have (no cloud VM is made; password: MICADO_PASSWORD)")
    deploy.add_argument("--host", required=True, help="the host's address")
    deploy.add_argument("--ssh-key", required=True, help="your SSH private key for the host (read, never copied)")
    _add_spec_options(deploy, create_options(ANY))
    deploy.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                        help="a setting of the ansible-micado release (repeatable)")
    _add_vault_option(deploy)
    _add_cloud_option(deploy)


_WHICH_MASTER = f"{_MASTER_ID_HELP} (default: ${ENV_MASTER}, or the only stored master)"


def _add_day2_commands(commands: Any) -> None:
    """The commands on a running master: update-auth, reconfigure, edge, add-node, status, ssh, kubeconfig."""
    update = commands.add_parser("update-auth", help="hand the master your current cloud (and registry) credentials "
                                                     "(the release's update-auth tag)")
    update.add_argument("master_id", nargs="?", help=_WHICH_MASTER)
    _add_file_option(update, "--credentials-file", help="a cloud credentials file instead of the MiCADO dir's")
    _add_file_option(update, "--registry-credentials", help="a container-registry credentials file (release format)")
    _add_file_option(update, "--gce-credentials", metavar="FILE",
                     help="a Google service-account JSON for GCE workers (default: the master's, if still there)")
    _add_vault_option(update)
    _add_cloud_option(update)
    reconfigure = commands.add_parser("reconfigure", help="run the master's release again with changed settings")
    reconfigure.add_argument("master_id", nargs="?", help=_WHICH_MASTER)
    reconfigure.add_argument("--set", action="append", required=True, dest="settings", metavar="KEY=VALUE",
                             help="a setting of the release, e.g. enable_occopus=true (repeatable; values "
                                  "are typed like YAML; KEY=null puts the release's default back)")
    _add_vault_option(reconfigure)
    _add_cloud_option(reconfigure)
    edge = commands.add_parser("edge", help="write connect_edge.sh and registries.yaml for an edge device "
                                            "(ansible-micado 0.12.6+; the script holds the join token)")
    edge.add_argument("master_id", nargs="?", help=_WHICH_MASTER)
    edge.add_argument("--output", "-o", required=True, metavar="DIR", help="the folder to write them into (0700)")
    node = commands.add_parser("add-node", help="join a machine you have to the master's cluster as an agent "
                                                "(ansible-micado 0.12.6+)")
    node.add_argument("master_id", nargs="?", help=_WHICH_MASTER)
    node.add_argument("--host", required=True, help="the machine's address")
    _add_file_option(node, "--ssh-key", required=True, help="your SSH private key for it (read, never copied)")
    node.add_argument("--ssh-user", default="ubuntu", help="a sudoer on it (default: ubuntu)")
    node.add_argument("--ssh-port", type=int, default=22, help="its SSH port (default: 22)")
    node.add_argument("--name", help="the node name (default: agent-<address>)")
    status = commands.add_parser("status", help="check masters live: TLS and certificate, API login, dashboards, SSH")
    status.add_argument("master_ids", nargs="*", metavar="master_id", help=_MASTER_ID_HELP)
    status.add_argument("--all", action="store_true", help="every stored master")
    status.add_argument("--timeout", type=float, default=5.0, help="seconds for each check (default: 5)")
    ssh = commands.add_parser("ssh", help="ssh into the master with its recorded key and host key "
                                          "(never ~/.ssh); `-- COMMAND...` runs a command")
    ssh.add_argument("master_id", nargs="?", help=_WHICH_MASTER)
    kubeconfig = commands.add_parser("kubeconfig", help="fetch the cluster's admin kubeconfig (0600) for kubectl")
    kubeconfig.add_argument("master_id", nargs="?", help=_WHICH_MASTER)
    _add_file_option(kubeconfig, "--output", "-o", metavar="FILE",
                     help="where to write it (default: <MiCADO dir>/kube/<id>.yaml)")


def _add_app_commands(app: argparse.ArgumentParser) -> None:
    """Add the options and commands of ``micado app``."""
    app.add_argument("--endpoint", help="TOSCA Submitter URL, e.g. https://IP/toscasubmitter/")
    app.add_argument("--api-version", default=None, help="API version (default v2.0)")
    app.add_argument("--user", help="MiCADO web user")
    app.add_argument("--password", help="MiCADO web password (better: MICADO_API_PASSWORD)")
    _add_file_option(app, "--cert", help="the master's certificate, to verify TLS")
    app.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    app.add_argument("--master", help=f"a stored master id or unique prefix instead of --endpoint (default: "
                                      f"${ENV_MASTER}, or the only stored master)")
    commands = app.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list applications")
    get = commands.add_parser("get", help="show an application's adaptors")
    get.add_argument("app_id")
    for name in ("create", "update"):
        command = commands.add_parser(name, help=f"{name} an application from an ADT")
        command.add_argument("app_id", nargs="?" if name == "create" else None)
        source = command.add_mutually_exclusive_group(required=True)
        _add_file_option(source, "--file", help="ADT file (YAML, checked before the upload, or CSAR)")
        source.add_argument("--url", help="ADT URL, fetched by the server")
        command.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="TOSCA input")
        if name == "create":
            command.add_argument("--dry-run", action="store_true",
                                 help="validate and translate, deploy nothing (the id stays registered)")
    delete = commands.add_parser("delete", help="delete an application")
    delete.add_argument("app_id")
    delete.add_argument("--force", action="store_true", help="delete even if an adaptor fails")
    demo = commands.add_parser("demo", help="list the demo ADTs of the master's release (or the default one), "
                                            "or write one to fill in")
    demo.add_argument("name", nargs="?", help="the demo (stressng, nginx, wordpress, cqueue...); none to list them")
    demo.add_argument("--cloud", help="the cloud it is for, as the release names it (nova, ec2, gce, azure...; "
                                      "default: the master's)")
    _add_file_option(demo, "--output", help="where to write it (default ./NAME_CLOUD.yaml; - for stdout)")
    demo.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="fill",
                      help="fill a placeholder, by its key (image_id) or key path")
    demo.add_argument("--force", action="store_true", help="overwrite the output file")
    release = demo.add_mutually_exclusive_group()
    _add_file_option(release, "--playbook", help="the demos of this release tarball, folder or URL")
    release.add_argument("--micado-version", help="the demos of this ansible-micado release tag")
