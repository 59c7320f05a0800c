"""A real service process on loopback and a fake helpdesk HTTP server that records what it gets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeHelpdesk:
    """Answers every request with `status` (200 by default) and records method, path, headers
    and JSON body. `stop()`/`start()` take it off and back on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.status = 200
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeHelpdesk":
        helpdesk = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                with helpdesk._lock:
                    helpdesk.received.append({"method": self.command, "path": self.path,
                                              "headers": {k.lower(): v for k, v in self.headers.items()},
                                              "json": json.loads(raw) if raw else None,
                                              "status": helpdesk.status})
                body = b'{"ok": true}'
                self.send_response(helpdesk.status)
                if helpdesk.status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def calls(self, *, ok_only: bool = False, path_prefix: str = "") -> list[dict]:
        with self._lock:
            return [r for r in self.received if r["path"].startswith(path_prefix)
                    and (not ok_only or r["status"] < 300)]

    def wait_for(self, count: int, *, path_prefix: str = "", ok_only: bool = True, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls(ok_only=ok_only, path_prefix=path_prefix)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        seen = [(r["method"], r["path"], r["status"]) for r in self.received[-8:]]
        raise AssertionError(f"the fake helpdesk got {len(self.calls(ok_only=ok_only, path_prefix=path_prefix))} "
                             f"calls under {path_prefix!r}, expected {count}; last calls: {seen}")


class ServiceProcess:
    """`triage serve` in a subprocess on a free loopback port."""

    def __init__(self, config: dict, workdir: Path, env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.port = free_port()
        self.workers = workers
        self.workdir = workdir
        self.config_path = workdir / "service.yaml"
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        self.env = {**os.environ, **(env or {})}
        self.log = workdir / f"service-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> "ServiceProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triage.cli", "serve", "--config", str(self.config_path), "--port", str(self.port),
             "--grace", "20", "--workers", str(self.workers)], cwd=self.workdir, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the service did not come up in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextmanager
def running(config: dict, workdir: Path, env: dict[str, str] | None = None):
    service = ServiceProcess(config, workdir, env).start()
    try:
        yield service
    finally:
        service.stop()
