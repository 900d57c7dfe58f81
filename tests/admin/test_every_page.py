"""Every admin page answers (200, a redirect or 403), never a server error, for a superuser, for
view-only staff and for staff without any permission. The pages are enumerated from the admin
site itself (every registered ModelAdmin's get_urls(), custom views included, and the site's own
pages), so a page added later is covered without touching this test."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import URLPattern, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.models import Host
from hosts.repair import host_counters_repair
from tests.admin.conftest import client_for
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tests.hosts.drift import set_counter

pytestmark = pytest.mark.django_db

#: 405: a page that only answers POST (none today, but a GET to one is not a failure).
ANSWERS = {200, 302, 403, 405}
#: An app's index answers 404 to staff who may see none of its models (Django's app_index).
APP_INDEX_ANSWERS = {*ANSWERS, 404}
#: The site's pages that take no object; logout is left out (it would end the session mid-test).
SITE_PAGES = ["admin:index", "admin:password_change", "admin:password_change_done", "admin:jsi18n"]


def fleet():
    """At least one row behind most models: a host with a node (its NodeLog and Command), a
    repaired drift (a CounterRepair), an image, an authenticator."""
    TOTPDevice.objects.create(user=UserFactory(is_staff=True), name="authenticator", confirmed=True)
    host = HostFactory()
    place_node(host=host, image=ImageFactory())
    set_counter(host, "node_count", 1)
    host_counters_repair(host_ids=[host.pk])


def _object_id(model) -> str:
    """An existing row's pk, or one that exists nowhere (the admin then redirects, still no 500)."""
    row = model._default_manager.order_by("pk").first()
    return str(row.pk) if row is not None else "0"


def admin_pages() -> dict[str, set[int]]:
    """The URL of every named page of every registered ModelAdmin and of the site's own pages,
    each with the answers it may give."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        object_id = _object_id(model)
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or pattern.name is None:
                continue  # the unnamed `<object_id>/` only redirects to the change page
            arguments = {name: object_id for name in pattern.pattern.regex.groupindex}  # path() or re_path()
            urls.append(reverse(f"admin:{pattern.name}", kwargs=arguments))
    urls += [reverse(name) for name in SITE_PAGES]
    pages = dict.fromkeys(urls, ANSWERS)
    for label in sorted({model._meta.app_label for model in admin.site._registry}):
        pages[reverse("admin:app_list", kwargs={"app_label": label})] = APP_INDEX_ANSWERS
    return pages


def view_only_staff():
    """Staff who may view every registered model and nothing else."""
    user = UserFactory(is_staff=True)
    view = Permission.objects.filter(
        codename__in=[f"view_{model._meta.model_name}" for model in admin.site._registry],
        content_type__app_label__in={model._meta.app_label for model in admin.site._registry},
    )
    user.user_permissions.add(*view)
    return user


USERS = {
    "superuser": lambda: UserFactory(is_staff=True, is_superuser=True),
    "view-only staff": view_only_staff,
    "staff without permissions": lambda: UserFactory(is_staff=True),
}


@pytest.mark.parametrize("who", USERS)
def test_every_admin_page_answers_without_a_server_error(who):
    fleet()
    client = client_for(USERS[who]())
    client.raise_request_exception = False  # a 500 is reported below with every other failure
    pages = admin_pages()
    answers = {url: client.get(url).status_code for url in pages}
    failures = {url: status for url, status in answers.items() if status not in pages[url]}
    assert not failures, f"{who}: {failures}"
    assert len(answers) >= 6 * len(admin.site._registry)  # list, add, change, delete, history + site pages


def test_the_enumeration_reaches_custom_views_and_the_host_pages():
    fleet()
    pages = admin_pages()
    assert reverse("admin:fleet_audit") in pages
    assert reverse("admin:hosts_host_add") in pages
    assert any(url.endswith("/change/") and "/hosts/host/" in url for url in pages)


def test_view_only_staff_read_a_host_page():
    fleet()
    host = HostFactory(name="read-me")
    page = client_for(view_only_staff()).get(reverse("admin:hosts_host_change", args=[host.pk]))
    assert page.status_code == 200
    assert "read-me" in page.content.decode()
    assert "64 cores" in page.content.decode()


def test_a_superuser_adds_a_host_in_the_admin():
    client = client_for(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:hosts_host_add")).status_code == 200
    response = client.post(
        reverse("admin:hosts_host_add"),
        {"name": "new-host", "cpu_cores": 32, "memory_bytes": 2**36, "disk_bytes": 2**40},
    )
    assert response.status_code == 302
    host = Host.objects.get(name="new-host")
    assert (host.cpu_cores, host.node_count) == (32, 0)
