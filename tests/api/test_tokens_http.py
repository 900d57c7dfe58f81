"""User tokens through real HTTP against gunicorn (production settings): both schemes work,
bad credentials answer 401 problem details, and repeated failures from one address get 429
with Retry-After — even for a good token — each failure logged with address and request id."""

import json
import urllib.error
import urllib.request

import pytest

from tests.api.conftest import PROBLEM, READ_PERMISSIONS
from tests.api.gunicorn import gunicorn
from tests.factories import UserFactory
from tokens.services import token_create


def get(url: str, authorization: str, request_id: str = "") -> tuple[int, dict, dict]:
    headers = {"Authorization": authorization, **({"X-Request-ID": request_id} if request_id else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # gunicorn's workers must see the token
def test_failed_authentication_is_throttled_per_address_through_gunicorn(tmp_path):
    _, key = token_create(user=UserFactory(permissions=READ_PERMISSIONS))
    log = tmp_path / "gunicorn.log"

    with gunicorn(workers=1, log=log, extra_env={"API_AUTH_FAILURE_RATE": "5/min"}) as base_url:
        nodes = f"{base_url}/api/v1/nodes/"
        good = [get(nodes, f"{scheme} {key}")[0] for scheme in ("Token", "Bearer")]
        bad = [get(nodes, f"Bearer nfu_{'Z' * 43}", request_id=f"brute-{i}") for i in range(6)]
        after = get(nodes, f"Bearer {key}")

    assert good == [200, 200]
    assert [status for status, _, _ in bad] == [401] * 5 + [429]
    status, headers, body = bad[0]
    assert headers["Content-Type"] == PROBLEM and body["code"] == "not_authenticated"
    assert headers["WWW-Authenticate"] == "Token, Bearer"
    status, headers, body = after
    assert (status, headers["Content-Type"], body["code"]) == (429, PROBLEM, "throttled")
    assert 1 <= int(headers["Retry-After"]) <= 60
    logged = log.read_text()
    assert logged.count("api_auth_failed client=127.0.0.1 reason=unknown_key") == 5
    assert "[brute-0]" in logged and "request_id=brute-4" in logged
    assert "api_auth_throttled client=127.0.0.1" in logged
    assert key not in logged
