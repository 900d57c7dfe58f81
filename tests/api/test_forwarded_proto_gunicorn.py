"""X-Forwarded-Proto through gunicorn (config/gunicorn.py, production settings, TLS redirect
on): believed only with BEHIND_TLS_PROXY=true. gunicorn's own defaults would believe it from
loopback whatever Django says, making a plain-HTTP request count as secure on a client's word."""

import http.client
from urllib.parse import urlsplit

import pytest

from tests.api.gunicorn import gunicorn


def status_of(base_url: str, path: str, **headers) -> tuple[int, str]:
    """(status, Location) of one GET, redirects not followed."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Location", "")
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("behind_tls_proxy", ["false", "true"])
def test_x_forwarded_proto_is_believed_only_behind_a_declared_tls_proxy_through_gunicorn(tmp_path, behind_tls_proxy):
    environment = {"SECURE_SSL_REDIRECT": "true", "BEHIND_TLS_PROXY": behind_tls_proxy}

    with gunicorn(workers=1, log=tmp_path / "gunicorn.log", extra_env=environment) as base_url:
        plain = status_of(base_url, "/api/v1/nodes/")
        claimed = status_of(base_url, "/api/v1/nodes/", **{"X-Forwarded-Proto": "https"})

    assert plain == (301, f"https://{urlsplit(base_url).netloc}/api/v1/nodes/")
    if behind_tls_proxy == "true":
        assert claimed[0] == 401  # the proxy said https: served (no credentials), not redirected
    else:
        assert claimed == plain  # a client's header changes nothing: still sent to https
