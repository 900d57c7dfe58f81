"""User tokens through real HTTP against gunicorn (production settings): both schemes work,
bad credentials answer 401 problem details, and repeated failures from one address get 429
with Retry-After — but a good token from that address is let through — each failure logged
with address and request id, agents' failures too; the answer that carries a new key is
`no-store`, and a token cannot make one."""

import json
import urllib.error
import urllib.request

import pytest

from tests.api.conftest import PROBLEM, READ_PERMISSIONS
from tests.api.gunicorn import gunicorn
from tests.api.test_login_lockout_gunicorn import PASSWORD, Browser
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

    with gunicorn(workers=1, log=log, extra_env={"API_AUTH_FAILURE_RATE": "5/hour"}) as base_url:
        nodes = f"{base_url}/api/v1/nodes/"
        good = [get(nodes, f"{scheme} {key}")[0] for scheme in ("Token", "Bearer")]
        bad = [get(nodes, f"Bearer nfu_{'Z' * 43}", request_id=f"brute-{i}") for i in range(6)]
        after = get(nodes, f"Bearer {key}")
        still_bad = get(nodes, f"Bearer nfu_{'Y' * 43}")

    assert good == [200, 200]
    assert [status for status, _, _ in bad] == [401] * 5 + [429]
    status, headers, body = bad[0]
    assert headers["Content-Type"] == PROBLEM and body["code"] == "not_authenticated"
    assert headers["WWW-Authenticate"] == "Token, Bearer"
    status, headers, body = bad[-1]
    assert (status, headers["Content-Type"], body["code"]) == (429, PROBLEM, "throttled")
    assert 1 <= int(headers["Retry-After"]) <= 3600
    assert after[0] == 200  # a valid token from the throttled address: only failures are throttled
    assert still_bad[0] == 429
    logged = log.read_text()
    assert logged.count("api_auth_failed client=127.0.0.1 reason=unknown_key") == 5
    assert "[brute-0]" in logged and "request_id=brute-4" in logged
    assert "api_auth_throttled client=127.0.0.1" in logged
    assert key not in logged


def request(url: str, method: str = "GET", body: dict | None = None, **headers) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**headers, **({"Content-Type": "application/json"} if data is not None else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as answer:
            return answer.status, dict(answer.headers), json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_new_key_is_no_store_a_token_makes_none_and_agent_failures_are_logged_through_gunicorn(tmp_path):
    user = UserFactory(username="ops", is_staff=True, permissions=READ_PERMISSIONS)
    _, key = token_create(user=user)
    log = tmp_path / "gunicorn.log"

    with gunicorn(workers=2, log=log, settings_module="config.settings_test") as base_url:
        browser = Browser(base_url)
        assert browser.log_in("ops", PASSWORD, "login") == 302
        csrf = next(cookie.value for cookie in browser.cookies if cookie.name == "csrftoken")
        made = browser.opener.open(
            urllib.request.Request(
                f"{base_url}/api/v1/auth/tokens/",
                json.dumps({"name": "ci"}).encode(),
                {"Content-Type": "application/json", "X-CSRFToken": csrf, "Referer": base_url},
            ),
            timeout=30,
        )
        made_key = json.load(made)["token"]
        minted = request(f"{base_url}/api/v1/auth/tokens/", "POST", {"name": "child"}, Authorization=f"Token {key}")
        agent = request(
            f"{base_url}/api/v1/agent/commands/", Authorization=f"Bearer nfa_{'A' * 43}", **{"X-Request-ID": "agent-1"}
        )

    assert made.status == 201
    assert "no-store" in made.headers["Cache-Control"]
    assert made_key.startswith("nfu_") and made_key not in log.read_text()
    assert (minted[0], minted[2]["code"]) == (403, "permission_denied")
    assert agent[0] == 401
    logged = log.read_text()
    assert (
        "agent_auth_failed client=127.0.0.1 reason=unknown_key path=/api/v1/agent/commands/ request_id=agent-1"
        in logged
    )
    assert "WARNING django.request [agent-1] Unauthorized: /api/v1/agent/commands/" in logged
