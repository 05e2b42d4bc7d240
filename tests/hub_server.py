"""A fake model hub on loopback that speaks enough of both hub protocols for their real clients.

Hugging Face (what huggingface_hub 2.4's `model_info`, `list_repo_tree`, `hf_hub_download` call):
    GET  /api/models/{repo}[/revision/{rev}][?blobs=true]  model info with siblings (sizes, lfs sha256)
    GET  /api/models/{repo}/tree/{rev}?recursive=true      file listing
    HEAD /{repo}/resolve/{rev}/{path}                      ETag, X-Repo-Commit, Content-Length
    GET  /{repo}/resolve/{rev}/{path}                      the bytes; `Range: bytes=N-` gives a 206
  errors as the hub sends them: 401 + X-Error-Code RepoNotFound, 404 RevisionNotFound, and for a
  gated repo 401 (no token) / 403 (token without access) + X-Error-Code GatedRepo on resolve.
ModelScope (what modelscope-hub's listing and `snapshot_download` call):
    GET  /api/v1/models/{repo}                              repo info
    GET  /api/v1/models/{repo}/repo/files?Revision=&Recursive=   {"Data": {"Files": [...Sha256, Size]}}
    GET  /api/v1/models/{repo}/repo?Revision=&FilePath=     the bytes, with Range
Faults on demand: `drop(repo, path, after=N)` cuts the next download of a file after N bytes
(`then_fail=True`: later requests get 500 until `heal()`), `corrupt(repo, path)` serves one
flipped byte while the listing keeps the true hash. Every request is logged in `requests`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".model")


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str
    gated: bool = False
    tokens: frozenset[str] = frozenset()  # tokens that accepted the licence

    def sha256(self, path: str) -> str:
        return hashlib.sha256(self.files[path]).hexdigest()

    def git_oid(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    auth: str | None


@dataclass
class _Fault:
    after: int
    then_fail: bool
    fired: bool = False


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)  # bytes of file bodies sent, per "repo/path"
    faults: dict[str, _Fault] = field(default_factory=dict)
    corrupted: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- set-up ------------------------------------------------------------------------------------

    def add_repo(
        self, repo: str, files: dict[str, bytes], *, gated: bool = False, tokens: tuple[str, ...] = ()
    ) -> FakeRepo:
        commit = hashlib.sha1(repo.encode() + "\0".join(sorted(files)).encode()).hexdigest()
        self.repos[repo] = FakeRepo(dict(files), commit, gated, frozenset(tokens))
        return self.repos[repo]

    def add_folder(
        self,
        repo: str,
        folder: Path,
        extra: dict[str, bytes] | None = None,
        drop: tuple[str, ...] = (),
        **kwargs,
    ) -> FakeRepo:
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(".")
        }
        for path in drop:
            files.pop(path)
        return self.add_repo(repo, {**files, **(extra or {})}, **kwargs)

    def drop(self, repo: str, path: str, after: int, then_fail: bool = False) -> None:
        self.faults[f"{repo}/{path}"] = _Fault(after, then_fail)

    def corrupt(self, repo: str, path: str) -> None:
        self.corrupted.add(f"{repo}/{path}")

    def heal(self) -> None:
        self.failing.clear()
        self.faults.clear()
        self.corrupted.clear()

    def file_gets(self, path: str) -> list[Logged]:
        """Body requests (GET) for a repo file, either protocol."""
        return [
            r
            for r in self.requests
            if r.method == "GET"
            and (r.path.endswith("/" + path) or f"FilePath={path}" in r.path.replace("%2F", "/"))
        ]

    # --- server ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeHub

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # --- routing -----------------------------------------------------------------------------------

    def _route(self, head: bool) -> None:
        hub = self.fake
        with hub._lock:
            hub.requests.append(
                Logged(self.command, self.path, self.headers.get("Range"), self.headers.get("Authorization"))
            )
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        routes = [
            (r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", self._hf_info),
            (r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", self._hf_tree),
            (r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._hf_resolve),
            (r"/api/v1/models/(?P<repo>[^/]+/[^/]+)/repo/files", self._ms_files),
            (r"/api/v1/models/(?P<repo>[^/]+/[^/]+)/repo", self._ms_file),
            (r"/api/v1/models/(?P<repo>[^/]+/[^/]+)", self._ms_info),
        ]
        for pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match:
                handler(head=head, query=query, **match.groupdict())
                return
        self._json(404, {"error": f"no route for {path}"})

    # --- Hugging Face ------------------------------------------------------------------------------

    def _hf_repo(self, repo: str, rev: str | None) -> FakeRepo | None:
        found = self.fake.repos.get(repo)
        if found is None:
            self._json(
                401,
                {"error": "Repository not found"},
                {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
            )
            return None
        if rev not in (None, "main", found.commit):
            self._json(
                404,
                {"error": f"Invalid rev id: {rev}"},
                {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"},
            )
            return None
        return found

    def _hf_info(self, head: bool, query: dict, repo: str, rev: str | None) -> None:
        found = self._hf_repo(repo, rev)
        if found is None:
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(found.files):
            sibling: dict = {"rfilename": path}
            if blobs:
                sibling.update(size=len(found.files[path]), blobId=found.git_oid(path))
                if found.is_lfs(path):
                    sibling["lfs"] = {
                        "sha256": found.sha256(path),
                        "size": len(found.files[path]),
                        "pointerSize": 134,
                    }
            siblings.append(sibling)
        self._json(
            200,
            {
                "_id": found.commit[:24],
                "id": repo,
                "modelId": repo,
                "sha": found.commit,
                "private": False,
                "gated": "manual" if found.gated else False,
                "disabled": False,
                "library_name": "diffusers",
                "tags": ["diffusers"],
                "siblings": siblings,
                "lastModified": "2025-01-01T00:00:00.000Z",
                "downloads": 0,
                "likes": 0,
            },
        )

    def _hf_tree(self, head: bool, query: dict, repo: str, rev: str, sub: str | None) -> None:
        found = self._hf_repo(repo, rev)
        if found is None:
            return
        prefix = f"{sub.rstrip('/')}/" if sub else ""
        entries, folders = [], set()
        for path in sorted(found.files):
            if not path.startswith(prefix):
                continue
            parts = path.split("/")
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            entry = {"type": "file", "oid": found.git_oid(path), "size": len(found.files[path]), "path": path}
            if found.is_lfs(path):
                entry["lfs"] = {"oid": found.sha256(path), "size": len(found.files[path]), "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(folders)]
        self._json(200, entries)

    def _hf_resolve(self, head: bool, query: dict, repo: str, rev: str, file: str) -> None:
        found = self._hf_repo(repo, rev)
        if found is None:
            return
        if found.gated and not self._token_ok(found):
            status = 403 if self.headers.get("Authorization") else 401
            message = (
                f"Access to model {repo} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in."
            )
            self._json(status, {"error": message}, {"X-Error-Code": "GatedRepo", "X-Error-Message": message})
            return
        if file not in found.files:
            self._json(
                404,
                {"error": "Entry not found"},
                {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"},
            )
            return
        etag = found.sha256(file) if found.is_lfs(file) else found.git_oid(file)
        self._send_file(
            head, repo, file, found.files[file], {"ETag": f'"{etag}"', "X-Repo-Commit": found.commit}
        )

    # --- ModelScope --------------------------------------------------------------------------------

    def _ms_repo(self, repo: str) -> FakeRepo | None:
        found = self.fake.repos.get(repo)
        if found is None:
            self._json(404, {"Code": 404, "Message": f"model {repo} not found", "Success": False})
        elif found.gated and not self._token_ok(found):
            self._json(401, {"Code": 401, "Message": "login required", "Success": False})
            return None
        return found

    def _ms_info(self, head: bool, query: dict, repo: str) -> None:
        found = self._ms_repo(repo)
        if found is not None:
            owner, name = repo.split("/")
            self._json(
                200,
                {
                    "Code": 200,
                    "Success": True,
                    "Message": "success",
                    "Data": {"Id": 1, "Name": name, "Path": owner, "ModelType": ["diffusers"]},
                },
            )

    def _ms_files(self, head: bool, query: dict, repo: str) -> None:
        found = self._ms_repo(repo)
        if found is None:
            return
        root = (query.get("Root", [""])[0] or "").strip("/")
        files = []
        for path in sorted(found.files):
            if root and not path.startswith(root + "/"):
                continue
            data = found.files[path]
            files.append(
                {
                    "Name": path.rsplit("/", 1)[-1],
                    "Path": path,
                    "Size": len(data),
                    "Type": "blob",
                    "Sha256": found.sha256(path),
                    "Revision": found.commit,
                    "IsLFS": found.is_lfs(path),
                }
            )
        self._json(200, {"Code": 200, "Success": True, "Message": "success", "Data": {"Files": files}})

    def _ms_file(self, head: bool, query: dict, repo: str) -> None:
        found = self._ms_repo(repo)
        if found is None:
            return
        file = query.get("FilePath", [""])[0]
        if file not in found.files:
            self._json(404, {"Code": 404, "Message": f"file {file} not found", "Success": False})
            return
        self._send_file(head, repo, file, found.files[file], {})

    # --- shared ------------------------------------------------------------------------------------

    def _token_ok(self, found: FakeRepo) -> bool:
        auth = self.headers.get("Authorization") or ""
        return auth.removeprefix("Bearer ").strip() in found.tokens

    def _send_file(self, head: bool, repo: str, file: str, data: bytes, headers: dict[str, str]) -> None:
        key = f"{repo}/{file}"
        hub = self.fake
        if key in hub.failing and not head:
            self._json(500, {"error": "internal error (injected)"})
            return
        if key in hub.corrupted:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not head:
            start = int(match.group(1))
            if start >= len(data):
                self._json(416, {"error": "range not satisfiable"}, {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        body = data[start:]
        self.send_response(status)
        for name, value in {
            **headers,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body) if not head else len(data)),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        fault = hub.faults.get(key)
        if fault is not None and not fault.fired:
            fault.fired = True
            if fault.then_fail:
                hub.failing.add(key)
            self.wfile.write(body[: fault.after])
            self._count(key, fault.after)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
            return
        self.wfile.write(body)
        self._count(key, len(body))

    def _count(self, key: str, n: int) -> None:
        with self.fake._lock:
            self.fake.served[key] = self.fake.served.get(key, 0) + n

    def _json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        for name, value in {
            **(headers or {}),
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# --- the repos the weights tests use ---------------------------------------------------------------

TINY = "tiny-i2vgen-xl"  # the tiny model served as a hub repo (0.5 s to build, 2.5 MB)
REPO = "org/tiny-i2vgen"  # a pipeline repo: safetensors, plus files a fetch must leave out
PICKLE_REPO = "org/pickle-vae"  # its vae has only diffusion_pytorch_model.bin
GATED_REPO = "org/gated-i2vgen"  # licence-gated on the Hugging Face side; accepts token GOOD_TOKEN
GOOD_TOKEN = "hf_accepted_licence"
UNET = "unet/diffusion_pytorch_model.safetensors"
VAE = "vae/diffusion_pytorch_model.safetensors"
# In the repo, not for the pipeline: another precision variant, pickle twins, code, docs.
EXTRAS = {
    "unet/diffusion_pytorch_model.fp16.safetensors": b"\0" * 4096,
    "unet/diffusion_pytorch_model.bin": b"pickle" * 100,
    "pipeline.py": b"import os\n",
    "README.md": b"# tiny\n",
}


def standard_hub(tiny_folder: Path) -> FakeHub:
    hub = FakeHub()
    hub.add_folder(REPO, tiny_folder, extra=EXTRAS)
    hub.add_folder(
        PICKLE_REPO, tiny_folder, drop=(VAE,), extra={"vae/diffusion_pytorch_model.bin": b"p" * 999}
    )
    hub.add_folder(GATED_REPO, tiny_folder, gated=True, tokens=(GOOD_TOKEN,))
    return hub
