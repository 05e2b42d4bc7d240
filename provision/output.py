"""One output sink for every provision command: `--json` prints one JSON document on stdout and
sends everything else to stderr; without it, human text goes to stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console


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


def handle_errors(table: Callable[[], dict[type[BaseException], int]]):
    """Decorator for CLI commands: an exception listed in `table()` (called lazily, so heavy
    imports wait for an error) becomes one error line on stderr and its exit code; an exception
    with an `exit_code` attribute uses that code. Anything else, or I2V_DEBUG=1, keeps the traceback."""
    import functools
    import os

    import typer

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                code = next((c for t, c in table().items() if isinstance(exc, t)), None)
                if code is None or os.environ.get("I2V_DEBUG") == "1":
                    raise
                Output().error(f"{exc}\n(set I2V_DEBUG=1 for the traceback)")
                raise typer.Exit(getattr(exc, "exit_code", code)) from None

        return wrapper

    return decorate
