"""GET /healthz: anonymous liveness for load balancers; 200 while the database answers, else 503.

Served by HealthCheckMiddleware ahead of the host check, the TLS redirect and CSRF: a probe
sends whatever Host it likes (often the machine's IP, which ALLOWED_HOSTS need not name) and
must get this JSON answer, never Django's HTML 400; a POST gets 405, not CSRF's 403."""

from django.db import Error, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

HEALTHZ_PATH = "/healthz"


@never_cache
@require_safe
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Error:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


class HealthCheckMiddleware:
    """Answers /healthz before the middleware that reads the Host header or checks CSRF. The
    answer holds no data and changes nothing, so no host name needs trusting for it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == HEALTHZ_PATH:
            return healthz(request)
        return self.get_response(request)
