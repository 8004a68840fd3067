"""``METRICS_PORT``: ``/metrics`` on a listener of its own, for the monitoring network only.

The metrics name the configured Git hosts, request counts and error rates: nothing a browser on the
API port needs, and a map for whoever probes the service. So production answers ``/metrics`` only on
this port (Kubernetes: the ``metrics`` container port, which a NetworkPolicy opens to the monitoring
namespace alone); development keeps it on the API port as well (``app.main``).

The listener is prometheus-client's own HTTP server in a daemon thread of the ``serve`` process. With
one worker it exposes that worker's registry; with several, the numbers every worker writes to
``PROMETHEUS_MULTIPROC_DIR`` (the parent process serves them: no worker binds the port).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server


@contextlib.contextmanager
def metrics_listener(host: str, port: int, registry: CollectorRegistry) -> Iterator[None]:
    """Serve ``registry`` on ``host:port`` while the block runs; ``OSError`` when the port is taken."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
