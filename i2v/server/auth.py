"""Optional bearer keys (`I2V_API_KEYS`, comma separated).

Every route but the health probes and the page's own static files requires a key when keys are
set. Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every key without
stopping early, so neither a key's content nor its length shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from i2v.server.errors import ApiError

# Public by design: liveness/readiness probes, and the page shell (static HTML/JS/CSS, no data;
# a browser cannot attach a bearer header to a page load, so the page asks for the key itself).
PUBLIC_PATHS = ("/health/live", "/health/ready", "/", "/static")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def owner_of(request: Request) -> str:
    """A short, stable, non-secret name for the caller's key ("-" without auth): scopes Idempotency-Keys."""
    token = _token(request)
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16] if token else "-"


def _token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def require_key(request: Request) -> None:
    keys: list[bytes] = request.app.state.service.key_digests
    if not keys:
        return
    given = digest(_token(request))
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    if not matched:
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required: send `Authorization: Bearer <key>`",
            field="Authorization",
            headers={"WWW-Authenticate": 'Bearer realm="i2v"'},
        )
