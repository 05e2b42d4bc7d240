"""Where weights come from: ModelScope, a Hugging Face mirror (`HF_ENDPOINT`), the official hub.

Each `Source` lists a repo (`list`) and downloads chosen files into the model folder in the hub
layout (`download`, `local_dir` mode), with the real client: `modelscope.snapshot_download` and
`huggingface_hub.hf_hub_download` (one call per file, as `snapshot_download` makes them, so each
file gets its own progress row). The clients are imported only when their source is used.

Failures a next source might not have (unreachable, not there, not allowed) are `SourceError`s;
`gated` marks a Hugging Face licence gate. Resume: both clients resume a dropped connection with
HTTP Range requests; ModelScope also keeps a partial file (`<name>.incomplete`) across runs,
huggingface_hub 2.4 restarts a file cut off in an earlier run (finished files are kept).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from i2v.catalogue.spec import ModelSpec
from i2v.weights.progress import FileProgress, hf_bar_factory, modelscope_callback
from i2v.weights.select import RemoteFile, Selection

HF_OFFICIAL = "https://huggingface.co"
SOURCE_CHOICES = ("auto", "modelscope", "huggingface")
MAX_WORKERS = 4


class SourceError(Exception):
    """This source cannot deliver the repo; the next one may."""

    def __init__(self, message: str, *, gated: bool = False):
        self.gated = gated
        super().__init__(message)


@dataclass(frozen=True)
class Listing:
    repo: str
    revision: str
    commit: str | None
    files: list[RemoteFile]
    gated: bool = False


class Source(Protocol):
    label: str  # modelscope | hf-mirror | huggingface
    endpoint: str | None
    family: str  # "modelscope" or "huggingface": a gate on one HF endpoint is a gate on all

    def repo_for(self, spec: ModelSpec) -> str | None: ...
    def has_token(self) -> bool: ...
    def list(self, repo: str, revision: str | None) -> Listing: ...
    def download(
        self, listing: Listing, selection: Selection, spec: ModelSpec, folder: Path, progress: FileProgress
    ) -> None: ...


# --- Hugging Face ----------------------------------------------------------------------------------


class HuggingFaceSource:
    family = "huggingface"

    def __init__(self, endpoint: str, label: str = "huggingface", token: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.label = label
        self.token = token if token is not None else (os.environ.get("HF_TOKEN") or None)

    def repo_for(self, spec: ModelSpec) -> str | None:
        return spec.hf_id

    def has_token(self) -> bool:
        if self.token:
            return True
        from huggingface_hub import get_token

        return bool(get_token())

    def list(self, repo: str, revision: str | None) -> Listing:
        from huggingface_hub import HfApi

        with self._translated(repo):
            info = HfApi(endpoint=self.endpoint, token=self.token).model_info(
                repo, revision=revision or "main", files_metadata=True
            )
        files = [
            RemoteFile(
                path=s.rfilename,
                size=int(s.size or 0),
                sha256=s.lfs.sha256 if s.lfs else None,
                git_oid=None if s.lfs else s.blob_id,
            )
            for s in info.siblings or []
        ]
        return Listing(
            repo=repo, revision=revision or "main", commit=info.sha, files=files, gated=bool(info.gated)
        )

    def download(
        self, listing: Listing, selection: Selection, spec: ModelSpec, folder: Path, progress: FileProgress
    ) -> None:
        from huggingface_hub import hf_hub_download

        def one(remote: RemoteFile) -> None:
            # A commit id as revision pins every file to the listing that was checked.
            hf_hub_download(
                listing.repo,
                remote.path,
                revision=listing.commit or listing.revision,
                local_dir=folder,
                endpoint=self.endpoint,
                token=self.token,
                tqdm_class=hf_bar_factory(progress, remote.path),
            )  # type: ignore[arg-type]

        pool = ThreadPoolExecutor(max_workers=MAX_WORKERS)
        futures = [pool.submit(one, remote) for remote in selection.files]
        try:
            with self._translated(listing.repo):
                for future in futures:
                    future.result()
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)  # files under way finish; the client cannot stop
            raise
        finally:
            pool.shutdown(wait=True)  # after a failed file the others still finish: a re-run fetches less

    @contextlib.contextmanager
    def _translated(self, repo: str) -> Iterator[None]:
        import httpx2
        from huggingface_hub import errors

        where = f"{repo} at {self.endpoint}"
        try:
            yield
        except errors.GatedRepoError as exc:
            raise SourceError(f"{where}: gated ({_first_line(exc)})", gated=True) from exc
        except errors.RevisionNotFoundError as exc:
            raise SourceError(f"{where}: no such revision ({_first_line(exc)})") from exc
        except errors.RepositoryNotFoundError as exc:
            raise SourceError(f"{where}: repository not found (or it needs a token)") from exc
        except errors.HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise SourceError(f"{where}: HTTP {status} ({_first_line(exc)})") from exc
        except errors.LocalEntryNotFoundError as exc:
            raise SourceError(f"{where}: cannot reach the hub ({_first_line(exc.__cause__ or exc)})") from exc
        except (httpx2.HTTPError, OSError) as exc:
            raise SourceError(f"{where}: {type(exc).__name__}: {_first_line(exc)}") from exc


# --- ModelScope ------------------------------------------------------------------------------------


def modelscope_endpoint() -> str | None:
    """`MODELSCOPE_ENDPOINT`, else `MODELSCOPE_DOMAIN` (a bare domain gets https://), else None (client's choice)."""
    value = (os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN") or "").strip()
    if not value:
        return None
    return (value if "://" in value else f"https://{value}").rstrip("/")


class ModelScopeSource:
    family = "modelscope"
    label = "modelscope"

    def __init__(self, endpoint: str | None = None, token: str | None = None):
        self.endpoint = endpoint or modelscope_endpoint()
        self.token = token

    def repo_for(self, spec: ModelSpec) -> str | None:
        return spec.modelscope_id

    def has_token(self) -> bool:
        return bool(self.token or os.environ.get("MODELSCOPE_API_TOKEN"))

    def _api(self, repo: str):
        from modelscope_hub import HubApi

        if self.endpoint is None:  # no endpoint configured: the client picks modelscope.cn or .ai
            with contextlib.suppress(Exception):
                self.endpoint = HubApi(token=self.token).resolve_endpoint_for_read(repo)
        return HubApi(endpoint=self.endpoint, token=self.token)

    def list(self, repo: str, revision: str | None) -> Listing:
        with self._translated(repo), _modelscope_quiet():
            entries = self._api(repo).list_repo_files(repo, "model", revision=revision or "master")
        files = [
            RemoteFile(path=e.path, size=int(e.size or 0), sha256=e.sha256 or None)
            for e in entries
            if not e.is_dir and e.path
        ]
        return Listing(repo=repo, revision=revision or "master", commit=None, files=files)

    def download(
        self, listing: Listing, selection: Selection, spec: ModelSpec, folder: Path, progress: FileProgress
    ) -> None:
        from modelscope.hub.snapshot_download import snapshot_download

        # The catalogue's patterns, minus what the selection left out (other variants, code).
        ignore = [glob.escape(path) for path in selection.excluded] + ["*.py"]
        with self._translated(listing.repo), _modelscope_quiet():
            snapshot_download(
                model_id=listing.repo,
                revision=listing.revision,
                local_dir=str(folder),
                cache_dir=str(folder / ".cache" / "modelscope"),
                allow_patterns=list(spec.allow_patterns),
                ignore_patterns=ignore,
                endpoint=self.endpoint,  # resolved by `list`; None lets the client choose
                token=self.token,
                max_workers=MAX_WORKERS,
                progress_callbacks=[modelscope_callback(progress)],
            )

    @contextlib.contextmanager
    def _translated(self, repo: str) -> Iterator[None]:
        import requests
        from modelscope_hub import errors

        where = f"{repo} at {self.endpoint or 'ModelScope'}"
        try:
            yield
        except (errors.AuthenticationError, errors.PermissionDeniedError) as exc:
            raise SourceError(
                f"{where}: not allowed without a ModelScope token (MODELSCOPE_API_TOKEN): {_first_line(exc)}"
            ) from exc
        except errors.NotExistError as exc:
            raise SourceError(f"{where}: not found ({_first_line(exc)})") from exc
        except errors.FileDownloadError as exc:
            failed = ", ".join(
                f"{path} ({_first_line(err)})" for path, err in list(exc.failed_files.items())[:3]
            )
            raise SourceError(f"{where}: download failed: {failed}") from exc
        except requests.HTTPError as exc:  # modelscope's compat layer re-raises hub errors as HTTPError
            raise SourceError(f"{where}: {_first_line(exc)}") from exc
        except (errors.HubError, requests.RequestException, OSError) as exc:
            raise SourceError(f"{where}: {type(exc).__name__}: {_first_line(exc)}") from exc


@contextlib.contextmanager
def _modelscope_quiet() -> Iterator[None]:
    """Our progress rows instead of modelscope-hub's own tqdm bars and INFO lines (it has no switch).

    Also mutes its warning that MODELSCOPE_DOMAIN is deprecated: we read that variable ourselves
    (`modelscope_endpoint`) and hand the client an explicit endpoint.
    """
    import logging
    import warnings

    from modelscope_hub import _download
    from tqdm.auto import tqdm

    sdk_logger = logging.getLogger("modelscope_hub")
    level, original = sdk_logger.level, getattr(_download, "tqdm", None)
    if not os.environ.get("MODELSCOPE_LOG_LEVEL"):
        sdk_logger.setLevel(logging.WARNING)
    if original is not None:
        _download.tqdm = functools.partial(tqdm, disable=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Environment variable MODELSCOPE_DOMAIN is deprecated")
            yield
    finally:
        if original is not None:
            _download.tqdm = original
        sdk_logger.setLevel(level)


# --- the chain -------------------------------------------------------------------------------------


def default_sources(choice: str) -> list[Source]:
    """`auto`: ModelScope, then the `HF_ENDPOINT` mirror (if set), then the official hub."""
    if choice not in SOURCE_CHOICES:
        from i2v.request import InvalidRequestError

        raise InvalidRequestError("source", choice, f"one of {', '.join(SOURCE_CHOICES)}")
    chain: list[Source] = []
    if choice in ("auto", "modelscope"):
        chain.append(ModelScopeSource())
    if choice in ("auto", "huggingface"):
        mirror = (os.environ.get("HF_ENDPOINT") or "").strip().rstrip("/")
        if mirror and mirror != HF_OFFICIAL:
            chain.append(HuggingFaceSource(mirror, label="hf-mirror"))
        chain.append(HuggingFaceSource(HF_OFFICIAL, label="huggingface"))
    return chain


def _first_line(exc: BaseException | object) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
