"""A small Hugging Face Hub on 127.0.0.1: the HTTP endpoints ``huggingface_hub`` and ``datasets`` use, for real.

Not a mock: a threaded HTTP server that the unmodified libraries reach through ``HF_ENDPOINT``. It serves
model and data set repositories from memory with the Hub's wire format (as read from huggingface_hub 2.x):

* ``HEAD/GET /{repo}/resolve/{rev}/{path}`` (``/datasets/{repo}/...`` for data sets) with ``ETag``,
  ``X-Repo-Commit`` and ``Content-Length``; large binary (LFS) files answer ``302`` to ``/cdn/{sha256}``
  on a second port (another origin, like the Hub's CDN) with ``X-Linked-Etag``/``X-Linked-Size``, as the
  Hub does; ``Range`` requests work;
* ``GET /api/{models,datasets}/{repo}[/revision/{rev}]`` (info with ``siblings``), ``.../tree/{rev}[/path]``
  and ``POST .../paths-info/{rev}``;
* errors with the ``X-Error-Code`` header huggingface_hub maps to exceptions: ``RepoNotFound`` (404),
  ``RevisionNotFound``, ``EntryNotFound``, and ``GatedRepo`` (401 without a token, 403 with a token that has
  not been granted access) for gated repositories, whose metadata stays public as on the Hub;
* uploads: ``POST /api/repos/create``, ``/api/validate-yaml`` (the card's metadata), ``.../preupload/{rev}``,
  the git-LFS batch API (``/{repo}.git/info/lfs/objects/batch`` + ``PUT`` + verify) and the NDJSON
  ``.../commit/{rev}``.

Every request is logged (method, path, status) so tests can assert what went over the wire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".parquet", ".arrow", ".gguf", ".pt", ".pth", ".h5", ".msgpack", ".onnx")


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str, data: bytes) -> bool:
    return path.endswith(LFS_SUFFIXES) or len(data) > 10_000_000


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    gated: bool = False
    granted_tokens: set[str] = field(default_factory=set)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    head: str = ""

    def commit(self, files: dict[str, bytes]) -> str:
        h = hashlib.sha1(f"{self.repo_type}/{self.repo_id}/{len(self.commits)}".encode())
        for path in sorted(files):
            h.update(path.encode() + git_blob_oid(files[path]).encode())
        sha = h.hexdigest()
        self.commits[sha] = dict(files)
        self.head = sha
        return sha

    def files_at(self, rev: str) -> tuple[str, dict[str, bytes]] | None:
        sha = self.head if rev == "main" else rev
        return (sha, self.commits[sha]) if sha in self.commits else None


class HubStandIn:
    """The server; ``url`` is what ``HF_ENDPOINT`` should be set to."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> content (the "CDN" / LFS storage)
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        # Two origins, as on the Hub: the API/resolve host, and a storage "CDN" that LFS files redirect to
        # (huggingface_hub follows redirects within the Hub host but reads file metadata off a CDN redirect).
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
        for server in self.servers:
            server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.servers[0].server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self.servers[1].server_address[1]}"

    def __enter__(self) -> HubStandIn:
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    # ------------------------------------------------------------------ content
    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes] | Path,
        repo_type: str = "model",
        gated: bool = False,
        granted_tokens: set[str] | None = None,
    ) -> Repo:
        """Create (or add a commit to) a repository from a ``{path: bytes}`` dict or a local directory."""
        if isinstance(files, Path):
            files = {p.relative_to(files).as_posix(): p.read_bytes() for p in sorted(files.rglob("*")) if p.is_file()}
        repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type, repo_id))
        repo.gated, repo.granted_tokens = gated, set(granted_tokens or ())
        for data in files.values():
            self.blobs[hashlib.sha256(data).hexdigest()] = data
        repo.commit(files)
        return repo

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def file_requests(self) -> list[tuple[str, str, int]]:
        """Logged requests that transfer or probe file content (resolve and CDN), not API calls."""
        return [r for r in self.log if "/resolve/" in r[1] or r[1].startswith("/cdn/")]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet: the hub keeps its own log
        pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        with self.hub.lock:
            self.hub.log.append((self.command, urlsplit(self.path).path, status))

    def _json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():  # streamed uploads (LFS PUT)
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    def do_HEAD(self) -> None:  # noqa: N802
        self._route()

    def do_GET(self) -> None:  # noqa: N802
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def do_PUT(self) -> None:  # noqa: N802
        self._route()

    # ------------------------------------------------------------------ routing
    def _route(self) -> None:
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        try:
            if parts[:1] == ["api"]:
                return self._api(parts[1:], query)
            if parts[:1] == ["cdn"] and len(parts) == 2:
                return self._cdn(parts[1])
            if parts[:1] == ["lfs-upload"] and self.command == "PUT":
                return self._lfs_put(parts[1])
            if parts[:1] == ["lfs-verify"]:
                self._body()
                return self._json(200, {"ok": True})
            repo_type = "dataset" if parts[:1] == ["datasets"] else "model"
            rest = parts[1:] if repo_type == "dataset" else parts
            if len(rest) >= 2 and rest[1].endswith(".git") and rest[2:] == ["info", "lfs", "objects", "batch"]:
                return self._lfs_batch(repo_type, f"{rest[0]}/{rest[1][:-4]}")
            if len(rest) >= 5 and rest[2] == "resolve":
                return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:]))
        except (BrokenPipeError, ConnectionResetError):
            return
        self._error(404, None, f"stand-in: no route for {self.command} {split.path}")

    def _find(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        return repo

    def _api(self, parts: list[str], query: dict[str, list[str]]) -> None:
        if parts == ["repos", "create"] and self.command == "POST":
            return self._create_repo()
        if parts == ["validate-yaml"] and self.command == "POST":
            return self._validate_yaml()
        if parts[:1] == ["whoami-v2"]:
            return self._json(200, {"type": "user", "name": "bayling-tester", "orgs": []})
        if len(parts) < 3 or parts[0] not in ("models", "datasets"):
            return self._error(404, None, "stand-in: unknown API route")
        repo_type = parts[0][:-1]
        repo_id, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        repo = self._find(repo_type, repo_id)
        if repo is None:
            return None
        if rest == [] or rest[:1] == ["revision"]:
            return self._info(repo, rest[1] if len(rest) > 1 else "main", "blobs" in query)
        if rest[:1] == ["tree"] and len(rest) >= 2:
            recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
            return self._tree(repo, rest[1], "/".join(rest[2:]), recursive)
        if rest[:1] == ["paths-info"] and len(rest) == 2:
            form = parse_qs(self._body().decode())
            return self._paths_info(repo, rest[1], form.get("paths", []))
        if rest[:1] == ["preupload"] and len(rest) == 2:
            return self._preupload(repo)
        if rest[:1] == ["commit"] and len(rest) == 2:
            return self._commit(repo, rest[1])
        return self._error(404, None, "stand-in: unknown repo API route")

    # ------------------------------------------------------------------ read side
    def _snapshot(self, repo: Repo, rev: str) -> tuple[str, dict[str, bytes]] | None:
        found = repo.files_at(rev)
        if found is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return found

    def _entry(self, path: str, data: bytes) -> dict:
        entry: dict = {"type": "file", "path": path, "size": len(data), "oid": git_blob_oid(data)}
        if is_lfs(path, data):
            sha = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
            entry["oid"] = git_blob_oid(pointer)
            entry["lfs"] = {"oid": sha, "size": len(data), "pointerSize": len(pointer)}
        return entry

    def _info(self, repo: Repo, rev: str, blobs: bool) -> None:
        found = self._snapshot(repo, rev)
        if found is None:
            return
        sha, files = found
        siblings = []
        for path, data in sorted(files.items()):
            sib: dict = {"rfilename": path}
            if blobs:
                entry = self._entry(path, data)
                sib.update(size=len(data), blobId=entry["oid"])
                if "lfs" in entry:
                    sib["lfs"] = {"sha256": entry["lfs"]["oid"], "size": len(data), "pointerSize": 134}
            siblings.append(sib)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self._json(
            200,
            {
                "_id": sha[:24],
                "id": repo.repo_id,
                "modelId" if repo.repo_type == "model" else "datasetId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": sha,
                "lastModified": now,
                "createdAt": now,
                "private": False,
                "disabled": False,
                "gated": "manual" if repo.gated else False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "usedStorage": sum(len(d) for d in files.values()),
            },
        )

    def _tree(self, repo: Repo, rev: str, path: str, recursive: bool) -> None:
        found = self._snapshot(repo, rev)
        if found is None:
            return
        sha, files = found
        prefix = f"{path.rstrip('/')}/" if path else ""
        if path and not any(f.startswith(prefix) for f in files):
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", {"X-Repo-Commit": sha})
        out, dirs = [], set()
        for f, data in sorted(files.items()):
            if not f.startswith(prefix):
                continue
            rel = f[len(prefix) :]
            segs = rel.split("/")
            for i in range(1, len(segs)):
                d = prefix + "/".join(segs[:i])
                if d not in dirs and (recursive or i == 1):
                    dirs.add(d)
                    out.append({"type": "directory", "path": d, "size": 0, "oid": git_blob_oid(d.encode())})
            if recursive or len(segs) == 1:
                out.append(self._entry(f, data))
        self._json(200, out)

    def _paths_info(self, repo: Repo, rev: str, paths: list[str]) -> None:
        found = self._snapshot(repo, rev)
        if found is None:
            return
        _, files = found
        out = []
        for p in paths:
            p = p.strip("/")
            if p in files:
                out.append(self._entry(p, files[p]))
            elif any(f.startswith(p + "/") for f in files) or p == "":
                out.append({"type": "directory", "path": p, "size": 0, "oid": git_blob_oid(p.encode())})
        self._json(200, out)

    def _gate(self, repo: Repo) -> bool:
        """Refuse file content of a gated repo to callers without a granted token (True when refused)."""
        if not repo.gated:
            return False
        token = self._token()
        what = "model" if repo.repo_type == "model" else "dataset"
        if token is None:
            self._error(
                401,
                "GatedRepo",
                f"Access to {what} {repo.repo_id} is restricted. You must have access to it and be authenticated "
                "to access it. Please log in.",
            )
            return True
        if token not in repo.granted_tokens:
            self._error(
                403,
                "GatedRepo",
                f"Access to {what} {repo.repo_id} is restricted and you are not in the authorized list. "
                f"Visit {self.hub.url}/{repo.repo_id} to ask for access.",
            )
            return True
        return False

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        repo = self._find(repo_type, repo_id)
        if repo is None or self._gate(repo):
            return
        found = self._snapshot(repo, rev)
        if found is None:
            return
        sha, files = found
        if path not in files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", {"X-Repo-Commit": sha})
        data = files[path]
        if is_lfs(path, data):
            digest = hashlib.sha256(data).hexdigest()
            return self._send(
                302,
                b"",
                {
                    "Location": f"{self.hub.cdn_url}/cdn/{digest}?expires=0",
                    "ETag": f'"{git_blob_oid(data)}"',
                    "X-Linked-Etag": f'"{digest}"',
                    "X-Linked-Size": str(len(data)),
                    "X-Repo-Commit": sha,
                },
            )
        self._content(data, f'"{git_blob_oid(data)}"', {"X-Repo-Commit": sha})

    def _cdn(self, digest: str) -> None:
        data = self.hub.blobs.get(digest)
        if data is None:
            return self._error(404, None, "no such object")
        self._content(data, f'"{digest}"', {})

    def _content(self, data: bytes, etag: str, headers: dict[str, str]) -> None:
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **headers}
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].split(",")[0].partition("-")
            if start_s == "":  # suffix range: the last N bytes
                start, end = max(len(data) - int(end_s), 0), len(data) - 1
            else:
                start, end = int(start_s), min(int(end_s) if end_s else len(data) - 1, len(data) - 1)
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start : end + 1], headers)
        self._send(200, data, headers)

    # ------------------------------------------------------------------ write side
    def _authorized(self) -> bool:
        if self._token() is None:
            self._error(401, None, "Invalid credentials in Authorization header")
            return False
        return True

    def _create_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        if not self._authorized():
            return
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or 'bayling-tester'}/{payload['name']}"
        url = f"{self.hub.url}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            return self._json(409, {"error": "You already created this repo", "url": url})
        self.hub.add_repo(
            repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}, repo_type
        )
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        """The metadata check the Hub runs on a README.md before a commit (YAML header, model-index shape)."""
        import yaml

        content = json.loads(self._body() or b"{}").get("content", "")
        errors = []
        if content.startswith("---"):
            try:
                meta = yaml.safe_load(content.split("---", 2)[1])
            except yaml.YAMLError as e:
                meta, errors = None, [{"message": f"invalid YAML: {e}"}]
            if meta is not None and not isinstance(meta, dict):
                errors.append({"message": "metadata must be a mapping"})
            index = (meta or {}).get("model-index") if isinstance(meta, dict) else None
            for entry in index or []:
                if not isinstance(entry, dict) or "name" not in entry or not isinstance(entry.get("results"), list):
                    errors.append({"message": "model-index entries need a name and a list of results"})
        if errors:
            return self._json(400, {"errors": errors, "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _preupload(self, repo: Repo) -> None:
        payload = json.loads(self._body() or b"{}")
        if not self._authorized():
            return
        files = []
        for f in payload.get("files", []):
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] > 10_000_000
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
        self._json(200, {"files": files, "commitOid": repo.head})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        payload = json.loads(self._body() or b"{}")
        if self._find(repo_type, repo_id) is None or not self._authorized():
            return
        objects = []
        for obj in payload.get("objects", []):
            item: dict = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.blobs:
                item["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/lfs-verify", "header": {}},
                }
            objects.append(item)
        self._json(200, {"transfer": "basic", "objects": objects})

    def _lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, None, "sha256 mismatch")
        self.hub.blobs[oid] = data
        self._send(200)

    def _commit(self, repo: Repo, rev: str) -> None:
        lines = [json.loads(x) for x in self._body().splitlines() if x.strip()]
        if not self._authorized():
            return
        found = self._snapshot(repo, rev)
        if found is None:
            return
        files = dict(found[1])
        summary = ""
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.hub.blobs:
                    return self._error(400, None, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.hub.blobs[value["oid"]]
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {k: v for k, v in files.items() if not k.startswith(value["path"].rstrip("/") + "/")}
        sha = repo.commit(files)
        prefix = "datasets/" if repo.repo_type == "dataset" else ""
        self._json(
            200,
            {
                "commitUrl": f"{self.hub.url}/{prefix}{repo.repo_id}/commit/{sha}",
                "commitOid": sha,
                "commitMessage": summary,
                "pullRequestUrl": None,
            },
        )
