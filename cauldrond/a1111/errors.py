"""Errors in A1111's shape: ``{"error", "detail", "body", "errors"}`` with its status codes.

A1111's exception handler (modules/api/api.py) answers every failure with the exception's type name, its
``detail`` and ``body`` and ``str(exc)``. A refused field additionally carries FastAPI's validation ``detail``
list (``[{"loc": ["body", field], "msg", "type"}]``), which clients written against FastAPI's 422 read."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class A1111Error(Exception):
    """A failure to answer in A1111's error shape."""

    def __init__(self, status: int, message: str, *, error: str = "HTTPException", detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.detail = detail if detail is not None else message

    def response(self) -> web.Response:
        body = {"error": self.error, "detail": self.detail, "body": "", "errors": str(self)}
        return web.json_response(body, status=self.status)


def field_error(field: str, message: str, *, kind: str = "value_error") -> A1111Error:
    """A 422 that names the request field at fault (``override_settings.sd_vae`` for a nested one)."""
    loc = ["body", *field.split(".")]
    return A1111Error(
        422,
        f"{field}: {message}",
        error="RequestValidationError",
        detail=[{"loc": loc, "msg": message, "type": kind}],
    )


def not_found(message: str) -> A1111Error:
    return A1111Error(404, message, detail=message or "Not Found")


def unauthorized() -> web.Response:
    response = A1111Error(
        401, "Incorrect username or password: send HTTP Basic with the daemon's token as the password"
    ).response()
    response.headers["WWW-Authenticate"] = 'Basic realm="cauldrond"'
    return response
