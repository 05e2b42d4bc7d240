"""Durable jobs: the SQL job store (SQLAlchemy Core; SQLite by default, PostgreSQL by URL) and its settings.

Import-safe and torch-free: the API process imports this package; only workers import torch.
"""

from __future__ import annotations

from i2v.jobs.config import ServiceSettings, load_service_settings
from i2v.jobs.schema import STATES, TERMINAL
from i2v.jobs.store import (
    IdempotencyConflictError,
    JobStore,
    LeaseLostError,
    NewJob,
    QueueFullError,
)

__all__ = [
    "STATES",
    "TERMINAL",
    "IdempotencyConflictError",
    "JobStore",
    "LeaseLostError",
    "NewJob",
    "QueueFullError",
    "ServiceSettings",
    "load_service_settings",
]
