"""Check requests sent to the fake Asana against the committed contract (a subset of Asana's spec).

Only shape is checked here (path, method, parameters, opt_fields values, request body); the fake
checks authentication itself and answers 401 the way Asana does.
"""

import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path

from jsonschema.exceptions import ValidationError
from jsonschema_path import SchemaPath
from openapi_core import V30RequestValidator
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

CONTRACT_PATH = Path(__file__).with_name("contract.json")
API_PREFIX = "/api/1.0"
_GID_SEGMENT = re.compile(r"/\d+(?=/|$)")
_HOST = "https://app.asana.com"  # the contract's server is https://app.asana.com/api/1.0
# Authentication is the fake's job; the validator sees a dummy token so it checks the rest.
_VALIDATOR_HEADERS = Headers({"Authorization": "Bearer contract-check"})


class _Request:
    """The minimal request object openapi-core reads."""

    def __init__(
        self,
        method: str,
        path: str,
        query: tuple[tuple[str, str], ...],
        content_type: str,
        body: bytes,
    ) -> None:
        self.host_url = _HOST
        self.path = API_PREFIX + path
        self.method = method.lower()
        self.content_type = content_type
        self.body = body or None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)), header=_VALIDATOR_HEADERS
        )


@functools.cache
def _validator() -> V30RequestValidator:
    # Loading is cheap (the contract is small); building the validator once per process is enough.
    spec = SchemaPath.from_dict(json.loads(CONTRACT_PATH.read_text(encoding="utf-8")))
    return V30RequestValidator(spec)


def _describe(error: Exception) -> str:
    if isinstance(error, PathNotFound):
        return "No matching route for request (not in the contract)"
    if isinstance(error, OperationNotFound):
        return f"{error.method.upper()} is not allowed on this path (not in the contract)"
    cause = error.__cause__
    if cause is None:
        return str(error) or type(error).__name__  # e.g. "Missing required request body"
    name = getattr(error, "name", None)
    prefix = f"{name}: " if name else ""
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return prefix + "; ".join(_schema_message(e) for e in schema_errors)
    return prefix + str(cause)


def _schema_message(error: ValidationError) -> str:
    # Item indexes (opt_fields' "0") say nothing useful; property names do.
    where = ".".join(str(p) for p in error.absolute_path if not isinstance(p, int))
    where = f"{where}: " if where else ""
    if error.validator == "enum":
        # The opt_fields enums list hundreds of values; name the offender, not the whole list.
        return f"{where}{error.instance!r} is not an allowed value"
    return where + error.message


@functools.lru_cache(maxsize=4096)
def _errors(
    method: str, path: str, query: tuple[tuple[str, str], ...], content_type: str, body: bytes
) -> tuple[str, ...]:
    # Cached: openapi-core costs 3-7 ms per request, and tests repeat the same requests
    # (polling, retries, and the same GIDs in every test, as each fake numbers from the same start).
    request = _Request(method, path, query, content_type, body)
    return tuple(_describe(error) for error in _validator().iter_errors(request))


def request_errors(
    method: str, path: str, query: Iterable[tuple[str, str]], content_type: str, body: bytes
) -> list[str]:
    """Why the request does not match Asana's contract; empty when it does.

    `path` is relative to the API root (e.g. "/tasks/123").
    """
    # Which object a path names cannot change its validity (path GIDs are plain strings in the
    # contract), so numeric segments share one cache entry.
    shape = _GID_SEGMENT.sub("/1", path)
    return list(_errors(method, shape, tuple(query), content_type or "", body or b""))
