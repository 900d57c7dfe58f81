"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from config.http.static import warn_if_static_not_collected  # noqa: E402 (needs the settings loaded)

warn_if_static_not_collected()
