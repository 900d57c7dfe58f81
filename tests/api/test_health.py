"""GET /healthz: anonymous; 200 while the database answers, 503 when it does not."""

import socket

import pytest
from django.db import connection


@pytest.mark.django_db
def test_healthz_is_ok_for_anyone(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_does_not_answer(client):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.update(saved)

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_only_answers_reads(client):
    assert client.post("/healthz").status_code == 405
