"""Errors as each vendor writes them: one exception for every refusal, one style per vendor to render it.

A handler (or the auth check, or a parameter parser) raises :class:`ApiError`; the sandbox renders it in its
vendor's style, and the fault injector renders its injected failures the same way, so that a client sees one
error shape per API whatever produced the error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response


class ApiError(Exception):
    """A refusal: HTTP ``status`` with a sentence (``detail``), a vendor ``code`` and the parameter at fault."""

    def __init__(self, status: int, detail: str, code: str = "", source: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.source = source
        self.headers = headers or {}


class BadParam(ApiError):
    """A query parameter the API refuses; the sandbox decides the status (400 or 422) and the code."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(0, detail, source=name)


class ErrorStyle(ABC):
    """How one vendor writes an error body, and how the OpenAPI document describes it."""

    media_type: str = "application/json"

    @abstractmethod
    def body(self, error: ApiError) -> bytes:
        """The error body as sent."""

    @abstractmethod
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of :meth:`body` (for the OpenAPI document)."""

    def code(self, error: ApiError) -> str:
        """The vendor's code word for ``error`` (its own, or one derived from the status)."""
        if error.code:
            return error.code
        try:
            return HTTPStatus(error.status).phrase.lower().replace(" ", "_").replace("-", "_")
        except ValueError:
            return "error"

    def response(self, error: ApiError) -> Response:
        headers = dict(error.headers)
        if error.status in (429, 503) and "retry-after" not in {k.lower() for k in headers}:
            headers["Retry-After"] = "1"
        return Response(self.body(error), status_code=error.status, media_type=self.media_type, headers=headers)

    def content(self, description: str) -> dict[str, Any]:
        """An OpenAPI response object for an error of this style."""
        return {"description": description, "content": {self.media_type.split(";")[0]: {"schema": self.schema()}}}


class PlainText(ErrorStyle):
    """e-guma: the sentence alone, as text."""

    media_type = "text/plain; charset=utf-8"

    def body(self, error: ApiError) -> bytes:
        return error.detail.encode()

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


class ErrorField(ErrorStyle):
    """Frontcore: ``{"error": "Wrong API Key"}``."""

    def body(self, error: ApiError) -> bytes:
        return orjson.dumps({"error": error.detail})

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


class ErrorList(ErrorStyle):
    """Firespring: ``{"errors": [{"code", "source", "detail"}]}``."""

    def body(self, error: ApiError) -> bytes:
        return orjson.dumps({"errors": [{"code": self.code(error), "source": error.source or None,
                                         "detail": error.detail}]})

    def schema(self) -> dict[str, Any]:
        item = {"type": "object", "required": ["code", "source", "detail"], "properties": {
            "code": {"type": "string"}, "source": {"type": ["string", "null"]}, "detail": {"type": "string"}}}
        return {"type": "object", "required": ["errors"],
                "properties": {"errors": {"type": "array", "minItems": 1, "items": item}}}


class OAuthErrors(ErrorStyle):
    """Prio: ``{"error": CODE, "error_description": sentence, "errors": [sentence]}`` (codes in capitals)."""

    def code(self, error: ApiError) -> str:
        return error.code or super().code(error).upper()

    def body(self, error: ApiError) -> bytes:
        return orjson.dumps({"error": self.code(error), "error_description": error.detail, "errors": [error.detail]})

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "required": ["error", "error_description", "errors"], "properties": {
            "error": {"type": "string"}, "error_description": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "string"}}}}
