"""What the API refuses before reading a request: a body over the limit (413), declared or streamed.

The parts of a form are checked as they are read (`i2v.server.wire`) and the media in them before
anything is stored (`i2v.server.media`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.server.errors import ApiError


class BodyTooLargeError(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a declared Content-Length over the limit (without reading the body),
    and for a body that grows past it while streaming (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await ApiError(400, "malformed_request", "Content-Length is not a number").response()(
                    scope, receive, send
                )
            if int(declared) > self.max_bytes:
                return await too_large(int(declared), self.max_bytes).response()(scope, receive, send)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError()
            return message

        await self.app(scope, limited, send)


def too_large(size: int | None, limit: int) -> ApiError:
    got = f"{size} bytes" if size is not None else "more"
    return ApiError(
        413,
        "payload_too_large",
        f"the request body is {got}; the limit is {limit} bytes",
        valid={"max_bytes": limit},
    )
