"""The package's shape: every argument declared once, each cloud in its launcher, layers that import
downwards only (no cycle, private modules kept in their package), short functions."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import subprocess
import sys

from micado.launcher.registry import BUILTIN_LAUNCHERS, launcher_class
from micado.master import spec
from micado.master.facade import MicadoMaster
from paths import ROOT

while not (ROOT / "micado").is_dir():  # the tests may sit one folder deeper
    ROOT = ROOT.parent


def _parameters(method, leave_out=("self", "progress", "cloud_options")):
    return [(name, parameter.default) for name, parameter in inspect.signature(method).parameters.items()
            if name not in leave_out]


def test_create_takes_the_spec_arguments_with_the_spec_defaults():
    declared = [(name, argument.default) for name, argument in spec.arguments()]
    assert _parameters(MicadoMaster.create) == declared


def test_deploy_takes_the_spec_arguments_for_a_host_with_the_spec_defaults():
    declared = [(name, argument.default) for name, argument in spec.arguments(spec.ANY)]
    assert _parameters(MicadoMaster.deploy, ("self", "progress", "host", "ssh_key")) == declared


def test_the_docstrings_describe_each_argument_with_the_spec_text():
    for method, scope in ((MicadoMaster.create, None), (MicadoMaster.deploy, spec.ANY)):
        doc = inspect.getdoc(method) or ""
        for name, argument in spec.arguments(scope):
            assert f"{name}: {argument.description}" in " ".join(doc.split()), (method.__name__, name)


def test_each_launcher_option_is_documented_on_its_class():
    for name in BUILTIN_LAUNCHERS:
        cls = launcher_class(name)
        for option in cls.options:
            assert f"``{option.name}``: {option.description}" in (cls.__doc__ or "")


def test_the_create_options_are_every_launcher_argument_and_the_spec_ones_once():
    names = [option.name for option in spec.options()]
    assert len(names) == len(set(names))
    own = {option.name for name in BUILTIN_LAUNCHERS for option in launcher_class(name).options if option.cli}
    common = {name for name, argument in spec.arguments() if argument.cli}
    assert set(names) == own | common
    defaults = {option.name: option.default for option in spec.options()}
    assert all(defaults[name] == argument.default for name, argument in spec.arguments() if argument.cli)


def _string_constants(tree: ast.AST):
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_no_cloud_is_named_outside_its_launcher():
    clouds = set()
    for name in BUILTIN_LAUNCHERS:
        cls = launcher_class(name)
        clouds |= {cls.name.lower(), cls.credential_type.lower()}
    allowed = (ROOT / "micado" / "launcher", ROOT / "micado" / "testing")
    found = []
    for path in sorted((ROOT / "micado").rglob("*.py")):
        if any(path.is_relative_to(folder) for folder in allowed):
            continue
        for node in _string_constants(ast.parse(path.read_text())):
            if node.value.strip().lower() in clouds:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)


def test_the_import_graph_has_no_cycle_and_private_modules_stay_in_their_package():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py"), str(ROOT)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def _subcommand(parser, *names):
    import argparse

    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return {action.dest: action for action in parser._actions}


def test_the_create_and_deploy_commands_take_the_spec_options_with_its_help_and_defaults():
    from micado.cli import build_parser

    parser = build_parser()
    for command, scope in (("create", None), ("deploy", spec.ANY)):
        actions = _subcommand(parser, "master", command)
        for option in spec.options(scope):
            assert option.name in actions, (command, option.name)
            assert actions[option.name].help.startswith(option.help), (command, option.name)
            if option.default not in (None, ""):
                assert f"(default: {option.default})" in actions[option.name].help
        declared = {name for name, argument in spec.arguments(scope) if argument.cli}
        assert declared <= set(actions)


def _import_graph():
    spec_ = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module


#: Code below the master's workflow: it reports progress and runs the installer, and knows nothing above it.
LOWER_LAYERS = ("micado.installer", "micado.progress", "micado.notebook", "micado.config", "micado.launcher",
                "micado.api", "micado.arguments", "micado.checks", "micado.exceptions")
UPPER_LAYERS = ("micado.master", "micado.models", "micado.cli", "micado.client")


def test_the_lower_layers_import_nothing_above_them():
    graph = _import_graph()
    modules = graph.module_names(ROOT)
    found = [f"{name} imports {target}" for name, path in modules.items() if name.startswith(LOWER_LAYERS)
             for target in sorted(graph.imports_of(name, path, modules)) if target.startswith(UPPER_LAYERS)]
    assert found == []


def test_no_function_is_longer_than_80_lines():
    found = []
    for path in sorted((ROOT / "micado").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1  # def line to the end, decorators not
                if length > 80:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert found == []
