"""One error shape for every answer that is not a success:

    {"error": {"code": "...", "message": "...", "field": ..., "value": ..., "valid": ..., "param": ..., "type": ...}}

`field` names the request field at fault (null when none), `value` echoes what was sent (shortened),
`valid` says what would have been accepted (a rule, a list of choices, or suggestions), `nearest`
(where there is one) the closest valid value. `param` and `type` are OpenAI's names (the `openai`
SDK's `APIError.param` / `.type` read them): `param` is `field` again.

Refusals the client must change its request for carry `x-should-retry: false`: the SDK retries
408, 409, 429 and 5xx on its own unless told not to, and a 409 "not finished yet" or a 501 here
would only come back the same.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_STATUS_CODES = {
    400: "malformed_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    410: "gone",
    422: "invalid_field",
    429: "queue_full",
    501: "not_implemented",
    503: "unavailable",
}


RETRYABLE = (408, 429, 500, 502, 503, 504)
_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        valid: Any = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.value, self.valid, self.headers, self.extra = (
            field,
            value,
            valid,
            headers or {},
            extra,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "field": self.field,
                "value": _short(self.value),
                "valid": self.valid,
                **self.extra,
                "param": self.field,
                "type": _TYPES.get(
                    self.status, "server_error" if self.status >= 500 else "invalid_request_error"
                ),
            }
        }

    def response(self) -> JSONResponse:
        headers = dict(self.headers)
        if self.status not in RETRYABLE:
            headers.setdefault("x-should-retry", "false")
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "..."
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return ApiError(
            exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        ).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body", "header")]
        field = ".".join(loc) or None
        return ApiError(
            422,
            "invalid_field",
            f"`{field}`: {first.get('msg', 'invalid')}",
            field=field,
            value=first.get("input"),
            valid=_valid_from(first),
        ).response()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger("i2v.server").exception("unhandled error")
        return ApiError(
            500, "internal_error", f"{type(exc).__name__}: the server failed; see its log"
        ).response()


def _valid_from(error: dict[str, Any]) -> Any:
    ctx = error.get("ctx") or {}
    bounds = {k: ctx[k] for k in ("ge", "gt", "le", "lt", "pattern", "expected") if k in ctx}
    return bounds or None
