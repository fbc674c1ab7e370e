"""systemd readiness (``Type=notify``): one datagram, ``READY=1``, to $NOTIFY_SOCKET once the daemon serves."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str = "READY=1", environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` to the service manager; False when not run under one (no $NOTIFY_SOCKET)."""
    path = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):  # an abstract socket name
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("could not notify the service manager at %s: %s", path, exc)
        return False
    return True
