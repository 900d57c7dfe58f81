"""Production settings: `check --deploy` is clean, DEBUG is off by default, SECRET_KEY is required."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from config import quickstart

ROOT = Path(__file__).resolve().parents[2]


def run(code_or_args, **env):
    """Runs Python with the production settings module and only the given environment. Production
    names its database (a checkout's quick-start .env.quickstart applies only without one)."""
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://root@127.0.0.1:5432/postgres",
        "HOME": os.environ.get("HOME", "/"),
    }
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="nodefleet.example.com",
        DATABASE_URL="postgres://root@127.0.0.1:5432/postgres",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_unless_asked_for():
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    assert run(code, SECRET_KEY="x" * 50).stdout.strip() == "False"
    assert run(code, DEBUG="true").stdout.strip() == "True"


def test_production_refuses_to_start_without_a_secret_key():
    result = run("import django; django.setup()")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_command_without_a_secret_key_says_what_to_set_in_one_line():
    result = run(["manage.py", "audit_resources"])
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"manage.py: {quickstart.MISSING_SECRET_KEY}"]


def test_the_quick_starts_file_is_read_only_without_a_database_url(tmp_path, monkeypatch):
    written = tmp_path / ".env.quickstart"
    assert quickstart.write(written) and not quickstart.write(written)  # never overwritten
    assert "SECRET_KEY=" in written.read_text() and written.stat().st_mode & 0o077 == 0
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert quickstart.applies()
    monkeypatch.setenv("DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres")
    assert not quickstart.applies()


def test_x_forwarded_proto_is_believed_only_behind_a_declared_tls_proxy():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    assert run(code, SECRET_KEY="x" * 50).stdout.strip() == "None"
    behind = run(code, SECRET_KEY="x" * 50, BEHIND_TLS_PROXY="true")
    assert behind.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_a_client_sent_x_forwarded_proto_does_not_make_a_plain_request_secure(client, settings):
    # settings_test runs without BEHIND_TLS_PROXY: a direct client's header is ignored.
    settings.SECURE_SSL_REDIRECT = True

    answer = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")

    assert answer.status_code == 301
    assert answer["Location"].startswith("https://")


SERVE_DOCS_AND_ADMIN = """
import logging, re
logging.basicConfig(level=logging.WARNING)
from config.wsgi import application  # as gunicorn starts it
from django.test import Client
client = Client()
docs = client.get("/api/v1/docs/")
css = re.search(r'href="([^"]+[.]css)"', docs.content.decode()).group(1)
login = client.get("/admin/login/")
print(docs.status_code, login.status_code, css, client.get(css).status_code)
"""


def serve(static_root, **env):
    return run(
        SERVE_DOCS_AND_ADMIN,
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL="postgres://root@127.0.0.1:5432/postgres",
        STATIC_ROOT=str(static_root),
        **env,
    )


def test_started_without_collectstatic_the_admin_and_docs_are_served_with_a_warning(tmp_path):
    result = serve(tmp_path / "never-collected")

    assert result.returncode == 0, result.stderr
    docs, login, css, css_status = result.stdout.split()
    assert (docs, login, css_status) == ("200", "200", "200")
    assert css == "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"  # unhashed, from the app
    assert "static files are not collected" in result.stderr and "collectstatic" in result.stderr


def test_after_collectstatic_the_files_are_served_hashed_without_a_warning(tmp_path):
    root = tmp_path / "static"
    collected = run(
        ["manage.py", "collectstatic", "--no-input", "-v", "0"],
        SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://root@127.0.0.1:5432/postgres",
        STATIC_ROOT=str(root),
    )
    assert collected.returncode == 0, collected.stderr
    assert (root / "staticfiles.json").exists()

    result = serve(root)

    assert result.returncode == 0, result.stderr
    docs, login, css, css_status = result.stdout.split()
    assert (docs, login, css_status) == ("200", "200", "200")
    assert re.fullmatch(r"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui\.[0-9a-f]{12}\.css", css)
    assert "not collected" not in result.stderr
