"""Every code example of README.rst and docs/ runs, against the local MiCADO stack.

Python examples run as written, except that the arguments that name a real cloud or
master (``master.create(...)``'s keywords, ``MicadoClient(endpoint=, verify=, auth=)``)
are swapped for the local stack's or the submitter emulator's. Console examples of the
CLI page run with ``MASTER_ID`` and the example URLs swapped the same way.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.master.spec import options as create_options

from loopback import directory_server
from paths import ADTS, ROOT

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every ``.. code-block::`` and ``::`` literal block of an rst text."""
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    for number, line in enumerate(lines):
        directive = re.match(r"\s*\.\. code-block:: (\w+)", line)
        if directive:
            language = directive.group(1)
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            language = "literal"
        else:
            continue
        base = len(line) - len(line.lstrip())
        body: list[str] = []
        for following in lines[number + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= base:
                break
            body.append(following)
        found.append((language, textwrap.dedent("\n".join(body)).strip("\n")))
    return found


def python_blocks(path: Path) -> list[str]:
    """The Python examples of a page: python code blocks, and literal blocks that are Python."""
    result = []
    for language, code in blocks(path.read_text()):
        if language == "python":
            result.append(code)
        elif language == "literal" and ("client" in code or "micado" in code):
            try:
                ast.parse(code)
            except SyntaxError:
                continue
            result.append(code)
    return result


class UseLocalServices(ast.NodeTransformer):
    """Swap the arguments that name a real cloud or master for the local stack's."""

    def __init__(self, create_kwargs: dict | None = None, endpoint_kwargs: dict | None = None,
                 drop_destroy: bool = False) -> None:
        self.create_kwargs = create_kwargs or {}
        self.endpoint_kwargs = endpoint_kwargs or {}
        self.drop_destroy = drop_destroy

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id == "MicadoClient" and any(k.arg == "endpoint" for k in node.keywords):
            for keyword in node.keywords:
                if keyword.arg in self.endpoint_kwargs:
                    keyword.value = ast.Constant(self.endpoint_kwargs[keyword.arg])
        is_create = (isinstance(func, ast.Attribute) and func.attr == "create"
                     and isinstance(func.value, ast.Attribute) and func.value.attr == "master")
        if is_create and self.create_kwargs:
            kept = [k for k in node.keywords if k.arg == "progress"]
            node.args = []
            node.keywords = [ast.keyword(arg=name, value=ast.Constant(value))
                             for name, value in self.create_kwargs.items()] + kept
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        call = node.value
        if (self.drop_destroy and isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "destroy"):
            return None
        return self.generic_visit(node)


def run_python(code: str, namespace: dict, transformer: UseLocalServices, name: str) -> None:
    tree = ast.fix_missing_locations(transformer.visit(ast.parse(code)))
    exec(compile(tree, name, "exec"), namespace)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A current folder holding the ADT files the examples name."""
    for name, source in {"stressng.yaml": "stressng_nova.yaml", "stressng-v2.yaml": "stressng_ec2_latest.yaml",
                         "my-adt.yaml": "nginx_nova.yaml"}.items():
        shutil.copy(ADTS / source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def readme_use_cases() -> dict[str, str]:
    cases = {}
    for code in python_blocks(ROOT / "README.rst"):
        key = ("1-ec2" if 'launcher="ec2"' in code else "3" if "endpoint=" in code
               else "2" if "master.attach" in code else "1")
        assert key not in cases, "one example per use-case"
        cases[key] = code
    assert sorted(cases) == ["1", "1-ec2", "2", "3"]
    return cases


def test_readme_use_case_1(micado_stack, workdir):
    run_python(readme_use_cases()["1"], {}, UseLocalServices(micado_stack.create_kwargs), "README use-case 1")
    assert micado_stack.cloud.leftovers() == CLEAN


def test_readme_use_case_1_on_ec2(tmp_path, workdir, monkeypatch):
    from micado.testing.ec2.stack import EC2Stack

    with EC2Stack(tmp_path / "ec2") as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        run_python(readme_use_cases()["1-ec2"], {}, UseLocalServices(stack.create_kwargs), "README use-case 1 (EC2)")
        assert stack.leftovers() == {"instances": [], "addresses": []}


def test_readme_use_case_2_from_another_program(micado_stack, workdir):
    namespace: dict = {}
    run_python(readme_use_cases()["1"], namespace, UseLocalServices(micado_stack.create_kwargs, drop_destroy=True),
               "README use-case 1 without destroy")
    program = f"master_id = {namespace['master_id']!r}\n" + readme_use_cases()["2"]
    result = subprocess.run([sys.executable, "-c", program], env={**os.environ, **micado_stack.environment},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert micado_stack.cloud.leftovers() == CLEAN


def test_readme_use_case_3(submitter, workdir):
    endpoint = {"endpoint": submitter.endpoint, "verify": str(submitter.cert_path),
                "auth": (submitter.user, submitter.password)}
    run_python(readme_use_cases()["3"], {}, UseLocalServices(endpoint_kwargs=endpoint), "README use-case 3")
    assert submitter.deletions == [("stressng", True)]


def test_readme_credentials_examples_load(tmp_path):
    from micado.config.credentials import ApplicationCredentialAuth, OIDCAuth, PasswordAuth, load_credentials

    yaml_blocks = [code for language, code in blocks((ROOT / "README.rst").read_text()) if "resource:" in code]
    assert len(yaml_blocks) == 3
    loaded = []
    for number, code in enumerate(yaml_blocks):
        path = tmp_path / f"credentials-{number}.yml"
        path.write_text(code + "\n")
        path.chmod(0o600)
        loaded.append(type(load_credentials("nova", path)))
    assert loaded == [PasswordAuth, ApplicationCredentialAuth, OIDCAuth]


def test_usage_page(micado_stack, workdir, capsys):
    namespace: dict = {"client": MicadoClient(launcher="openstack")}
    for number, code in enumerate(python_blocks(ROOT / "docs" / "usage.rst")):
        run_python(code, namespace, UseLocalServices(micado_stack.create_kwargs), f"usage.rst block {number}")
    assert "ansible:" in capsys.readouterr().out.replace(" ", "")  # the progress callback printed
    assert repr(namespace["app"]) == "<Application 'stressng'>"
    namespace["client"].master.destroy()
    assert micado_stack.cloud.leftovers() == CLEAN


def test_local_stack_page(micado_stack, workdir, monkeypatch):
    first, plugin, second = python_blocks(ROOT / "docs" / "local-stack.rst")
    namespace_of_plugin: dict = {}
    exec(plugin, namespace_of_plugin)
    assert namespace_of_plugin["pytest_plugins"] == ["micado.testing.pytest_plugin"]  # what this suite uses
    for name, value in micado_stack.environment.items():  # the example sets them; undone afterwards
        monkeypatch.setenv(name, value)
    run_python(first, {}, UseLocalServices(), "local-stack.rst block 0")
    for name, value in micado_stack.environment.items():  # back to the fixture's stack
        monkeypatch.setenv(name, value)
    namespace: dict = {}
    run_python(second, namespace, UseLocalServices(), "local-stack.rst block 1")
    monkeypatch.setenv("MICADO_CLI_DIR", str(micado_stack.micado_cli_dir))
    namespace["test_my_adt"](micado_stack)
    assert micado_stack.cloud.leftovers() == CLEAN


def test_micado_client_docstring_examples(micado_stack, submitter, workdir):
    examples = python_blocks_of(MicadoClient.__doc__ or "")
    assert len(examples) == 2
    endpoint = {"endpoint": submitter.endpoint, "verify": str(submitter.cert_path),
                "auth": (submitter.user, submitter.password)}
    for number, code in enumerate(examples):
        run_python(code, {"MicadoClient": MicadoClient},
                   UseLocalServices(micado_stack.create_kwargs, endpoint), f"MicadoClient docstring {number}")
    assert micado_stack.cloud.leftovers() == CLEAN


def python_blocks_of(docstring: str) -> list[str]:
    code_blocks = []
    for language, code in blocks(textwrap.dedent(docstring)):
        if language == "literal":
            try:
                ast.parse(code)
            except SyntaxError:
                continue
            code_blocks.append(code)
    return code_blocks


# -- console examples -------------------------------------------------------------------


def commands(path: Path) -> list[str]:
    """The ``$ ...`` lines of a page's console blocks, continuation lines joined."""
    result = []
    for language, code in blocks(path.read_text()):
        if language == "console":
            joined = code.replace("\\\n", " ")
            result += [line[2:].strip() for line in joined.splitlines() if line.startswith("$ ")]
    return result


@pytest.fixture
def adt_server(workdir) -> Iterator[str]:
    with directory_server(workdir) as url:
        yield url


@pytest.mark.parametrize("page", [ROOT / "README.rst", ROOT / "docs" / "cli.rst"], ids=lambda p: p.name)
def test_cli_examples(micado_stack, adt_server, workdir, page):
    env = {**os.environ, **micado_stack.environment}
    (workdir / "create.json").write_text(json.dumps(micado_stack.create_kwargs))
    create_flags = []
    flags = {option.name for option in create_options()}
    for name, value in micado_stack.create_kwargs.items():
        assert name in flags
        create_flags += ["--" + name.replace("_", "-"), str(value)]
    master_id = ""
    ran: list[list[str]] = []
    # The examples that follow a `master destroy` need a master: the destroy is run last, on it.
    listed = [shlex.split(command.replace("https://example.org", adt_server)) for command in commands(page)]
    destroys = [words for words in listed if words[1:3] == ["master", "destroy"]]
    for words in [words for words in listed if words not in destroys] + destroys[-1:]:
        assert words[0] == "micado"
        if words[1:3] == ["master", "create"] and "--kwargs-file" not in words:
            words = words[:3] + create_flags
        words = [master_id if word == "MASTER_ID" else word for word in words]
        # `micado init` writes the credentials file: into a MiCADO dir of its own, not the stack's
        run_env = {**env, "MICADO_CLI_DIR": str(workdir / "init")} if words[1:2] == ["init"] else env
        result = subprocess.run([sys.executable, "-m", "micado", "--json", *words[1:]], env=run_env,
                                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        ran.append(words[1:3])
        assert result.returncode == 0, f"{shlex.join(words)}: {result.stderr}"
        if words[1:3] == ["master", "create"]:
            master_id = json.loads(result.stdout)["id"]
    if not destroys:
        subprocess.run([sys.executable, "-m", "micado", "master", "destroy", "--yes", master_id], env=env,
                       check=True, capture_output=True, timeout=300)
    assert ["master", "create"] in ran
    assert ["app", "--master"] in ran
    if page.name == "cli.rst":
        assert ["init"] in ran
        assert (workdir / "init" / "credentials-cloud-api.yml").stat().st_mode & 0o777 == 0o600
    assert micado_stack.cloud.leftovers() == CLEAN


def test_local_stack_page_console(workdir):
    started = []
    try:
        for command in commands(ROOT / "docs" / "local-stack.rst"):
            assert command.endswith("&")
            words = shlex.split(command[:-1])
            assert words[0] == "python"
            process = subprocess.Popen([sys.executable, *words[1:]], cwd=workdir, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            ready = workdir / words[words.index("--ready-file") + 1]
            started.append((process, ready))
        for process, ready in started:
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, f"{ready} never appeared"
                time.sleep(0.1)
            assert json.loads(ready.read_text())["pid"] == process.pid
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
