"""Request bodies that are documents (Specification or Workflow), in JSON or YAML.

Bodies are validated exactly as the CLI validates files (``specs.loader.load_text``) with the source
``"request body"``, so the error details carry the same JSON paths and lines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from fastapi import Request
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from api.errors import (
    Detail,
    UnprocessableError,
    UnsupportedMediaTypeError,
    is_number_too_large,
    number_too_large,
)
from specs.errors import Problem, SpecError, json_path
from specs.loader import load_text
from specs.models import Specification, Workflow
from specs.parsing import read_text

SOURCE = "request body"
JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})

MAX_VERSION_CHARS = 64  # the width of the version columns

DocumentT = TypeVar("DocumentT", Specification, Workflow)


def media_type(request: Request) -> str | None:
    """The request's media type without parameters, lower-case; None when absent."""
    raw = request.headers.get("content-type")
    if raw is None or not raw.strip():
        return None
    return raw.split(";", 1)[0].strip().lower()


def loader_content_type(kind: str | None) -> str | None:
    """Map a request media type to what the loader understands (415 for anything else)."""
    if kind is None:
        return None
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return "application/json"
    if kind in YAML_TYPES:
        return "application/yaml"
    accepted = ", ".join(sorted(JSON_TYPES | YAML_TYPES))
    raise UnsupportedMediaTypeError(f"unsupported content type {kind!r}; send one of: {accepted}")


def decode_text(body: bytes) -> str:
    """The body as UTF-8 text (422 when it is not)."""
    if not body.strip():
        raise UnprocessableError(
            "the request body is empty", details=[Detail(loc="$", msg="a document is required")]
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnprocessableError(
            "the request body is not UTF-8 text",
            details=[Detail(loc="$", msg=f"invalid UTF-8 at byte {exc.start}")],
        ) from exc


def problems_to_details(problems: list[Problem]) -> list[Detail]:
    return [Detail(loc=p.json_path, msg=p.message, line=p.line, col=p.col) for p in problems]


def _unstorable(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    # PostgreSQL's JSONB refuses NUL characters and non-finite numbers; refuse them for every backend.
    if isinstance(value, str):
        if "\x00" in value:
            yield path, "NUL characters (\\u0000) are not allowed in strings"
        elif not _is_unicode(value):
            yield path, "strings must be valid Unicode (no lone surrogates)"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield path, "numbers must be finite (no NaN or Infinity)"
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and ("\x00" in key or not _is_unicode(key)):
                yield (*path, key), "keys must be valid Unicode without NUL characters"
            yield from _unstorable(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, (*path, index))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_storable(value: Any, *, prefix: tuple[str | int, ...] = (), what: str = "the request body") -> None:
    """Raise 422 when a JSON value holds something no backend can store."""
    details = [Detail(loc=json_path((*prefix, *path)), msg=msg) for path, msg in _unstorable(value)]
    if details:
        raise UnprocessableError(f"{what} holds values that cannot be stored", details=details[:50])


def parse_document(
    text: str,
    *,
    content_type: str | None,
    kind: type[DocumentT],
    specifications: Sequence[Specification] = (),
) -> DocumentT:
    """Load and validate exactly one document of ``kind`` (422 with located details otherwise).

    ``specifications`` are stored ones a workflow may implement; with its own among them, the
    workflow's references to parameters are checked too.
    """
    if "\x00" in text:
        raise UnprocessableError(
            "the request body contains NUL characters",
            details=[Detail(loc="$", msg="NUL characters are not allowed in documents")],
        )
    try:
        documents = load_text(text, source=SOURCE, content_type=content_type, specifications=specifications)
    except SpecError as exc:
        raise UnprocessableError(
            "the document is not valid", details=problems_to_details(exc.problems)
        ) from exc
    except ValueError as exc:
        if is_number_too_large(exc):
            raise number_too_large() from exc
        raise
    expected = kind.__name__
    if len(documents) != 1:
        raise UnprocessableError(
            f"send exactly one {expected} document",
            details=[Detail(loc="$", msg=f"found {len(documents)} documents, expected one {expected}")],
        )
    document = documents[0]
    if not isinstance(document, kind):
        raise UnprocessableError(
            f"expected a {expected} document",
            details=[Detail(loc="$.kind", msg=f"expected kind: {expected}, got {type(document).__name__}")],
        )
    strict = _schema_problems(text, content_type=content_type, kind=kind)
    if strict:
        details = problems_to_details(strict)
        raise UnprocessableError("the document does not match its JSON Schema", details=details)
    if len(document.version) > MAX_VERSION_CHARS:
        raise UnprocessableError(
            "the version is too long",
            details=[Detail(loc="$.version", msg=f"at most {MAX_VERSION_CHARS} characters are stored")],
        )
    check_storable(dump_document(document))
    return document


@functools.cache
def _validator(kind: type[BaseModel]) -> Draft202012Validator:
    return Draft202012Validator(kind.model_json_schema())


def _schema_problems(text: str, *, content_type: str | None, kind: type[BaseModel]) -> list[Problem]:
    """Values the document model would coerce (``false`` for a number, ``"1"`` for an integer).

    The API publishes the documents' JSON Schema in its OpenAPI document and holds bodies to it
    exactly, so a body is accepted only when it matches that schema.
    """
    raws, _ = read_text(text, source=SOURCE, content_type=content_type)
    validator = _validator(kind)
    problems: list[Problem] = []
    for raw in raws:
        for error in validator.iter_errors(raw.data):
            path = tuple(part for part in error.absolute_path if isinstance(part, str | int))
            problems.append(raw.problem(path, error.message))
    return problems


async def read_document(request: Request, *, kind: type[DocumentT]) -> DocumentT:
    """Read the request body and parse it as one document of ``kind``."""
    content_type = loader_content_type(media_type(request))
    text = decode_text(await request.body())
    return parse_document(text, content_type=content_type, kind=kind)


def dump_document(document: BaseModel) -> dict[str, Any]:
    """The normalised form stored and compared (aliases, defaults filled, no nulls)."""
    data: dict[str, Any] = document.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def content_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON form (sorted keys, no blanks)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
