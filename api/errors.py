"""Errors as problem details (RFC 9457, `application/problem+json`): type, title, status, detail, and for
invalid input `errors` ({field: [messages]}); a refused call adds its stable `code`."""
from __future__ import annotations

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_TYPE = "https://callwell.dev/problems/"
CONTENT_TYPE = "application/problem+json"


def problem(*, status_code: int, title: str, detail: str = "", code: str = "", errors: dict | None = None,
            headers: dict | None = None) -> Response:
    body = {"type": PROBLEM_TYPE + (code or str(status_code)), "title": title, "status": status_code}
    if detail:
        body["detail"] = detail
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    response = Response(body, status=status_code, headers=headers, content_type=CONTENT_TYPE)
    return response


TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 415: "Unsupported media type",
          422: "Unprocessable content", 429: "Too many requests", 503: "Service unavailable"}


def problem_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    status_code = response.status_code
    data = response.data
    errors = None
    detail = ""
    if isinstance(exc, exceptions.ValidationError):
        status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        detail = "The request has invalid fields."
    elif isinstance(data, dict) and "detail" in data:
        detail = str(data["detail"])
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    code = getattr(getattr(exc, "detail", None), "code", "") if not errors else "invalid_request"
    return problem(status_code=status_code, title=TITLES.get(status_code, "Error"), detail=detail,
                   code=str(code or ""), errors=errors, headers=headers)
