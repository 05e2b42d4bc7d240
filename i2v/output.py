"""One output sink and one error handler for every command of both CLIs (`i2v`, `provision`).

`--json` prints one JSON document on stdout and sends everything else (progress, logs, errors) to
stderr; without it, human text goes to stdout. `handle_errors` turns an exception the error table
(`i2v.errors`) knows into one error line and its exit code; anything else, or I2V_DEBUG=1, keeps
the traceback. Torch-free.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


class Output:
    def __init__(self, json_mode: bool = False):
        self.json_mode = json_mode
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    def result(self, data: Any, human: Callable[[Console], None]) -> None:
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
            sys.stdout.flush()
        else:
            human(self.out)

    def info(self, message: str) -> None:
        self.err.print(message)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {message}")

    def error(self, message: str) -> None:
        self.err.print(f"[red]error:[/red] {message}")


def handle_errors(func: F) -> F:
    """Decorator for CLI commands: a known error becomes one line on stderr and its exit code."""
    import typer

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from i2v.errors import exit_code

        try:
            return func(*args, **kwargs)
        except Exception as exc:
            code = exit_code(exc)
            if code is None or os.environ.get("I2V_DEBUG") == "1":
                raise
            Output().error(f"{exc}\n(set I2V_DEBUG=1 for the traceback)")
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


__all__ = ["Output", "handle_errors"]
