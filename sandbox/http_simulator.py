"""What the sandbox's HTTP silo simulators share: a threaded server on 127.0.0.1 with
start / stop / context manager / ``url``, injected faults and a request log.

A simulator subclasses :class:`HTTPSimulator` (or :class:`CollectionSimulator`, whose faults target
a collection and a page) and serves requests with a subclass of :class:`SimulatorHandler`. A request
is identified by a *target* tuple (e.g. ``(collection, page)``); ``request_log`` holds
``(*target, status)`` per answered request (status 0: connection reset). The fault kinds answered
the same way everywhere are ``delay``, ``truncated``, ``html`` and ``reset``; the error ones
(``500``, ``429`` with Retry-After, ``401``, any extra kind) are answered with the protocol's own
error bodies, which each handler lists in ``fault_errors``.

``latency`` (seconds, default 0) and ``latency_per_record`` (seconds, default 0) are server time
added to every page answered normally (status 200 through ``_serve``; not to fault answers, token
or error responses): ``latency + records on the page × latency_per_record``, since a real server
spends time per request (authentication, query planning, the round trip) and per record it reads
and serialises. At 0 a local simulator answers a page in well under a millisecond, which no real
silo does: Salesforce, ServiceNow or a portal spend tens of milliseconds to seconds per page of
1000-10000 records. Benchmarks set them to measure a connector against a server that takes time,
as real ones do (bench/ingest.py ``--latency-ms``, ``--ms-per-1000``); tests leave them at 0 and
stay fast. Concurrent requests wait concurrently (one thread per request), like a real server's
workers.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

FAULT_KINDS = ("500", "429", "delay", "401", "truncated", "html", "reset")

Target = tuple[Any, ...]


@dataclass
class Fault:
    """One injected failure: ``kind`` on the next ``count`` requests matching ``target``
    (a ``None`` element matches anything)."""

    kind: str
    target: Target
    count: int = 1
    retry_after: int = 1
    delay: float = 1.0

    def matches(self, target: Target) -> bool:
        """Whether a request aimed at ``target`` is one this fault waits for."""
        return self.count > 0 and all(want is None or want == got for want, got in zip(self.target, target,
                                                                                         strict=True))


def write_json_files(folder: Path, collections: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """One ``<name>.json`` (a compact JSON array) per collection in ``folder``; returns counts."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in collections.items():
        with open(folder / f"{name}.json", "w", encoding="utf-8") as fh:
            json.dump(rows, fh, ensure_ascii=False, separators=(",", ":"))
    return {name: len(rows) for name, rows in collections.items()}


def read_json(path: Path) -> Any:
    """A JSON file's content."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def compact_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (non-ASCII kept), the way the simulators answer."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class HTTPSimulator:
    """A real HTTP server on a free port of 127.0.0.1 (``port=0``) with fault injection.

    Subclasses set ``handler`` (their :class:`SimulatorHandler`), ``label`` (for messages),
    ``thread_name``, ``logger`` and, when they answer more kinds, ``fault_kinds``.
    """

    handler: ClassVar[type[SimulatorHandler]]
    label: ClassVar[str]
    thread_name: ClassVar[str]
    logger: ClassVar[logging.Logger]
    fault_kinds: ClassVar[tuple[str, ...]] = FAULT_KINDS

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.request_log: list[tuple[Any, ...]] = []  # (*target, status)
        self.request_times: list[float] = []  # time.monotonic() of each request_log entry
        self.latency = 0.0  # seconds of server time per page answered normally (see the module docstring)
        self.latency_per_record = 0.0  # and per record on that page
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._server is None:
            raise RuntimeError(f"the {self.label} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Serve in a daemon thread; returns ``self``."""
        handler = type("Handler", (self.handler,), {"simulator": self})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        # A short poll interval makes stop() quick (tests start and stop many servers).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self.thread_name,
                                        daemon=True)
        self._thread.start()
        self.logger.info("%s serving on %s", self.label, self.url)
        return self

    def stop(self) -> None:
        """Shut the server down (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults and log
    def _inject(self, kind: str, target: Target, count: int, retry_after: int, delay: float) -> None:
        if kind not in self.fault_kinds:
            raise ValueError(f"unknown fault {kind!r}; one of {self.fault_kinds}")
        with self._lock:
            self._faults.append(Fault(kind, target, count, retry_after, delay))

    def clear_faults(self) -> None:
        """Forget every injected fault not yet served."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, target: Target) -> Fault | None:
        """The first fault waiting for ``target``, counted down (dropped when spent)."""
        with self._lock:
            for f in self._faults:
                if f.matches(target):
                    f.count -= 1
                    if f.count == 0:
                        self._faults.remove(f)
                    return f
        return None

    def _record(self, target: Target, status: int) -> None:
        with self._lock:
            self.request_log.append((*target, status))
            self.request_times.append(time.monotonic())


class CollectionSimulator(HTTPSimulator):
    """A simulator whose requests target ``(collection, page)``."""

    def inject(self, kind: str, collection: str | None = None, page: int | None = None, count: int = 1,
               retry_after: int = 1, delay: float = 1.0) -> None:
        """Make the next ``count`` requests matching ``collection`` (the resource: collection, sObject,
        ``token``, table) / ``page`` fail with ``kind``: ``500``, ``429`` (with Retry-After),
        ``delay`` (answer after ``delay`` s), ``401``, ``truncated`` (JSON cut in the middle),
        ``html`` (an HTML error page with status 200), ``reset`` (connection reset by peer)."""
        self._inject(kind, (collection, page), count, retry_after, delay)


class SimulatorHandler(BaseHTTPRequestHandler):
    """Request handler base: JSON answers, request logging and the answering of faults.

    Subclasses set ``json_type`` (their Content-Type for JSON), ``html_page`` /
    ``html_type`` (the ``html`` fault) and ``fault_errors``: kind → (status, body) for the
    protocol's error answers (``500``, ``429``, ``401`` and any extra kind).
    """

    simulator: HTTPSimulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    json_type: ClassVar[str] = "application/json; charset=utf-8"
    html_page: ClassVar[bytes]
    html_type: ClassVar[str]
    fault_errors: ClassVar[dict[str, tuple[int, bytes]]]

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry no personal data, but keep them at debug level only.
        self.simulator.logger.debug(self.simulator.label + ": " + format, *args)

    def _send(self, status: int, body: bytes, content_type: str | None = None,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or self.json_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        """The request body (read whole: keep-alive needs it consumed)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _log(self, target: Target, status: int) -> None:
        self.simulator._record(target, status)

    def _serve(self, target: Target, body: bytes, headers: dict[str, str] | None = None, records: int = 0) -> None:
        """Answer ``body`` (a page of ``records`` records) with status 200, unless a fault waits for
        ``target``."""
        fault = self.simulator._take_fault(target)
        if fault is not None and self._fail(fault, target, body):
            return
        server_time = self.simulator.latency + records * self.simulator.latency_per_record
        if server_time > 0:
            time.sleep(server_time)
        self._log(target, 200)
        self._send(200, body, headers=headers)

    def _fail(self, fault: Fault, target: Target, body: bytes) -> bool:
        """Serve the fault; False when the request should then be answered normally (delay)."""
        kind = fault.kind
        if kind == "delay":
            time.sleep(fault.delay)
            return False
        if kind == "truncated":
            self._log(target, 200)
            self._send(200, body[: max(1, len(body) // 2)])
        elif kind == "html":
            self._log(target, 200)
            self._send(200, self.html_page, content_type=self.html_type)
        elif kind == "reset":
            self._log(target, 0)
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        else:
            status, error = self.fault_errors[kind]
            self._log(target, status)
            self._send(status, error, headers={"Retry-After": str(fault.retry_after)} if kind == "429" else None)
        return True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:  # the socket was reset on purpose
            pass
