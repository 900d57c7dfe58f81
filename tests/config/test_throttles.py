"""The throttles' shared counts (config.throttles.rates): one atomic statement per hit in the
database by default, add+incr in CACHE_URL's cache when one is named; fixed windows."""

import threading

import pytest
from django.core.cache import cache
from django.db import connection

from config.throttles import rates
from config.throttles.models import RateWindow


@pytest.mark.django_db
def test_a_hit_is_one_statement_and_counts_up_to_over_the_rate(queries, monkeypatch):
    monkeypatch.setattr(rates, "PRUNE_ONE_IN", 10**9)  # no prune in this count
    with queries() as statements:
        hits = [rates.hit("test:a", "3/hour") for _ in range(4)]
    assert len(statements) == 4
    assert [(hit.count, hit.over) for hit in hits] == [(1, False), (2, False), (3, False), (4, True)]
    assert 1 <= hits[-1].retry_after() <= 3600
    assert rates.hit("test:b", "3/hour").count == 1  # another key, its own count


@pytest.mark.django_db
def test_an_ended_window_starts_again_at_one_and_is_pruned(monkeypatch):
    rates.hit("test:a", "3/hour")
    rates.hit("test:a", "3/hour")
    RateWindow.objects.filter(key="test:a").update(window_end=1000)  # long ended
    assert rates.hit("test:a", "3/hour").count == 1

    RateWindow.objects.create(key="test:old", window_end=1000, count=7)
    monkeypatch.setattr(rates, "PRUNE_ONE_IN", 1)
    rates.hit("test:c", "3/hour")
    assert set(RateWindow.objects.values_list("key", flat=True)) == {"test:a", "test:c"}


def test_an_empty_rate_counts_nothing():
    assert rates.hit("test:a", "") is None and rates.hit("test:a", None) is None


def test_with_a_cache_url_the_cache_counts(settings):
    settings.RATE_COUNTS = "cache"
    cache.clear()
    try:
        assert [rates.hit("test:a", "2/hour").count for _ in range(3)] == [1, 2, 3]
        assert rates.hit("test:a", "2/hour").over
    finally:
        cache.clear()


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_on_separate_connections_lose_no_count():
    """Eight threads, each with its own PostgreSQL connection, 25 hits each: exactly 200."""
    errors = []

    def hammer():
        try:
            for _ in range(25):
                rates.hit("test:race", "1000/day")
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert RateWindow.objects.get(key="test:race").count == 200
