"""What each middleware costs an API request: microseconds per request, in-process, no database.

    .venv/bin/python bench/middleware_cost.py [--requests 20000]

The production middleware (settings.MIDDLEWARE) wraps a view that does nothing (`POST
/api/v1/ping/`, CSRF-exempt like every DRF view, with an `Authorization: Token ...` header and
a JSON body), through Django's WSGI handler as gunicorn calls it. The middleware
marked browser-only (config.http.middleware) should cost about nothing here. Each middleware's cost
is what adding it to the chain, in settings order, adds to the time of a request.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.common import post_environ


@csrf_exempt
def ping(request):
    return HttpResponse(b'{"ok":true}', content_type="application/json")


urlpatterns = [path("api/v1/ping/", ping)]

#: Django's own classes that config.http.middleware wraps, for the comparison (--stock).
STOCK = {
    "config.http.middleware.BrowserSessionMiddleware": "django.contrib.sessions.middleware.SessionMiddleware",
    "config.http.middleware.BrowserAuthenticationMiddleware": "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.http.middleware.BrowserMessageMiddleware": "django.contrib.messages.middleware.MessageMiddleware",
}

BODY = b'{"image_id": "00000000-0000-0000-0000-000000000000"}'


def environ() -> dict:
    return post_environ("/api/v1/ping/", BODY, "Token " + "0" * 40)


def per_request_us(middleware: list[str], requests: int) -> float:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=middleware):
        handler = WSGIHandler()
    best = float("inf")
    for _ in range(5):  # best of five: the machine is shared
        began = time.process_time()  # CPU time of this process: other processes' load does not count
        for _ in range(requests):
            result = handler(environ(), lambda status, headers, exc_info=None: None)
            result.close()
        best = min(best, time.process_time() - began)
    return best / requests * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--stock", action="store_true", help="Django's own session/auth/messages classes")
    args = parser.parse_args()
    for name, value in {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "benchmark-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": "sqlite://:memory:",
    }.items():
        os.environ.setdefault(name, value)
    import django

    django.setup()
    from django.conf import settings

    settings.ROOT_URLCONF = __name__ if __name__ != "__main__" else "bench.middleware_cost"
    chain = [STOCK.get(name, name) if args.stock else name for name in settings.MIDDLEWARE]
    per_request_us(chain, args.requests)  # warm up: imports, caches
    bare = per_request_us([], args.requests)
    full = per_request_us(chain, args.requests)
    print(f"{args.requests} token-authenticated POSTs to a view that does nothing, best of 5")
    print(f"  handler without middleware   {bare:8.1f} us/request")
    print(f"  the whole chain              {full:8.1f} us/request  (+{full - bare:.1f} us)")
    previous = bare
    for count, middleware in enumerate(chain, start=1):
        now = per_request_us(chain[:count], args.requests)
        print(f"  + {middleware:<58} {now - previous:+7.1f} us")
        previous = now


if __name__ == "__main__":
    main()
