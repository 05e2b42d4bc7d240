"""The video service's HTTP side: FastAPI app, routes, auth, limits, metrics, supervisor, web page.

Import-safe and torch-free (tested): the API process never imports torch; workers do.
"""

from __future__ import annotations


def create_app(*args, **kwargs):
    from i2v.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
