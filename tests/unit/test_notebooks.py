"""Notebooks and scripts: the in-place progress line, task results, logging, reprs, the 0.12 names."""

from __future__ import annotations

import logging
import subprocess
import sys
import types

import pytest

from micado import MicadoClient
from micado.exceptions import InvalidArgument
from micado.installer.runner import _Progress
from micado.master.lifecycle import STEPS
from micado.notebook import NotebookProgress, in_notebook
from micado.progress import as_callback, console, expect_steps


class ZMQInteractiveShell:  # the class name Jupyter kernels use
    pass


@pytest.fixture
def fake_jupyter(monkeypatch):
    """IPython as a Jupyter kernel has it, reduced to what the display uses: updates are recorded."""
    updates: list[str] = []

    class Handle:
        def update(self, obj) -> None:
            updates.append(obj.data)

    class HTML:
        def __init__(self, data: str) -> None:
            self.data = data

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: ZMQInteractiveShell()
    display = types.ModuleType("IPython.display")
    display.HTML = HTML
    display.display = lambda obj, display_id=False: Handle()
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed
    return updates


def test_import_micado_does_not_import_ipython():
    code = "import sys, micado, micado.progress; assert 'IPython' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "ok\n"


def test_outside_a_notebook_progress_true_prints_console_lines():
    assert not in_notebook()
    assert as_callback(True) is console


def test_in_a_notebook_one_line_is_updated_in_place(fake_jupyter):
    assert in_notebook()
    progress = as_callback(True)
    assert isinstance(progress, NotebookProgress)
    expect_steps(progress, STEPS)  # as master.create does
    progress("launch", "starting")
    progress("launch", "server <b>x</b> is BUILD")
    progress("ansible", "micado_master/start : (MiCADO) Start the TOSCA Submitter: changed")
    progress("done", "master m ready")
    assert len(fake_jupyter) == 4  # one display, updated: no new lines
    assert "step 2 of 7: launch" in fake_jupyter[0]
    assert "[00:00]" in fake_jupyter[0]
    assert "&lt;b&gt;x&lt;/b&gt;" in fake_jupyter[1]  # server text escaped
    assert "step 4 of 7: ansible" in fake_jupyter[2]
    assert ": changed" in fake_jupyter[2]
    assert "<b>done</b>" in fake_jupyter[3]


def test_a_notebook_progress_can_draw_anywhere():
    lines: list[str] = []
    progress = NotebookProgress(steps=("a", "b"), display=lines.append)
    progress("b", "half")
    assert lines == ["<code>[00:00]</code> <b>step 2 of 2: b</b> half"]


ANSIBLE_OUTPUT = """\
TASK [pre-task : (Emulator) Injected failure] ***********************************
skipping: [micado]

TASK [micado_master/start : (MiCADO) Start the TOSCA Submitter] ****************
changed: [micado]

TASK [check : optional probe] **************************************************
fatal: [micado]: FAILED! => {"msg": "no"}
...ignoring

TASK [facts : read] ************************************************************
ok: [micado] => (item=a)
ok: [micado] => (item=b)

TASK [last : breaks] ***********************************************************
fatal: [micado]: FAILED! => {"msg": "broken"}
"""


def test_each_task_reports_its_result_and_skipped_is_not_failed():
    state = _Progress()
    messages = [message for line in ANSIBLE_OUTPUT.splitlines(keepends=True) for message in state.feed(line)]
    messages += state.flush()
    assert messages == [
        "pre-task : (Emulator) Injected failure", "pre-task : (Emulator) Injected failure: skipped",
        "micado_master/start : (MiCADO) Start the TOSCA Submitter",
        "micado_master/start : (MiCADO) Start the TOSCA Submitter: changed",
        "check : optional probe", "check : optional probe: failed (ignored)",
        "facts : read", "facts : read: ok",
        "last : breaks", "last : breaks: failed",
    ]
    assert [task for task, _ in state.failures] == ["last : breaks"]


def test_the_official_client_names_still_work():
    client = MicadoClient(launcher="openstack", installer="ansible")
    assert client.micado is client.master
    with pytest.raises(InvalidArgument, match="installer='occopus'.*only installer is 'ansible'"):
        MicadoClient(launcher="openstack", installer="occopus")
    with pytest.raises(InvalidArgument, match="cloud="):
        MicadoClient(endpoint="https://127.0.0.1/toscasubmitter/", cloud="mycloud")


def test_client_and_applications_show_themselves_without_secrets(submitter):
    client = MicadoClient(endpoint=submitter.endpoint, verify=submitter.cert_path,
                          auth=(submitter.user, submitter.password))
    with client:
        assert repr(client) == f"<MicadoClient endpoint='{submitter.endpoint}v2.0/'>"
        assert submitter.endpoint in client._repr_html_()
        assert submitter.password not in client._repr_html_()
        client.applications.create(app_id="<b>x<i>", adt={"tosca_definitions_version":
                                                                      "tosca_simple_yaml_1_2"})
        page = client.applications._repr_html_()
        assert "&lt;b&gt;x&lt;i&gt;" in page
        assert "<b>x" not in page
        assert submitter.password not in page + repr(client.applications)
        assert repr(client.applications) == f"<Applications at {submitter.endpoint}v2.0/>"
    offline = MicadoClient(launcher="openstack")
    assert repr(offline) == "<MicadoClient launcher='openstack'>"
    assert "launcher" in offline._repr_html_()


def test_api_calls_are_logged_at_debug_and_nothing_is_configured(submitter, caplog):
    caplog.set_level(logging.DEBUG, logger="micado")
    with MicadoClient(endpoint=submitter.endpoint, verify=submitter.cert_path,
                      auth=(submitter.user, submitter.password)) as client:
        client.applications.list()
    records = [r for r in caplog.records if r.name == "micado.transfer"]
    assert records
    assert records[0].levelno == logging.DEBUG
    assert "GET https://" in records[0].getMessage()
    assert "-> 200" in records[0].getMessage()
    assert submitter.password not in caplog.text


def test_the_library_configures_no_logging():
    code = ("import logging, micado, micado.cli, micado.models.master; "
            "print(logging.getLogger().handlers, logging.getLogger('micado').handlers)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "[] []\n"
