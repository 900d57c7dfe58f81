"""§11's capacity model: allocatable computed by the database (PostgreSQL here, SQLite in
test_capacity_sqlite) against hand-computed cases, the CHECK constraints, and the fit rule."""

import sqlite3
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from config.units import BIGINT_MAX
from hosts.capacity import allocatable_expression, fits, over_allocated, shortfalls
from hosts.models import Host
from tests.factories import GiB, HostFactory

pytestmark = pytest.mark.django_db

# (capacity, reserved, ratio) -> allocatable, worked out by hand.
CASES = [
    ((64, 0, "1"), 64),  # the defaults: allocatable = capacity
    ((64, 4, "1"), 60),
    ((64, 4, "1.5"), 90),
    ((10, 3, "0.3333"), 2),  # 7 * 0.3333 = 2.3331
    ((3, 0, "0.3333"), 0),  # 0.9999 floors to 0
    ((3, 0, "0.3334"), 1),  # 1.0002
    ((7, 0, "0.0001"), 0),
    ((10_000, 0, "0.0001"), 1),
    ((19_999, 0, "0.0001"), 1),
    ((64, 64, "2"), 0),  # reserve takes it all
    ((64, 100, "2"), 0),  # reserve above capacity: 0, not negative
    ((0, 0, "1000"), 0),
    ((5, 0, "1000"), 5000),
    ((123_456_789, 1, "2.7183"), 335_592_586),  # 123456788 * 2.7183 = 335592586.82...
    ((BIGINT_MAX, 0, "1"), BIGINT_MAX),
    ((BIGINT_MAX, 0, "1.0001"), BIGINT_MAX),  # clamped, never overflows
    ((BIGINT_MAX, 0, "1000"), BIGINT_MAX),
    ((BIGINT_MAX, 0, "0.5"), BIGINT_MAX // 2),
    ((BIGINT_MAX, 1, "0.9999"), (BIGINT_MAX - 1) * 9999 // 10_000),
    ((BIGINT_MAX // 1000 + 7, 0, "1000"), BIGINT_MAX),  # just past the limit after scaling
    ((BIGINT_MAX // 1000, 0, "1000"), (BIGINT_MAX // 1000) * 1000),  # just below it
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_allocatable_by_hand(given, expected):
    size, reserved, ratio = given
    host = HostFactory(
        cpu_cores=size,
        reserved_cpu_cores=reserved,
        cpu_allocation_ratio=Decimal(ratio),
        memory_bytes=size,
        reserved_memory_bytes=reserved,
        memory_allocation_ratio=Decimal(ratio),
        disk_bytes=size,
        reserved_disk_bytes=reserved,
        disk_allocation_ratio=Decimal(ratio),
    )
    # Returned by the INSERT itself, and read again: the column the database keeps.
    assert host.allocatable() == dict.fromkeys(("cpu_cores", "memory_bytes", "disk_bytes"), expected)
    assert Host.objects.get(pk=host.pk).allocatable() == host.allocatable()


def test_defaults_keep_capacity():
    host = HostFactory(cpu_cores=32, memory_bytes=64 * GiB, disk_bytes=GiB)
    fresh = Host.objects.get(pk=host.pk)
    assert (fresh.reserved_cpu_cores, fresh.cpu_allocation_ratio, fresh.max_nodes) == (0, Decimal("1.0000"), None)
    assert (fresh.region, fresh.scheduling) == ("", "automatic")
    assert fresh.allocatable() == {"cpu_cores": 32, "memory_bytes": 64 * GiB, "disk_bytes": GiB}


def test_allocatable_follows_an_update():
    host = HostFactory(cpu_cores=10)
    Host.objects.filter(pk=host.pk).update(reserved_cpu_cores=2, cpu_allocation_ratio=Decimal("2.5"))
    assert Host.objects.get(pk=host.pk).allocatable_cpu_cores == 20


@pytest.mark.parametrize(
    "values",
    [
        {"reserved_cpu_cores": -1},
        {"reserved_memory_bytes": -1},
        {"reserved_disk_bytes": -1},
        {"cpu_allocation_ratio": Decimal(0)},
        {"memory_allocation_ratio": Decimal("-1")},
        {"disk_allocation_ratio": Decimal("1000.0001")},
        {"max_nodes": -1},
        {"scheduling": "sometimes"},
    ],
)
def test_check_constraints(values):
    host = HostFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Host.objects.filter(pk=host.pk).update(**values)


def test_ratio_bounds_accepted():
    host = HostFactory()
    Host.objects.filter(pk=host.pk).update(cpu_allocation_ratio=Decimal("0.0001"), disk_allocation_ratio=1000)
    assert Host.objects.get(pk=host.pk).disk_allocation_ratio == Decimal("1000.0000")


def test_allocatable_on_sqlite_matches():
    """The same expression, compiled for SQLite (make run), gives the same integers: exact
    integer arithmetic, no float, clamped."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    sqlite = DatabaseWrapper(
        {**connection.settings_dict, "ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "OPTIONS": {}}
    )
    try:
        with sqlite.schema_editor() as editor:
            editor.create_model(Host)
        for (size, reserved, ratio), expected in CASES:
            with sqlite.cursor() as cursor:
                cursor.execute("DELETE FROM hosts_host")
            sql, params = _insert_sql(sqlite, size, reserved, ratio)
            with sqlite.cursor() as cursor:
                cursor.execute(sql, params)
                cursor.execute("SELECT allocatable_cpu_cores, typeof(allocatable_cpu_cores) FROM hosts_host")
                value, kind = cursor.fetchone()
            assert (value, kind) == (expected, "integer"), (size, reserved, ratio)
    finally:
        sqlite.close()
    assert sqlite3.sqlite_version_info >= (3, 31)


def _insert_sql(sqlite, size, reserved, ratio):
    fields = [field for field in Host._meta.concrete_fields if not field.generated]
    host = Host(name="h", cpu_cores=size, memory_bytes=0, disk_bytes=0, reserved_cpu_cores=reserved)
    host.cpu_allocation_ratio = Decimal(ratio)
    columns = ", ".join(field.column for field in fields)
    params = [field.get_db_prep_save(field.pre_save(host, True), sqlite) for field in fields]
    return f"INSERT INTO hosts_host ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", params


def test_expression_is_one_definition():
    """The generated columns hold exactly allocatable_expression (one definition for all)."""
    for name in ("cpu_cores", "memory_bytes", "disk_bytes"):
        field = Host._meta.get_field(f"allocatable_{name}")
        assert repr(field.expression) == repr(allocatable_expression(name))


class TestFit:
    def host(self, **values):
        return HostFactory(cpu_cores=10, memory_bytes=100, disk_bytes=1000, **values)

    def test_reserve_and_ratio(self):
        host = self.host(reserved_cpu_cores=2, cpu_allocation_ratio=Decimal("1.5"))  # 12 cores
        assert fits(host, {"cpu_cores": 12}, 1)["cpu_cores"]
        assert not fits(host, {"cpu_cores": 13}, 1)["cpu_cores"]
        assert shortfalls(host, {"cpu_cores": 13}, 1) == [{"resource": "cpu_cores", "requested": 13, "available": 12}]

    def test_slots(self):
        host = self.host(max_nodes=0)
        assert fits(host, {}, 1)["node_count"] is False
        assert shortfalls(host, {}, 1) == [{"resource": "node_count", "requested": 1, "available": 0}]
        assert fits(host, {}, 0)["node_count"] is True  # an upgrade takes no slot

    def test_shrinking_always_fits_and_available_is_at_least_zero(self):
        host = self.host(reserved_memory_bytes=200)  # allocatable 0
        Host.objects.filter(pk=host.pk).update(node_memory_bytes=50)
        host.refresh_from_db()
        assert over_allocated(host) == ["memory_bytes"]
        assert fits(host, {"memory_bytes": -10}, 0)["memory_bytes"]
        assert shortfalls(host, {"memory_bytes": 1}, 0) == [
            {"resource": "memory_bytes", "requested": 1, "available": 0}
        ]
