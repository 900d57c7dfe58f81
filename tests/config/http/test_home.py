"""The site's root and the admin's branding: / leads somewhere (under make run's DEBUG too, where
it was Django's debug 404 with the URL list), /favicon.ico is a favicon, and the admin is
Nodefleet's, not "Django administration"."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
def test_the_root_is_an_index_of_the_admin_the_api_docs_and_the_health_check(client, settings, debug):
    settings.DEBUG = debug
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for link in ('href="/admin/"', 'href="/api/v1/docs/"', 'href="/api/v1/schema/"', 'href="/healthz"'):
        assert link in page
    assert "URLconf" not in page and "<title>Nodefleet</title>" in page
    assert client.post("/").status_code == 405


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)


def test_the_admin_is_nodefleets_and_view_site_leads_to_the_index(client):
    login = client.get("/admin/login/").content.decode()
    assert "Django administration" not in login and "Django site admin" not in login
    assert "<title>Log in | Nodefleet admin</title>" in login
    assert 'rel="icon"' in login
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    index = client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in index
    assert "Django administration" not in index and ">Nodefleet<" in index
