"""A small real HTTP server for provider fakes.

Each fake subclasses :class:`FakeServer`, registers routes with :meth:`route`, and is started on
127.0.0.1 with a random port. Tests point the real client at ``server.url``. Every request is
recorded (``server.requests``); faults are injected per route with :meth:`fail_next`:

    server.fail_next("POST", "/v1/speech-to-text", status=429, headers={"Retry-After": "1"})
    server.fail_next("POST", "/v1/speech-to-text", kind="timeout")     # sleeps past the client timeout
    server.fail_next("POST", "/v1/speech-to-text", kind="malformed")   # 200 with a broken JSON body

``latency`` adds a fixed delay to every response (for benchmarks).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters from the route

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
        """Decode a multipart/form-data or urlencoded body into (fields, files)."""
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            parsed = parse_qs(self.body.decode(), keep_blank_values=True)
            return {k: v[-1] for k, v in parsed.items()}, {}
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + self.body
        )
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename is not None:
                files[name] = (filename, payload)
            else:
                fields[name] = payload.decode()
        return fields, files


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes/str → raw
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    status: int = 500
    kind: str = "status"  # status | timeout | malformed | disconnect
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


Handler = Callable[[FakeRequest], Response | dict | list | tuple]


class FakeServer:
    latency: float = 0.0
    timeout_sleep: float = 5.0

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: dict[tuple[str, str], deque[Fault]] = {}
        self._lock = threading.Lock()
        self.requests: list[FakeRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.setup_routes()

    # -- to override -------------------------------------------------------------------------
    def setup_routes(self) -> None:
        """Register routes with self.route(...)."""

    # -- routing -----------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` is a path with ``{name}`` placeholders, e.g. ``/api/v4/leads/{id}``."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method.upper(), re.compile(regex), handler))

    def fail_next(self, method: str, path: str, *, times: int = 1, **fault: Any) -> None:
        with self._lock:
            queue = self._faults.setdefault((method.upper(), path), deque())
            for _ in range(times):
                queue.append(Fault(**fault))

    def requests_to(self, method: str, path: str) -> list[FakeRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this each response waits ~40 ms on Nagle.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = _QuietServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = FakeRequest(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
            queue = self._faults.get((request.method, request.path))
            fault = queue.popleft() if queue else None
        if self.latency:
            time.sleep(self.latency)
        if fault is not None:
            self._send_fault(handler, fault)
            return
        for method, regex, route_handler in self._routes:
            match = regex.match(request.path)
            if method == request.method and match:
                request.params = match.groupdict()
                try:
                    result = route_handler(request)
                except Exception as exc:  # a bug in the fake must be visible, not a hang
                    self._send(handler, Response(500, {"error": f"fake crashed: {exc!r}"}))
                    raise
                self._send(handler, self._coerce(result))
                return
        self._send(handler, Response(404, {"detail": f"no fake route for {request.method} {request.path}"}))

    @staticmethod
    def _coerce(result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            return Response(*result)
        return Response(200, result)

    def _send_fault(self, handler: BaseHTTPRequestHandler, fault: Fault) -> None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.kind == "timeout":
            time.sleep(self.timeout_sleep)
            self._send(handler, Response(504, {"detail": "late"}))
        elif fault.kind == "malformed":
            self._send(handler, Response(200, b'{"truncated": ', {"Content-Type": "application/json"}))
        elif fault.kind == "disconnect":
            handler.close_connection = True
            handler.connection.shutdown(2)
        else:
            self._send(handler, Response(fault.status, fault.body or {"detail": "injected fault"}, fault.headers))

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
        headers = dict(response.headers)
        if isinstance(response.body, (dict, list)):
            payload = json.dumps(response.body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(response.body, str):
            payload = response.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        elif response.body is None:
            payload = b""
        else:
            payload = response.body
            headers.setdefault("Content-Type", "application/octet-stream")
        try:
            handler.send_response(response.status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
