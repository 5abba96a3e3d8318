"""One exception for every way an API call can fail, whichever error shape the server used.

The spec has two: ``{"detail": "..."}`` and ``{"statusCode": 400, "message": [...], "error": "Bad Request"}``.
Both become :class:`ApiError` with the HTTP status and the messages, so callers branch on ``status`` and
``retryable`` and logs say what went wrong.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int | None, messages: list[str], endpoint: str = "", retry_after: float | None = None):
        self.status = status
        self.messages = messages or ["unknown error"]
        self.endpoint = endpoint
        self.retry_after = retry_after
        where = f"{endpoint}: " if endpoint else ""
        code = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{where}{code}: {'; '.join(self.messages)}")

    @property
    def retryable(self) -> bool:
        """Connection errors, timeouts, 5xx and 429 may succeed later; other 4xx will not."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)

    @classmethod
    def from_body(cls, status: int, body: Any, endpoint: str = "", retry_after: float | None = None) -> ApiError:
        return cls(status, error_messages(body), endpoint, retry_after)


class MalformedResponse(ApiError):
    """The server answered 2xx with a body that is not the documented shape."""

    def __init__(self, endpoint: str, reason: str):
        super().__init__(None, [f"malformed answer: {reason}"], endpoint)

    @property
    def retryable(self) -> bool:
        return True


def error_messages(body: Any) -> list[str]:
    """The human-readable messages of an error body in either spec shape (or plain text)."""
    if isinstance(body, dict):
        if "detail" in body:
            detail = body["detail"]
            if isinstance(detail, list):  # FastAPI validation errors
                return [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail]
            return [str(detail)]
        message = body.get("message")
        if isinstance(message, list):
            return [str(m) for m in message]
        if message is not None:
            return [str(message)]
        if "error" in body:
            return [str(body["error"])]
    if isinstance(body, str) and body.strip():
        return [body.strip()[:500]]
    return []
