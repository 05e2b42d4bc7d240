"""Per-file download progress (bytes, rate, ETA) on stderr, fed by either hub client.

`FileProgress` is the one interface the fetcher talks to; `RichProgress` draws it with rich,
`NullProgress` draws nothing (`--json`, tests) and remembers what it was told. The adapters turn
each client's hook into it: `hf_bar_factory` is a `tqdm_class` for `huggingface_hub.hf_hub_download`
(it builds bars with tqdm keyword arguments), `modelscope_callback` a `ProgressCallback` subclass
for `modelscope.snapshot_download` (one instance per file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class FileProgress(Protocol):
    def start(self, name: str, total: int | None, initial: int = 0) -> Any: ...
    def advance(self, handle: Any, n: int) -> None: ...
    def set_total(self, handle: Any, total: int | None) -> None: ...
    def done(self, handle: Any) -> None: ...
    def note(self, message: str) -> None: ...


class NullProgress:
    """Draws nothing; keeps the byte count per file name (tests read `received`)."""

    def __init__(self) -> None:
        self.received: dict[str, int] = {}
        self.totals: dict[str, int | None] = {}
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def start(self, name: str, total: int | None, initial: int = 0) -> str:
        with self._lock:
            self.totals[name] = total
            self.received[name] = initial
        return name

    def advance(self, handle: str, n: int) -> None:
        with self._lock:
            self.received[handle] = self.received.get(handle, 0) + n

    def set_total(self, handle: str, total: int | None) -> None:
        self.totals[handle] = total

    def done(self, handle: str) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)


class RichProgress:
    """One rich progress row per file: name, bar, bytes done/total, rate, time left."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, name: str, total: int | None, initial: int = 0) -> Any:
        return self.bar.add_task(name, total=total, completed=initial)

    def advance(self, handle: Any, n: int) -> None:
        self.bar.advance(handle, n)

    def set_total(self, handle: Any, total: int | None) -> None:
        self.bar.update(handle, total=total)

    def done(self, handle: Any) -> None:
        task = next((t for t in self.bar.tasks if t.id == handle), None)
        if task is not None and task.total is not None:
            self.bar.update(handle, completed=task.total)

    def note(self, message: str) -> None:
        self.bar.console.print(message)


class _HfBar:
    """Enough of tqdm's surface for huggingface_hub's http_get and xet reporters; the rest is a no-op."""

    def __init__(
        self, sink: FileProgress, name: str, total: int | None = None, initial: int = 0, **_tqdm_kwargs: Any
    ) -> None:
        self._sink = sink
        self._total = total
        self.n = initial
        self._handle = sink.start(name, total, initial)

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = value
        self._sink.set_total(self._handle, value)

    def update(self, n: int | float | None = 1) -> None:
        step = int(n or 0)
        self.n += step
        self._sink.advance(self._handle, step)

    def close(self) -> None:
        self._sink.done(self._handle)

    def __enter__(self) -> _HfBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., None]:
        # set_postfix_str, refresh, update_transfer, ...: display details this sink does not draw.
        return lambda *args, **kwargs: None


def hf_bar_factory(sink: FileProgress, name: str) -> Callable[..., _HfBar]:
    """A `tqdm_class` for one `hf_hub_download` call that reports under the repo path `name`."""

    def make(*_args: Any, **kwargs: Any) -> _HfBar:
        kwargs.pop("desc", None)  # huggingface_hub shortens it; the repo path is clearer
        return _HfBar(sink, name, **kwargs)

    return make


def modelscope_callback(sink: FileProgress) -> type:
    """A `modelscope` `ProgressCallback` subclass (it instantiates one per file) that reports to `sink`."""
    from modelscope.hub.callback import ProgressCallback

    class _Callback(ProgressCallback):
        def __init__(self, filename: str, file_size: int):
            super().__init__(filename, file_size)
            self._handle = sink.start(filename, file_size or None)

        def update(self, size: int) -> None:
            sink.advance(self._handle, size)

        def end(self) -> None:
            sink.done(self._handle)

    return _Callback
