"""Routes of /api/v1/ (namespace ``api``), the OpenAPI document and the docs page."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes

from . import views
from .problems import problem


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def not_found(request, rest: str = ""):
    """Any other path under /api/v1/: a problem, not the site's HTML 404 page."""
    return problem(404, "not-found", "Not found", "There is no such API resource.", instance=request.path)


app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(api_version="1.0.0"), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("tenants/", views.TenantList.as_view(), name="tenants"),
    path("tenants/<slug:slug>/", views.TenantDetail.as_view(), name="tenant"),
    path("tenants/<slug:slug>/mapping/", views.Mapping.as_view(), name="mapping"),
    path("tenants/<slug:slug>/runs/", views.Runs.as_view(), name="runs"),
    path("runs/<uuid:uuid>/", views.RunDetail.as_view(), name="run"),
    re_path(
        r"^(?P<rest>[\s\S]*)$", not_found, name="not_found"
    ),  # [\s\S]: a path with a newline is still ours
]
