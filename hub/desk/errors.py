"""The desk's refusals and errors, as the API and the pages show them."""

from __future__ import annotations

from typing import Any


class DeskError(Exception):
    """A refusal or an error the desk shows: HTTP status, a short code, a French message (no value
    typed by the agent nor read from the warehouse), and optional extra JSON members."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        super().__init__(message)
