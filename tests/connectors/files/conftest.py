"""Fixtures of the mapping-file connector tests: the corpus, a one-engine warehouse for the corpus,
and a portal serving fixed pages (for the JSON-family cases)."""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from warehouse.engine import Warehouse

CASES = Path(__file__).resolve().parents[2] / "cases" / "malformed"
MANIFEST = tomllib.loads((CASES / "manifest.toml").read_text(encoding="utf-8"))["case"]
NIR = "1 85 05 78 006 084 91"
BE = "85.07.30-033.28"


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    """A fresh DuckDB warehouse (the corpus runs here; engine-specific paths are tested on both)."""
    wh = Warehouse(f"duckdb:///{tmp_path / 'corpus.duckdb'}")
    try:
        yield wh
    finally:
        wh.close()


class PageServer:
    """Serves ``body`` as page 1 of one collection of the family portal API, empty pages elsewhere."""

    def __init__(self) -> None:
        self.collection = "responsables"
        self.body = b""
        self.content_type = "application/json"
        self.base_url = ""


def _handler(srv: PageServer) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            collection = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
            body = srv.body if collection == srv.collection else b'{"data": [], "links": {"next": null}}'
            ctype = "text/html" if body.lstrip().startswith(b"<") else "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return H


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    srv = PageServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv))
    srv.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        server.shutdown()
        server.server_close()
