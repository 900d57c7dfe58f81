"""GET /healthz: anonymous; 200 while the database answers, 503 when it does not."""

import pytest

from tests.api.conftest import database_unreachable


@pytest.mark.django_db
def test_healthz_is_ok_for_anyone(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_does_not_answer(client):
    with database_unreachable():
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_api_request_while_the_database_does_not_answer_is_503_busy(admin_client):
    with database_unreachable():
        response = admin_client.get("/api/v1/nodes/")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "busy"
    assert response["Retry-After"] == "1"
    assert admin_client.get("/api/v1/nodes/").status_code == 200


@pytest.mark.django_db
def test_healthz_only_answers_reads(client):
    assert client.post("/healthz").status_code == 405
