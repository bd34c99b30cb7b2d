"""The demo: the library's main job, end to end, on the local MiCADO stack.

``python -m micado.testing.demo`` starts the local stack (an OpenStack emulator
whose servers are local sshd "VMs"), then, through the public API only: creates a
MiCADO master (use-case 1), fills in a real demo ADT of the master's release (its
placeholders refused while unfilled) and deploys it, shows it,
updates it, deletes it, destroys the master, and prints how long each stage took.
Everything lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from micado.demos import short_field
from micado.exceptions import InvalidArgument
from micado.testing.adts import EXAMPLES, filled


class Demo:
    """Runs the demo and keeps the time of each stage."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out
        self.timings: list[tuple[str, float]] = []
        self.start = time.monotonic()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.out(f"\n== {name}")
        began = time.monotonic()
        yield
        self.timings.append((name, time.monotonic() - began))

    def progress(self, stage: str, message: str) -> None:
        self.out(f"   [{time.monotonic() - self.start:6.1f} s] {stage}: {message}")

    def run(self, layout: str) -> None:
        from micado import MicadoClient
        from micado.testing.stack import LocalStack

        with self.stage("start the local MiCADO stack (OpenStack emulator, VMs, playbooks)"):
            stack = LocalStack(layout=layout).start()
        try:
            os.environ.update(stack.environment)
            self.out(f"   MiCADO dir: {stack.micado_cli_dir}")
            self.out(f"   cloud: {stack.create_kwargs['auth_url']}")
            client = MicadoClient(launcher="openstack")
            with self.stage("create a MiCADO master (client.master.create)"):
                master_id = client.master.create(progress=self.progress, **stack.create_kwargs)
            self.out(f"   master {master_id} at {client.master.endpoint}")
            for step, seconds in client.master.timings.items():
                self.timings.append((f"  create: {step}", seconds))
            self.lifecycle(client)
            with self.stage("destroy the master (client.master.destroy)"):
                client.master.destroy(progress=self.progress)
            left = stack.cloud.leftovers()
            self.out(f"   left on the cloud: {left}")
        finally:
            stack.stop()
        self.summary()

    def lifecycle(self, client: Any) -> None:
        with self.stage("fill in the stressng demo of the master's release (client.master.demos)"):
            demo = next(d for d in client.master.demos() if d.name == "stressng" and d.cloud == "nova")
            self.out(f"   {demo.file_name}: fill in {', '.join(short_field(f) for f in demo.fields_to_fill())}")
            try:
                client.applications.create(app_id="stressng", adt=demo.text())
            except InvalidArgument as refused:
                self.out(f"   unfilled, it is refused before anything is sent: {str(refused)[:90]}...")
            adt = filled(demo.path)
        with self.stage("deploy it (client.applications.create)"):
            app = client.applications.create(app_id="stressng", adt=adt)
        with self.stage("show it (client.applications.list / get)"):
            self.out(f"   applications: {[a.id for a in client.applications.list()]}")
            for adaptor, status in client.applications.get(app.id).adaptors.items():
                self.out(f"   {adaptor:<32} {status}")
        with self.stage("update it to the v0.12-style ADT (app.update)"):
            app.update(adt=filled(EXAMPLES / "stressng_ec2_latest.yaml"))
            app.reload()
            self.out(f"   adaptors now: {app.adaptors}")
        with self.stage("delete it (app.delete)"):
            app.delete()
            self.out(f"   applications: {[a.id for a in client.applications.list()]}")

    def summary(self) -> None:
        self.out("\nSummary (seconds)")
        for name, seconds in self.timings:
            self.out(f"   {name:<72} {seconds:7.2f}")
        self.out(f"   {'total':<72} {time.monotonic() - self.start:7.2f}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit code 0 when every stage succeeded."""
    parser = argparse.ArgumentParser(prog="python -m micado.testing.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="0.12", choices=["0.12", "0.9"], help="ansible-micado layout")
    args = parser.parse_args(argv)
    from micado.exceptions import MicadoException

    try:
        Demo().run(args.layout)
    except MicadoException as error:
        print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
