"""The embedded PostgreSQL server, from the binaries of a PyPI wheel.

``Server(data_dir)`` starts, stops and reports on the server of one data directory
(``_server``); ``_status`` reads its state from ``postmaster.pid``; ``_cluster`` holds the
steps (``initdb``, ``pg_ctl``, the lock file, the toolkit's database). The functions
``start``, ``stop``, ``status``, ``url`` and ``binary`` do the same for a data directory
named per call (None: ``default_data_dir()``, from ``TOOLKIT_DATA_DIR`` or the user's
data directory).
"""

from toolkit.server._cluster import DATABASE
from toolkit.server._server import Server, binary, start, status, stop, url
from toolkit.server._status import ServerStatus, default_data_dir

__all__ = [
    "DATABASE",
    "Server",
    "ServerStatus",
    "binary",
    "default_data_dir",
    "start",
    "status",
    "stop",
    "url",
]
