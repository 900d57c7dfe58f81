"""Nodefleet's URLs: the admin, the REST API under /api/v1/ and the metrics. (/healthz is answered
by config.http.health.HealthCheckMiddleware, ahead of the host check.)"""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.http import converters  # noqa: F401 (registers <bigint:...>, used by the apps' URLs)
from config.http.exceptions import page_not_found_view
from config.http.home import favicon, home
from config.http.metrics import metrics_view

urlpatterns = [
    path("", home, name="home"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's setup script as a file: no inline script, so the CSP holds.
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/agent/", include("nodes.agent.urls")),
    path("api/v1/auth/", include("tokens.urls")),
    path("api/v1/", include("nodes.api.urls")),
    path("metrics", metrics_view, name="metrics"),
    # Any other /api/ path, in any casing or with doubled slashes (`//api/`, `/API/`): problem
    # details even under DEBUG (make run), where Django would otherwise answer its HTML debug
    # page instead of handler404. No redirect, not even for a missing trailing slash: the 404
    # names the path meant, and a client must not learn to rely on a redirect a POST cannot follow.
    re_path(r"^(?:/*)[aA][pP][iI](?:/|$)", page_not_found_view),
]

# Under /api/ Django's own errors answer as problem details too; elsewhere (the admin) as HTML.
handler400 = "config.http.exceptions.bad_request"
handler403 = "config.http.exceptions.permission_denied"
handler404 = "config.http.exceptions.page_not_found"
handler500 = "config.http.exceptions.server_error"
