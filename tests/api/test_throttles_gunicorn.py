"""The throttles count across workers: gunicorn with 3 workers (production settings, the
default database counts of config.throttles.rates), concurrent clients. Exactly the rate's number of
failed authentications from one address answer 401 and exactly the rate's number of a user's
writes get past the write throttle, however the requests spread over the workers — each
worker counting on its own (the old in-process cache) would let up to three times as many
through, and a read-modify-write count would lose hits under the race."""

import json
import re
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.gunicorn import gunicorn
from tests.factories import UserFactory
from tokens.services import token_create

WORKERS = 3
LIMIT = 6
REQUESTS = 36
# A window of a day (aligned on UTC midnight): the test's few seconds never straddle two.
RATE = f"{LIMIT}/day"


def send(url: str, authorization: str, request_id: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": authorization, "X-Request-ID": request_id, "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def served_by(log: str, prefix: str) -> Counter:
    """Worker pid of each answered request whose id starts with `prefix` (the access log below)."""
    return Counter(pid for pid, _ in re.findall(rf"^access pid=<(\d+)> id=({prefix}-\d+)$", log, re.MULTILINE))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_throttles_count_across_three_gunicorn_workers(tmp_path):
    _, key = token_create(user=UserFactory(permissions=["nodes.add_node"]))
    log = tmp_path / "gunicorn.log"
    environment = {
        "API_AUTH_FAILURE_RATE": RATE,
        "API_WRITE_THROTTLE_RATE": RATE,
        # One access line per request with the worker's pid, to see the requests spread.
        "GUNICORN_CMD_ARGS": "--access-logformat='access pid=%(p)s id=%({x-request-id}i)s'",
    }

    with gunicorn(workers=WORKERS, log=log, extra_env=environment) as base_url:
        nodes = f"{base_url}/api/v1/nodes/"
        with ThreadPoolExecutor(max_workers=12) as pool:
            failed = list(pool.map(lambda n: send(nodes, f"Bearer nfu_{'Q' * 43}", f"bad-{n}"), range(REQUESTS)))
            writes = list(pool.map(lambda n: send(nodes, f"Token {key}", f"write-{n}", body={}), range(REQUESTS)))

    text = log.read_text()
    assert len(served_by(text, "bad")) >= 2 and len(served_by(text, "write")) >= 2, text[-3000:]  # spread
    assert Counter(failed) == {401: LIMIT, 429: REQUESTS - LIMIT}, text[-3000:]
    # A write the throttle lets through reaches the view: 400 (an empty body), never 201 here.
    assert Counter(writes) == {400: LIMIT, 429: REQUESTS - LIMIT}, text[-3000:]
