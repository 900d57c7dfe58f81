"""Settings for the test suite: production settings on PostgreSQL, minus TLS redirects."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("DATABASE_URL", "postgres://root@127.0.0.1:5432/nodefleet")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("API_WRITE_THROTTLE_RATE", "")  # tests/api/test_throttling.py sets its own
os.environ.setdefault("API_AUTH_FAILURE_RATE", "")  # tests/api/test_tokens.py sets its own
# A username under attack is slowed down (config.staff.login_lockout): hundredths of a second here.
os.environ.setdefault("LOGIN_SLOWDOWN_SECONDS", "0.01")
os.environ.setdefault("LOGIN_SLOWDOWN_MAX_SECONDS", "0.05")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Tests collect no static files: WhiteNoise serves them from the apps, as in development.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
