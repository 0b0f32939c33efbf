"""The plumbing every ``/api/v1/`` view shares: problem-detail responses for the OpenAPI schema, ETags with
``If-None-Match`` (RFC 9110 weak comparison), and the cursor pagination."""

from __future__ import annotations

import hashlib

from django.http import HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import pagination
from rest_framework.views import APIView

from . import serializers as s
from .problems import CONTENT_TYPE as PROBLEM_TYPE


def problem_responses(**by_status: str) -> dict:
    """OpenAPI responses for problem details, keyed ``(status, media type)``:
    ``problem_responses(e404="No such tenant.")``."""
    return {
        (int(code[1:]), PROBLEM_TYPE): OpenApiResponse(s.ProblemSerializer, description=text)
        for code, text in by_status.items()
    }


COMMON_ERRORS = problem_responses(
    e401="No token, or an unknown, revoked or expired one.",
    e429="Rate limit of this token reached; see Retry-After.",
)
READ_ERRORS = {**COMMON_ERRORS, 304: OpenApiResponse(description="Not modified (If-None-Match matched).")}
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="An ETag from an earlier answer: 304 when nothing changed.",
)


def _etag(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _matches(header: str, etag: str) -> bool:
    """RFC 9110 weak comparison for If-None-Match: '*' or any listed tag equal after dropping W/."""
    if header.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return etag in tags


class ApiView(APIView):
    """Base of every API view: ETag and If-None-Match on successful reads, no caching by intermediaries."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            response.render()
            etag = _etag(response.content)
            if _matches(request.headers.get("If-None-Match", ""), etag):
                not_modified = HttpResponseNotModified()
                not_modified["ETag"] = etag
                not_modified["Cache-Control"] = "private, no-cache"
                return not_modified
            response["ETag"] = etag
        response.setdefault("Cache-Control", "private, no-cache")
        return response


class CursorPage(pagination.CursorPagination):
    """Opaque cursors (``next``/``previous`` URLs): stable while rows are added, unlike page numbers."""

    ordering = "slug"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class MappingPage(CursorPage):
    """The mapping's rows by ConnectWise company id, up to 1,000 a page."""

    ordering = "cw_company_id"
    page_size = 500
    max_page_size = 1000
