"""``python -m micado.testing.submitter``: run the emulator (see :func:`.server.main`)."""

from micado.testing.submitter.server import main

raise SystemExit(main())
