"""A local stand-in for the Hub's HTTP API: the endpoints huggingface_hub 2.4 calls to create a repo, a branch,
a commit (preupload + ndjson commit, files sent inline, parentCommit checked), a tag, and to list refs, commits
and files. Tests inject failures: a 500 before a commit, a commit that lands but whose answer is lost, a 400, a 500
on a tag, and a commit that hangs until released.

It keeps repos in memory as commits of {path: bytes} so tests can check what arrived on which revision. It is a
contract test of our client calls, not of the Hub: it cannot prove the real Hub accepts the card metadata, the
LFS/Xet upload of large weights (every file is "regular" here), rate limits or permissions beyond one token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml


@dataclass
class Commit:
    oid: str
    parent: str
    message: str
    description: str
    files: dict[str, bytes]


@dataclass
class Repo:
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        oid = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits[oid]

    def files(self, revision: str) -> dict[str, bytes]:
        return self.resolve(revision).files

    def history(self, branch: str) -> list[Commit]:
        out, oid = [], self.branches[branch]
        while oid:
            out.append(self.commits[oid])
            oid = self.commits[oid].parent
        return out


class FakeHub:
    def __init__(self, token: str = "hf_test_token"):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_commits = 0  # answer the next N commits with a 500 (nothing lands)
        self.lose_commit_answers = 0  # the next N commits land, then the connection drops without an answer
        self.reject_commits = 0  # answer the next N commits with a 400 (a client error: nothing lands)
        self.fail_tags = 0  # answer the next N tag creations with a 500 (the tag is not made)
        self.reject_metadata = False  # answer validate-yaml with a 400 (the card's metadata is invalid)
        self.hold_commits: threading.Event | None = None  # when set to an Event: commits wait until it is set
        self.commit_requests = 0  # every POST to a commit endpoint, failed or not
        self.validated: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _new_commit(self, repo: Repo, parent: str, message: str, description: str, files: dict) -> Commit:
        oid = hashlib.sha1(f"{parent}{message}{sorted(files.items())}{len(repo.commits)}".encode()).hexdigest()
        commit = Commit(oid, parent, message, description, files)
        repo.commits[oid] = commit
        return commit

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def _reply(self, status: int, body=None, headers: dict | None = None):
                data = json.dumps(body if body is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str):
                self._reply(status, {"error": message}, {"X-Error-Message": message})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    self._error(401, "Invalid credentials in Authorization header")
                    return False
                return True

            def _route(self, method: str):
                url = urlparse(self.path)
                hub.requests.append((method, url.path))
                parts = url.path.split("/")
                if not self._authorized():
                    return
                if method == "POST" and url.path == "/api/repos/create":
                    return self._create_repo(json.loads(self._body()))
                if method == "POST" and url.path == "/api/validate-yaml":
                    return self._validate_yaml(json.loads(self._body()))
                if len(parts) < 6 or parts[1:3] != ["api", "models"]:
                    return self._error(404, f"no route {url.path}")
                repo_id, action, rest = f"{parts[3]}/{parts[4]}", parts[5], [unquote(p) for p in parts[6:]]
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                handler = {
                    ("POST", "branch"): self._branch,
                    ("POST", "tag"): self._tag,
                    ("POST", "preupload"): self._preupload,
                    ("POST", "commit"): self._commit,
                    ("GET", "refs"): self._refs,
                    ("GET", "commits"): self._commits,
                    ("GET", "tree"): self._tree,
                }.get((method, action))
                if handler is None:
                    return self._error(404, f"no route {method} {url.path}")
                return handler(repo_id, repo, rest)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def _create_repo(self, payload):
                repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
                if repo_id in hub.repos:  # the Hub answers 409 with the url, which create_repo(exist_ok) reads
                    error = "You already created this model repo"
                    return self._reply(
                        409, {"error": error, "url": f"{hub.endpoint}/{repo_id}"}, {"X-Error-Message": error}
                    )
                repo = Repo(private=payload.get("visibility", "public") == "private" or bool(payload.get("private")))
                first = hub._new_commit(
                    repo, "", "initial commit", "", {".gitattributes": b"*.safetensors filter=lfs\n"}
                )
                repo.branches["main"] = first.oid
                hub.repos[repo_id] = repo
                self._reply(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})

            def _validate_yaml(self, payload):
                hub.validated.append(payload["content"])
                content = payload["content"]
                if hub.reject_metadata:
                    return self._reply(400, {"errors": [{"message": "model-index is invalid (injected)"}]})
                if content.startswith("---"):
                    try:
                        yaml.safe_load(content.split("---")[1])
                    except yaml.YAMLError as err:
                        return self._reply(400, {"errors": [{"message": str(err)}]})
                self._reply(200, {"errors": [], "warnings": []})

            def _branch(self, repo_id, repo, rest):
                name = rest[0]
                start = json.loads(self._body() or b"{}").get("startingPoint") or "main"
                if name in repo.branches:
                    return self._error(409, "Reference already exists")
                repo.branches[name] = repo.resolve(start).oid
                self._reply(200, {})

            def _tag(self, repo_id, repo, rest):
                payload = json.loads(self._body())
                if hub.fail_tags > 0:
                    hub.fail_tags -= 1
                    return self._error(500, "Internal Error (injected by the test)")
                if payload["tag"] in repo.tags:
                    return self._error(409, "Tag already exists")
                repo.tags[payload["tag"]] = repo.resolve(rest[0]).oid
                self._reply(200, {})

            def _preupload(self, repo_id, repo, rest):
                payload = json.loads(self._body())
                existing = repo.files(rest[0]) if rest[0] in repo.branches else {}
                files = [
                    {
                        "path": f["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": None if f["path"] not in existing else _git_oid(existing[f["path"]]),
                    }
                    for f in payload["files"]
                ]
                self._reply(200, {"files": files})

            def _commit(self, repo_id, repo, rest):
                lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
                hub.commit_requests += 1
                if hub.hold_commits is not None:
                    hub.hold_commits.wait(timeout=60)
                if hub.fail_commits > 0:
                    hub.fail_commits -= 1
                    return self._error(500, "Internal Error (injected by the test)")
                if hub.reject_commits > 0:
                    hub.reject_commits -= 1
                    return self._error(400, "Bad request (injected by the test)")
                branch = rest[0]
                if branch not in repo.branches:
                    return self._reply(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                header = lines[0]["value"]
                parent = header.get("parentCommit")
                if parent and parent != repo.branches[branch]:
                    return self._error(412, "A commit has happened since. Please refresh and try again.")
                files = dict(repo.files(branch))
                for item in lines[1:]:
                    value = item["value"]
                    if item["key"] == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif item["key"] == "deletedFile":
                        files.pop(value["path"], None)
                    else:
                        return self._error(400, f"unsupported commit operation {item['key']}")
                commit = hub._new_commit(repo, repo.branches[branch], header["summary"], header["description"], files)
                repo.branches[branch] = commit.oid
                if hub.lose_commit_answers > 0:  # landed, but the client never hears so
                    hub.lose_commit_answers -= 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._reply(
                    200, {"commitUrl": f"{hub.endpoint}/{repo_id}/commit/{commit.oid}", "commitOid": commit.oid}
                )

            def _refs(self, repo_id, repo, rest):
                def refs(kind, table):
                    return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in table.items()]

                self._reply(
                    200, {"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags), "converts": []}
                )

            def _commits(self, repo_id, repo, rest):
                oid = repo.resolve(rest[0]).oid
                history = []
                while oid:
                    commit = repo.commits[oid]
                    history.append(
                        {
                            "id": commit.oid,
                            "title": commit.message,
                            "message": commit.description,
                            "authors": [{"user": "user"}],
                            "date": "2026-11-28T05:00:00.000Z",
                        }
                    )
                    oid = commit.parent
                self._reply(200, history)

            def _tree(self, repo_id, repo, rest):
                files = repo.files(rest[0])
                self._reply(
                    200,
                    [
                        {"type": "file", "path": p, "size": len(b), "oid": _git_oid(b)}
                        for p, b in sorted(files.items())
                    ],
                )

        return Handler


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
