"""Run the API on uvicorn with a graceful shutdown: on SIGTERM or Ctrl-C the server stops
accepting, finishes requests in flight (up to `grace` seconds), drains the model queue and
stops the write-back worker; queued write-backs stay on disk for the next start."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .config import ServiceConfig


def serve(config: ServiceConfig, *, host: str = "127.0.0.1", port: int = 8080, grace: float = 30.0,
          access_log: bool = False, log_level: str = "info") -> None:
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, timeout_graceful_shutdown=grace, access_log=access_log, log_level=log_level,
        server_header=False, proxy_headers=False, lifespan="on",
    ))
    server.run()
