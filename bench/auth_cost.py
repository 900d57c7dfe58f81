"""What authenticating an API request and checking its permission costs: the user-token path
(tokens.authentication: one statement for token, user and permissions) against the shape it
replaced (DRF authtoken: token with its user by the ORM, then ModelBackend's two permission
queries), in the same run, on a database with USERS users (each with permissions, a group and
a token). Prints microseconds and statements per request, and the ratio.

    .venv/bin/python bench/auth_cost.py [--users 2000] [--requests 3000]
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ensure_database, percentile, setup_django

DATABASE = "nodefleet_bench_auth"


def seed(users: int) -> list[str]:
    """USERS users with three permissions each (two direct, one by group) and one token each;
    returns their keys (made anew each run: only digests are stored)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from tokens.models import ApiToken
    from tokens.services import token_create

    User = get_user_model()
    ApiToken.objects.all().delete()
    existing = User.objects.filter(username__startswith="bench-auth-").count()
    User.objects.bulk_create(User(username=f"bench-auth-{i}") for i in range(existing, users))
    group, _ = Group.objects.get_or_create(name="bench-readers")
    group.permissions.set(Permission.objects.filter(codename__in=["view_host", "view_image"]))
    direct = list(Permission.objects.filter(codename__in=["view_node", "upgrade_node"]))
    keys = []
    for user in User.objects.filter(username__startswith="bench-auth-").order_by("pk")[:users]:
        user.user_permissions.set(direct)
        user.groups.set([group])
        keys.append(token_create(user=user)[1])
    return keys


def measure(label, authenticate, keys, requests):
    from django.db import connection

    timings, counted = [], []

    def count(execute, sql, *rest):
        counted.append(sql)
        return execute(sql, *rest)

    with connection.execute_wrapper(count):
        for _ in range(requests):
            key = random.choice(keys)
            started = time.perf_counter()
            user = authenticate(key)
            assert user.has_perm("nodes.upgrade_node") and user.has_perm("nodes.view_node")
            timings.append(time.perf_counter() - started)
    statements = len(counted)
    mean = sum(timings) / len(timings)
    print(
        f"{label:<34} {mean * 1e6:8.0f} us/request  p50 {percentile(timings, 0.5) * 1e6:6.0f}  "
        f"p99 {percentile(timings, 0.99) * 1e6:6.0f}  statements {statements / requests:.1f}"
    )
    return mean


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()

    ensure_database(DATABASE)
    from bench.common import database_url

    setup_django(database_url(DATABASE))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    keys = seed(args.users)

    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from tokens import keys as token_keys
    from tokens.authentication import UserTokenAuthentication
    from tokens.models import ApiToken

    factory = APIRequestFactory()

    def ours(key):
        request = Request(factory.get("/api/v1/nodes/", HTTP_AUTHORIZATION=f"Bearer {key}"))
        return UserTokenAuthentication().authenticate(request)[0]

    def drf_shape(key):  # DRF TokenAuthentication: token + user by the ORM; permissions read by has_perm
        return ApiToken.objects.select_related("user").get(digest=token_keys.digest(key)).user

    print(f"auth + permission check, {args.users} users with tokens, {args.requests} requests each, same run")
    for _ in range(2):  # alternate, so drift in machine load hits both
        baseline = measure("DRF authtoken shape (baseline)", drf_shape, keys, args.requests)
        new = measure("tokens.UserTokenAuthentication", ours, keys, args.requests)
        print(f"  ratio: {baseline / new:.2f}x faster than the baseline")


if __name__ == "__main__":
    main()
