"""Benchmarks of micado-client against its budgets (listed with each figure).

Run: ``.venv/bin/python benchmarks/run.py [--only import,get,create,cold,store,status]``. Prints one
line per figure with its budget; figures are measured here, never asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ADT = HERE.parent / "tests" / "support" / "adts" / "stressng_nova.yaml"


def report(name: str, value: str, budget: str) -> None:
    print(f"{name:<52} {value:>18}   budget {budget}", flush=True)


def child_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS MiB) of that child alone."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{argv} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def bench_import(runs: int = 15) -> None:
    with tempfile.TemporaryDirectory() as home:
        _bench_import({**os.environ, "HOME": home}, runs)


def _bench_import(env: dict[str, str], runs: int) -> None:
    env.pop("MICADO_CLI_DIR", None)
    for label, code in (("python -c pass (interpreter alone)", "pass"),
                        ("from micado import MicadoClient", "from micado import MicadoClient")):
        samples = [child_run([sys.executable, "-c", code], env) for _ in range(runs)]
        wall = statistics.median(s[0] for s in samples)
        peak = max(s[1] for s in samples)
        report(f"{label}: wall (median of {runs})", f"{wall * 1000:.0f} ms", "≤ 150 ms")
        report(f"{label}: peak RSS", f"{peak:.1f} MiB", "≤ 30 MiB")


def bench_get(rounds: int = 9, calls: int = 300) -> None:
    """``applications.get`` against a bare ``requests.Session`` on the same keep-alive connection kind."""
    import requests

    from micado import MicadoClient
    from micado.testing.submitter import SubmitterEmulator

    with SubmitterEmulator(password="bench-password") as server:
        auth = (server.user, server.password)
        client = MicadoClient(endpoint=server.endpoint, verify=str(server.cert_path), auth=auth)
        client.applications.create(app_id="bench", file=ADT)
        api = client.applications.get("bench").client
        url = api.url("applications", "bench")
        bare = requests.Session()

        def bare_get() -> None:
            response = bare.get(url, auth=auth, verify=str(server.cert_path), timeout=30)
            response.raise_for_status()
            response.json()["adaptors"]

        def ours() -> None:
            client.applications.get("bench").adaptors

        ratios: list[float] = []
        per_call: dict[str, list[float]] = {"bare": [], "ours": []}
        for round_number in range(rounds):
            order = [("bare", bare_get), ("ours", ours)]
            if round_number % 2:
                order.reverse()  # neither side always runs first
            timings = {}
            for name, call in order:
                call()  # warm the keep-alive connection
                start = time.perf_counter()
                for _ in range(calls):
                    call()
                timings[name] = (time.perf_counter() - start) / calls
                per_call[name].append(timings[name])
            ratios.append(timings["ours"] / timings["bare"])
        connections = [
            sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118 - urllib3 refuses iteration
            for pools in (session.get_adapter(url).poolmanager.pools for session in (api.session, bare))
        ]
        report("applications.get round trip (keep-alive)", f"{statistics.median(per_call['ours']) * 1000:.2f} ms", "")
        report("bare requests.Session GET, same call", f"{statistics.median(per_call['bare']) * 1000:.2f} ms", "")
        report(f"ratio ours/bare (median of {rounds} x {calls})", f"{statistics.median(ratios):.3f}x", "≤ 1.05x")
        report("TLS connections opened, ours / bare", f"{connections[0]} / {connections[1]}", "1 / 1 (keep-alive)")

        server.requests.clear()
        apps = client.applications.list()
        listed = len([r for r in server.requests if "/applications" in r[1]])
        apps[0].adaptors
        inspected = len([r for r in server.requests if "/applications" in r[1]])
        report("applications.list() requests, 1 app, none inspected", str(listed), "1")
        report("... after inspecting that app", str(inspected), "2")
        client.close()
        bare.close()


BARE_PLAY = """
import json, os, subprocess, sys, time
from pathlib import Path
from micado.installer import ansible, ssh
from micado.installer.playbooks import resolve_source
from micado.installer.runner import _environment, ansible_playbook_command, make_control_dir, close_connections

args = json.loads(sys.argv[1])
keys = ssh.ensure_keypair()
tree = resolve_source(args.get("playbook"), args.get("micado_version"))
work = ansible.prepare_workdir(args["master_id"], tree, host=args["host"], micado_user="admin",
                               micado_password="bench-Password-1", ssh_user=args["ssh_user"],
                               ssh_port=args["ssh_port"], ssh_key=keys.private_key)
control = make_control_dir()
env = _environment(work, control, "bench/bare")
start = time.perf_counter()
done = subprocess.run([*ansible_playbook_command(), "-i", str(work.inventory), "-e", f"@{work.extra_vars}",
                       work.playbook], cwd=work.run_dir, env=env, capture_output=True)
took = time.perf_counter() - start
close_connections(control)
assert done.returncode == 0, done.stdout[-2000:]
print(took)
"""


def _bare_play(stack: object, index: int) -> float:
    """The same play, from a working copy made the same way, run by ``ansible-playbook`` alone."""
    from micado.installer import ssh
    from micado.testing.vm import random_loopback_address

    keys = ssh.ensure_keypair()
    server_id = f"bench-bare-{index}"
    stack.vms.boot({"id": server_id, "user_data": f"#cloud-config\nssh_authorized_keys:\n  - {keys.public_key}\n"})
    address = random_loopback_address()
    try:
        stack.vms.set_address(server_id, address)
        kwargs = stack.create_kwargs
        ssh.wait_for_ssh(address, port=kwargs["ssh_port"], user=kwargs["ssh_user"], key=keys.private_key, timeout=60)
        done = subprocess.run([sys.executable, "-c", BARE_PLAY, json.dumps({
            "master_id": server_id, "host": address, "ssh_user": kwargs["ssh_user"], "ssh_port": kwargs["ssh_port"],
            "playbook": kwargs.get("playbook"), "micado_version": kwargs.get("micado_version")})],
            capture_output=True, text=True, env=os.environ.copy())
        if done.returncode != 0:
            raise SystemExit(f"the bare play failed: {done.stderr[-2000:]}")
        return float(done.stdout.strip().splitlines()[-1])
    finally:
        stack.vms.delete(server_id)
        ssh.forget_host(address, stack.create_kwargs["ssh_port"])


def bench_create(rounds: int = 5) -> None:
    """Client-added time of a warm ``master.create``: paired against the bare ``ansible-playbook``.

    Each round runs a create and the bare play of a working copy made the same way over
    the same kind of SSH, in alternating order; the figure is the median of the paired
    differences, less the emulated cloud's boot delay (Ansible's own variance swamps a
    plain subtraction of medians).
    """
    from micado import MicadoClient
    from micado.testing.stack import LocalStack

    boot_delay = 0.2
    differences, steps = [], []
    with LocalStack(boot_delay=boot_delay) as stack:
        os.environ.update(stack.environment)
        warm = MicadoClient(launcher="openstack")  # one create first: this process is warm from here on
        warm.master.create(**stack.create_kwargs)
        warm.master.destroy()
        for index in range(rounds):
            order = ["create", "bare"] if index % 2 == 0 else ["bare", "create"]
            took: dict[str, float] = {}
            for kind in order:
                if kind == "bare":
                    took["bare"] = _bare_play(stack, index)
                    continue
                client = MicadoClient(launcher="openstack")
                start = time.perf_counter()
                client.master.create(**stack.create_kwargs)
                took["create"] = time.perf_counter() - start
                steps.append(dict(client.master.timings))
                client.master.destroy()
            differences.append(took["create"] - took["bare"] - boot_delay)
            print(f"   round {index + 1}: create {took['create']:.2f} s, bare play {took['bare']:.2f} s,"
                  f" difference {differences[-1]:+.2f} s", flush=True)
    for name in ("prepare", "launch", "ssh", "ansible", "certificate", "store"):
        report(f"   create step {name} (median)", f"{statistics.median(t[name] for t in steps):.2f} s", "")
    report(f"client-added time, warm create (median of {rounds} pairs)", f"{statistics.median(differences):.2f} s",
           "≤ 0.6 s")


COLD = """
import json, os, sys, time
from micado import MicadoClient
kwargs = json.loads(sys.argv[1])
took = []
for _ in range(2):
    client = MicadoClient(launcher="openstack")
    start = time.perf_counter()
    client.master.create(**kwargs)
    total = time.perf_counter() - start
    took.append([total, total - client.master.timings["ansible"]])
    client.master.destroy()
print(json.dumps(took))
"""


def bench_cold(rounds: int = 3) -> None:
    """Extra time of the first ``create`` in a process over the second (imports, caches)."""
    from micado.testing.stack import LocalStack

    penalties, outside = [], []
    with LocalStack(boot_delay=0.2) as stack:
        env = {**os.environ, **stack.environment}
        for index in range(rounds):
            done = subprocess.run([sys.executable, "-c", COLD, json.dumps(stack.create_kwargs)], env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"the cold create failed: {done.stderr[-2000:]}")
            (first, first_out), (second, second_out) = json.loads(done.stdout.strip().splitlines()[-1])
            penalties.append(first - second)
            outside.append(first_out - second_out)
            print(f"   process {index + 1}: first create {first:.2f} s ({first_out:.2f} s outside Ansible), "
                  f"second {second:.2f} s ({second_out:.2f} s)", flush=True)
    report(f"cold-run penalty (median of {rounds} processes)", f"{statistics.median(penalties):+.2f} s", "≤ 0.3 s")
    report("... of it outside the Ansible run (Ansible's own variance left out)",
           f"{statistics.median(outside):+.2f} s", "≤ 0.3 s")


def bench_store(records: int = 1000, rounds: int = 15) -> None:
    """Reading one record, and listing, from a store of ``records`` masters (one decryption per get)."""
    from micado.config.store import MasterRecord, MasterStore

    with tempfile.TemporaryDirectory() as folder:
        store = MasterStore(Path(folder) / "data.yml")
        start = time.perf_counter()
        for n in range(records):
            store.add(MasterRecord(f"m-{n}", "127.0.0.1", "https://127.0.0.1/toscasubmitter", "v2.0", None,
                                   "admin", f"pw-{n}"))
        report(f"{records} MasterStore.add calls, one after another", f"{time.perf_counter() - start:.1f} s",
               "each add re-encrypts nothing")
        for label, call in ((f"MasterStore.get at {records} records", lambda: store.get(f"m-{records // 2}")),
                            (f"MasterStore.list at {records} records", store.list)):
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                call()
                samples.append(time.perf_counter() - start)
            report(f"{label} (median of {rounds})", f"{statistics.median(samples) * 1000:.1f} ms",
                   "decrypts 1 / 0 records")


SERVE_MASTERS = """
import json, socket, sys, threading
from micado.testing.submitter import SubmitterEmulator

args = json.loads(sys.argv[1])
emulators = [SubmitterEmulator(password=f"bench-Password-{n}").start() for n in range(args["up"])]
for emulator in emulators:
    emulator.response_delay = args["delay"]
banner = socket.create_server(("127.0.0.1", 0))

def serve():
    while True:
        conn, _ = banner.accept()
        conn.sendall(b"SSH-2.0-bench\\r\\n")
        conn.close()

threading.Thread(target=serve, daemon=True).start()
print(json.dumps({"ssh_port": banner.getsockname()[1], "masters": [
    {"endpoint": e.endpoint, "cert": str(e.cert_path), "user": e.user, "password": e.password} for e in emulators]}),
    flush=True)
sys.stdin.read()  # serve until the benchmark closes our standard input
for emulator in emulators:
    emulator.stop()
"""


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status_records(served: list[dict[str, Any]], down: int) -> list[Any]:
    """Records of ``down`` masters whose ports are closed, then of the served masters (in the order given)."""
    from micado.config.record import MasterRecord

    records = [MasterRecord(f"down-{n}", "127.0.0.1", f"https://127.0.0.1:{_closed_port()}/toscasubmitter/", "v2.0",
                            None, "admin", "bench", extra={"ssh_port": _closed_port()}) for n in range(down)]
    for group, masters in enumerate(served):
        records += [MasterRecord(f"up-{group}-{n}", "127.0.0.1", master["endpoint"], "v2.0", master["cert"],
                                 master["user"], master["password"], extra={"ssh_port": masters["ssh_port"]})
                    for n, master in enumerate(masters["masters"])]
    return records


def _plain_round_trips(record: Any) -> None:
    """What check_master does on the web, done plainly and serially: the API's list, then each dashboard."""
    import requests

    from micado.api.client import SubmitterClient
    from micado.master.status import DASHBOARDS, master_urls

    client = SubmitterClient(record.endpoint, verify=record.cert_path, auth=(record.micado_user,
                                                                              record.micado_password))
    client.list_applications()
    client.close()
    urls = master_urls(record)
    with requests.Session() as http:
        for name in DASHBOARDS:
            http.get(urls[name], auth=(record.micado_user, record.micado_password), verify=record.cert_path,
                     timeout=5).raise_for_status()


def _serve_masters(count: int, delay: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``count`` submitter emulators in a child process, each answering after ``delay`` s."""
    child = subprocess.Popen([sys.executable, "-c", SERVE_MASTERS, json.dumps({"up": count, "delay": delay})],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, json.loads(child.stdout.readline())


def bench_status(masters: int = 20, down: int = 3, delay: float = 1.0) -> None:
    """``check_masters`` of 20 masters (some down, one slow) against the slowest single ``check_master``;
    one healthy master's ``check_master`` against the same calls made plainly and serially.

    The emulators run in child processes (the slow one in its own, as each master is its own
    machine), so their serving does not share this process's interpreter lock.
    """
    from micado.master.status import check_masters

    children = []
    try:
        healthy, served = _serve_masters(masters - down - 1, 0.0)
        children.append(healthy)
        slow, slow_served = _serve_masters(1, delay)
        children.append(slow)
        records = _status_records([served, slow_served], down)  # the slow one last: the pool's worst case
        check_masters(records)  # warm: imports, the first TLS contexts
        _bench_many_masters(records, down, delay)
        _bench_many_masters([records[-1], *records[:-1]], down, delay, label="... the slow master first")
        _bench_one_master(records[down])
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=30)


def _bench_many_masters(records: list[Any], down: int, delay: float, rounds: int = 5, label: str = "") -> None:
    """The wall time of ``check_masters(records)`` against the slowest ``check_master`` of one of them alone."""
    from micado.master.status import check_master, check_masters

    expected = [not record.id.startswith("down") for record in records]
    walls, slowest = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        statuses = check_masters(records)
        walls.append(time.perf_counter() - start)
        if [status.ok for status in statuses] != expected:
            raise SystemExit(f"unexpected statuses: {[status.as_dict() for status in statuses]}")
        singles = []
        for record, ok in zip(records, expected, strict=True):
            start = time.perf_counter()
            if check_master(record).ok != ok:
                raise SystemExit(f"unexpected status of {record.id}")
            singles.append(time.perf_counter() - start)
        slowest.append(max(singles))
    wall, slow = statistics.median(walls), statistics.median(slowest)
    if not label:
        report(f"check_masters, {len(records)} masters ({down} down, 1 slow by {delay:g} s, last)", f"{wall:.3f} s", "")
        report("slowest single check_master of them", f"{slow:.3f} s", "")
    report(f"{label or 'ratio'} (median of {rounds} rounds)", f"{wall / slow:.2f}x", "≤ 1.5x")


def _bench_one_master(healthy: Any, pairs: int = 15) -> None:
    from micado.master.status import check_master

    differences, ours, plain = [], [], []
    for index in range(pairs):
        took = {}
        for kind in ("ours", "plain") if index % 2 == 0 else ("plain", "ours"):  # neither side always first
            start = time.perf_counter()
            if kind == "ours":
                check_master(healthy)
            else:
                _plain_round_trips(healthy)
            took[kind] = time.perf_counter() - start
        ours.append(took["ours"])
        plain.append(took["plain"])
        differences.append(took["ours"] - took["plain"])
    report("one healthy master: check_master", f"{statistics.median(ours) * 1000:.1f} ms", "")
    report("... the plain calls (list + 4 dashboard GETs, serially)", f"{statistics.median(plain) * 1000:.1f} ms", "")
    report(f"check_master over the plain calls (median of {pairs} pairs)",
           f"{statistics.median(differences) * 1000:+.1f} ms", "≤ +300 ms")

BENCHES = {"import": bench_import, "get": bench_get, "create": bench_create, "cold": bench_cold,
           "store": bench_store, "status": bench_status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    args = parser.parse_args()
    for name in args.only.split(","):
        BENCHES[name.strip()]()


if __name__ == "__main__":
    main()
