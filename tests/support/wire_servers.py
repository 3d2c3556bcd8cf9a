"""Local HTTP servers that check the wire format of the sinks no server of which installs here:
Elasticsearch (``/_index_template``, ``/_bulk``) and InfluxDB 2.x (``/api/v2/write``).

Each request is validated as the real server would (paths, methods, the official clients'
headers, bulk NDJSON action/source pairs, index template bodies, line protocol and precision);
what is wrong is kept in ``problems`` (and answered 400), what is right is stored the way the
server stores it (documents by index and id, points by series and time), so a test can count
and compare. ``down`` makes the server answer 503, as a server that is starting or overloaded.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.servers import QuietHandler

ES_MEDIA = re.compile(r"^application/vnd\.elasticsearch\+(x-ndjson|json); ?compatible-with=[89]$")
_NAME = r"(?:[^,= \\]|\\.)+"
LINE = re.compile(
    rf"^(?P<measurement>{_NAME})(?P<tags>(?:,{_NAME}={_NAME})*) (?P<fields>\S.*?) (?P<time>-?\d+)$"
)
FIELD = re.compile(
    r'^(?:[^,= \\]|\\.)+=(?:-?\d+i|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|t|f|true|false|"(?:[^"\\]|\\.)*")$'
)


@dataclass
class WireServer:
    """What a fake server saw and stored."""

    url: str = ""
    problems: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class FakeElasticsearch(WireServer):
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    api_key: str | None = None

    def in_index(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Documents by id, of the indices whose name starts with ``prefix``."""
        return {doc_id: doc for (index, doc_id), doc in self.documents.items() if index.startswith(prefix)}


@dataclass
class FakeInfluxDB2(WireServer):
    token: str = ""
    org: str = ""
    bucket: str = ""
    # (measurement, sorted tags, time) -> field text, as InfluxDB keys a point.
    points: dict[tuple[str, str, int], str] = field(default_factory=dict)
    precisions: set[str] = field(default_factory=set)


def _es_headers(server: FakeElasticsearch, headers: dict[str, str], *, ndjson: bool) -> list[str]:
    problems = []
    if not headers.get("user-agent", "").startswith("elasticsearch-py/"):
        problems.append(f"user-agent is not the official client's: {headers.get('user-agent')!r}")
    if not ES_MEDIA.match(headers.get("accept", "")):
        problems.append(f"accept: {headers.get('accept')!r}")
    content = headers.get("content-type", "")
    match = ES_MEDIA.match(content)
    if not match or (match.group(1) == "x-ndjson") != ndjson:
        problems.append(f"content-type: {content!r}")
    if "x-elastic-client-meta" not in headers:
        problems.append("no x-elastic-client-meta header")
    if server.api_key is not None and headers.get("authorization") != f"ApiKey {server.api_key}":
        problems.append(f"authorization: {headers.get('authorization')!r}")
    return problems


def _template_problems(name: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [f"template {name}: body is not an object"]
    problems = []
    patterns = body.get("index_patterns")
    if not (
        isinstance(patterns, list)
        and patterns
        and all(isinstance(p, str) and p.endswith("*") for p in patterns)
    ):
        problems.append(f"template {name}: index_patterns {patterns!r}")
    mappings = (body.get("template") or {}).get("mappings") or {}
    properties = mappings.get("properties")
    if not isinstance(properties, dict) or not properties:
        problems.append(f"template {name}: no template.mappings.properties")
    else:
        for key, mapping in properties.items():
            if not isinstance(mapping, dict) or "type" not in mapping:
                problems.append(f"template {name}: mapping of {key} has no type")
    unknown = set(body) - {"index_patterns", "priority", "template", "_meta", "composed_of", "version"}
    if unknown:
        problems.append(f"template {name}: unknown keys {sorted(unknown)}")
    return problems


def _bulk(server: FakeElasticsearch, text: str) -> tuple[list[str], list[dict[str, Any]]]:
    lines = text.split("\n")
    if lines[-1] != "":
        return ["bulk body does not end with a newline"], []
    lines = lines[:-1]
    if len(lines) % 2:
        return [f"bulk body has {len(lines)} lines: not action/source pairs"], []
    problems: list[str] = []
    items: list[dict[str, Any]] = []
    for number in range(0, len(lines), 2):
        try:
            action, source = json.loads(lines[number]), json.loads(lines[number + 1])
        except json.JSONDecodeError as exc:
            problems.append(f"bulk line {number + 1}: not JSON ({exc})")
            continue
        if list(action) != ["index"] or set(action["index"]) != {"_index", "_id"}:
            problems.append(f"bulk line {number + 1}: action {action!r} is not index with _index and _id")
            continue
        index, doc_id = action["index"]["_index"], action["index"]["_id"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*-(runs|logs)-\d{4}\.\d{2}\.\d{2}", index):
            problems.append(f"bulk line {number + 1}: index name {index!r}")
        if not isinstance(source, dict) or "@timestamp" not in source:
            problems.append(f"bulk line {number + 2}: source without @timestamp")
        created = (index, doc_id) not in server.documents
        server.documents[(index, doc_id)] = source
        status = 201 if created else 200
        items.append(
            {
                "index": {
                    "_index": index,
                    "_id": doc_id,
                    "status": status,
                    "result": "created" if created else "updated",
                }
            }
        )
    return problems, items


def _influx_line_problems(line: str) -> list[str]:
    match = LINE.match(line)
    if not match:
        return [f"not line protocol: {line!r}"]
    fields = re.split(r"(?<!\\),", match.group("fields"))
    return [f"field {item!r} of {line!r}" for item in fields if not FIELD.match(item)]


def _handler(server: WireServer) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("x-elastic-product", "Elasticsearch")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            if headers.get("content-encoding") == "gzip":
                raw = gzip.decompress(raw)
            with server.lock:
                server.requests.append((self.command, self.path, headers))
                if server.down:
                    self._answer(503, {"error": "unavailable"})
                    return
                problems, status, body = route(server, self.command, self.path, headers, raw)
                server.problems.extend(problems)
            if problems:
                self._answer(400, {"error": problems})
            elif status == 204:
                self.send_response(204)
                self.end_headers()
            else:
                self._answer(status, body)

        def do_GET(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

    return Handler


def route(
    server: WireServer, method: str, target: str, headers: dict[str, str], raw: bytes
) -> tuple[list[str], int, Any]:
    """Validate one request; (problems, status, answer)."""
    path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
    if isinstance(server, FakeElasticsearch):
        if method == "PUT" and path.startswith("/_index_template/"):
            problems = _es_headers(server, headers, ndjson=False)
            name = path.removeprefix("/_index_template/")
            body = json.loads(raw)
            problems += _template_problems(name, body)
            server.templates[name] = body
            return problems, 200, {"acknowledged": True}
        if method in ("PUT", "POST") and path == "/_bulk":
            problems = _es_headers(server, headers, ndjson=True)
            more, items = _bulk(server, raw.decode())
            return problems + more, 200, {"took": 1, "errors": False, "items": items}
        return [f"unexpected {method} {path}"], 404, {}
    assert isinstance(server, FakeInfluxDB2)
    if method != "POST" or path != "/api/v2/write":
        return [f"unexpected {method} {path}"], 404, {}
    problems = []
    if headers.get("authorization") != f"Token {server.token}":
        problems.append(f"authorization: {headers.get('authorization')!r}")
    if not headers.get("user-agent", "").startswith("influxdb-client-python/"):
        problems.append(f"user-agent: {headers.get('user-agent')!r}")
    if not headers.get("content-type", "").startswith("text/plain"):
        problems.append(f"content-type: {headers.get('content-type')!r}")
    if query.get("org") != [server.org] or query.get("bucket") != [server.bucket]:
        problems.append(f"org/bucket: {query}")
    precision = (query.get("precision") or ["ns"])[0]
    if precision not in ("ns", "us", "ms", "s"):
        problems.append(f"precision {precision!r}")
    server.precisions.add(precision)
    for line in raw.decode().splitlines():
        if not line:
            continue
        line_problems = _influx_line_problems(line)
        problems += line_problems
        if not line_problems:
            match = LINE.match(line)
            assert match is not None
            key = (match.group("measurement"), match.group("tags"), int(match.group("time")))
            server.points[key] = match.group("fields")
    return problems, 204, None


@contextlib.contextmanager
def serving(server: WireServer) -> Iterator[WireServer]:
    """Serve ``server`` on a free port of 127.0.0.1 (its ``url`` set) for the block."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
