"""Run the API on uvicorn, in one process or several pre-forked workers.

With ``workers > 1`` the parent loads the model bundle and the sentence encoder once, then forks
the workers: they share the model's memory read-only (copy on write) and each listens on the
port with SO_REUSEPORT, so the kernel spreads connections among them and Python work runs on
every core. Each
worker builds its own knowledge-base index and follows saved knowledge-base versions written by
the others; only worker 0 delivers helpdesk write-backs.

Shutdown is graceful: on SIGTERM or Ctrl-C the server stops accepting, finishes requests in
flight (up to `grace` seconds), drains the model queue and stops the write-back worker; queued
write-backs stay on disk for the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

import uvicorn
from threadpoolctl import threadpool_limits

from retrieval.encoders import get_encoder

from ..bundle import load_serving
from ..pipeline import default_bundle_path
from .app import create_app
from .config import ServiceConfig

log = logging.getLogger("kefu.service")


def _uvicorn_config(app, *, host: str, port: int, grace: float, access_log: bool, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=grace, access_log=access_log,
                          log_level=log_level, server_header=False, proxy_headers=False, lifespan="on")


def serve(config: ServiceConfig, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          grace: float = 30.0, access_log: bool = False, log_level: str = "info") -> int:
    """Serve until stopped; returns the exit status."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    options = {"host": host, "port": port, "grace": grace, "access_log": access_log, "log_level": log_level}
    if workers == 1:
        uvicorn.Server(_uvicorn_config(create_app(config), **options)).run()
        return 0

    # One compute thread per worker: several workers with multi-threaded BLAS on the same
    # cores spin against each other (measured: 25 req/s instead of 394 on 2 cores).
    os.environ.setdefault("KEFU_ENCODER_THREADS", "1")
    threadpool_limits(1)
    bundle = load_serving(config.model or default_bundle_path())
    get_encoder(bundle.encoder).warm_up()  # the big arrays, shared after fork
    # Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections
    # over the workers (one shared socket lets whichever worker wakes first take a whole burst).
    # This bound, never-listening socket claims the port up front, so a port in use fails here.
    claim = _reuseport_socket(host, port)
    children: dict[int, int] = {}
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # worker
            status = 1
            try:
                app = create_app(config, bundle=bundle, worker=index, workers=workers)
                server = uvicorn.Server(_uvicorn_config(app, **options))
                listener = _reuseport_socket(host, port)
                listener.listen(2048)
                server.run(sockets=[listener])
                status = 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        children[pid] = index

    def forward(signum, _frame):
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while children:
        pid, code = os.wait()
        index = children.pop(pid, None)
        exit_code = os.waitstatus_to_exitcode(code)
        if exit_code not in (0, -signal.SIGTERM, -signal.SIGINT):
            log.error("worker %s exited with %s; stopping the others", index, exit_code)
            status = 1
            forward(signal.SIGTERM, None)
    claim.close()
    return status


def _reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock
