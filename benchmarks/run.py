"""Benchmarks of micado-client against the budgets of DESIGN.md §8.

Run: ``.venv/bin/python benchmarks/run.py [--only import,get,list,create]``. Prints one
line per figure with its budget; figures are measured here, never asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADT = HERE.parent / "tests" / "adts" / "stressng_nova.yaml"


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
    env = {**os.environ, "HOME": tempfile.mkdtemp()}
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
            sum(pools[key].num_connections for key in pools)
            for pools in (session.get_adapter(url).poolmanager.pools for session in (api.session, bare))
        ]
        report("applications.get round trip (keep-alive)", f"{statistics.median(per_call['ours']) * 1000:.2f} ms", "")
        report("bare requests.Session GET, same call", f"{statistics.median(per_call['bare']) * 1000:.2f} ms", "")
        report(f"ratio ours/bare (median of {rounds} x {calls})", f"{statistics.median(ratios):.3f}x", "≤ 1.10x")
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


def bench_create(runs: int = 3) -> None:
    """``master.create`` on the local stack, split into cloud wait, SSH wait, Ansible and the rest."""
    from micado import MicadoClient
    from micado.testing.stack import LocalStack

    boot_delay = 0.2
    rows = []
    with LocalStack(boot_delay=boot_delay) as stack:
        os.environ.update(stack.environment)
        for _ in range(runs):
            client = MicadoClient(launcher="openstack")
            start = time.perf_counter()
            client.master.create(**stack.create_kwargs)
            total = time.perf_counter() - start
            timings = dict(client.master.timings)
            client.master.destroy()
            rows.append((total, timings))
    for total, timings in rows:
        rest = total - timings["launch"] - timings["ssh"] - timings["ansible"]
        added = total - timings["ansible"] - boot_delay
        print(f"   total {total:5.2f} s = cloud wait {timings['launch']:.2f} + SSH wait {timings['ssh']:.2f}"
              f" + ansible {timings['ansible']:.2f} + rest {rest:.2f}"
              f"  (prepare {timings['prepare']:.2f}, certificate {timings['certificate']:.2f},"
              f" store {timings['store']:.2f})")
        report("master.create client-added time (total - ansible - boot)", f"{added:.2f} s", "≤ 2 s")


BENCHES = {"import": bench_import, "get": bench_get, "create": bench_create}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    args = parser.parse_args()
    for name in args.only.split(","):
        BENCHES[name.strip()]()


if __name__ == "__main__":
    main()
