"""Bodies sent with `Transfer-Encoding: chunked` (no Content-Length) are read, up to the size
limit (413 beyond), where the server tells where they end (gunicorn); elsewhere they are refused
with 411 — never read as an empty body."""

import io
import json
import socket
from urllib.parse import urlsplit

import pytest

from nodes.models import Node
from tests.api.conftest import assert_problem, snapshot
from tests.api.gunicorn import gunicorn
from tests.factories import UserFactory
from tokens.services import token_create


def chunked(client, path: str, body: bytes, *, terminated: bool):
    """A request as a WSGI server hands over a chunked body: de-chunked input, no CONTENT_LENGTH;
    gunicorn also sets wsgi.input_terminated (the input ends where the body does), runserver not."""
    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked"}
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.generic("POST", path, b"", content_type="application/json", **environ)


def create_body(fleet, name="chunked-1") -> bytes:
    return json.dumps({"name": name, "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk)}).encode()


@pytest.mark.django_db
def test_a_chunked_body_is_read_when_the_server_ends_the_input(admin_client, fleet):
    response = chunked(admin_client, "/api/v1/nodes/", create_body(fleet), terminated=True)

    assert response.status_code == 201, response.content
    assert Node.objects.filter(name="chunked-1").exists()


@pytest.mark.django_db
def test_a_chunked_body_past_the_limit_is_413(admin_client, fleet, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = snapshot()
    body = json.dumps({"image_id": str(fleet["v2"].pk), "pad": "x" * 5000}).encode()

    response = chunked(admin_client, f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", body, terminated=True)

    assert_problem(response, 413, "request_too_large")
    assert snapshot() == before


@pytest.mark.django_db
def test_a_chunked_body_the_server_cannot_delimit_is_411_never_an_empty_body(admin_client, fleet):
    before = snapshot()

    response = chunked(admin_client, "/api/v1/nodes/", create_body(fleet), terminated=False)

    body = assert_problem(response, 411, "length_required")
    assert "Content-Length" in body["detail"]
    assert snapshot() == before


def _dechunk(body: bytes) -> bytes:
    decoded = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(decoded)
        decoded += body[:size]
        body = body[size + 2 :]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_chunked_bodies_under_gunicorn(tmp_path, fleet):
    token = token_create(user=UserFactory(permissions=["nodes.add_node", "nodes.upgrade_node"]))[1]
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def post(base_url, path, chunks):
        """POSTs a chunked body over a raw socket; the answer even if the server stops reading
        (and closes) before the body's end, as it does past the size limit."""
        address = urlsplit(base_url)
        head = [f"POST {path} HTTP/1.1", f"Host: {address.hostname}", "Transfer-Encoding: chunked", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
            try:
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
                for chunk in chunks:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = bytearray()
            while data := sock.recv(65536):
                answer += data
        status_line, _, rest = bytes(answer).partition(b"\r\n")
        header_block, _, body = rest.partition(b"\r\n\r\n")
        content_type = next(
            line.split(b":", 1)[1].strip().decode()
            for line in header_block.split(b"\r\n")
            if line.lower().startswith(b"content-type:")
        )
        if b"transfer-encoding: chunked" in header_block.lower():
            body = _dechunk(body)
        return int(status_line.split()[1]), content_type, json.loads(body)

    with gunicorn(workers=1, log=tmp_path / "gunicorn.log") as base_url:
        body = create_body(fleet, name="chunked-gunicorn")
        created = post(base_url, "/api/v1/nodes/", [body[:10], body[10:]])
        huge = post(base_url, "/api/v1/nodes/", [b'{"name": "', *[b"x" * 1024 * 1024] * 10, b'"}'])

    assert created[0] == 201, created
    assert created[2]["name"] == "chunked-gunicorn"
    assert huge[:2] == (413, "application/problem+json"), huge
    assert huge[2]["code"] == "request_too_large"
