"""``python -m micado.testing.openstack``: run the emulator (see :func:`.server.main`)."""

from micado.testing.openstack.server import main

raise SystemExit(main())
