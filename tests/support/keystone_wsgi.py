"""Serve Keystone's public WSGI application on 127.0.0.1:PORT (run by the Keystone virtualenv's python).

Usage: ``python keystone_wsgi.py PORT`` with ``OS_KEYSTONE_CONFIG_FILES`` set. Started
by :mod:`real_keystone`; not a test module (it does not import pytest).
"""

import sys

port = int(sys.argv[1])
del sys.argv[1:]  # oslo.config reads the command line: leave it nothing of ours

from keystone.server import wsgi  # noqa: E402 (after the command line is emptied)
from werkzeug.serving import WSGIRequestHandler, run_simple  # noqa: E402


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


run_simple("127.0.0.1", port, wsgi.initialize_public_application(), threaded=True, request_handler=Quiet)
