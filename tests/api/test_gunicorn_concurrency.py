"""Cross-process concurrency: the app under gunicorn (4 workers, PostgreSQL), 16 clients
upgrading the nodes of one host back and forth. Only 200/409/503 answers, and afterwards every
host's counters equal its nodes' sums, with one history entry and one command per success."""

import random
import threading
from collections import Counter

import pytest

from nodes.models import Command, NodeLog
from tests.api.gunicorn import gunicorn
from tests.api.gunicorn import post_json as post
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tests.invariants import assert_counters_exact
from tokens.services import token_create

CLIENTS = 16
REQUESTS_PER_CLIENT = 32  # 512 in all


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sixteen_clients_upgrading_under_four_gunicorn_workers_keep_counters_exact(tmp_path):
    # Capacity for every node on the middle image, not for all on the large one: some refusals.
    host = HostFactory(cpu_cores=64)
    images = [ImageFactory(protocol="ethereum", min_cpu_cores=cores) for cores in (2, 6, 12)]
    nodes = [str(place_node(host=host, image=images[i % 2]).pk) for i in range(8)]
    token = token_create(user=UserFactory(permissions=["nodes.upgrade_node"]))[1]
    logs_before, commands_before = NodeLog.objects.count(), Command.objects.count()
    answers, codes, failures = Counter(), Counter(), []

    with gunicorn(workers=4, log=tmp_path / "gunicorn.log") as base_url:

        def client(seed: int):
            rng = random.Random(seed)
            try:
                for _ in range(REQUESTS_PER_CLIENT):
                    node, image = rng.choice(nodes), rng.choice(images)
                    status, body = post(f"{base_url}/api/v1/nodes/{node}/upgrade/", token, {"image_id": str(image.pk)})
                    answers[status] += 1
                    codes[body.get("code", "ok")] += 1
            except Exception as error:
                failures.append(repr(error))

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    log = (tmp_path / "gunicorn.log").read_text()
    assert failures == [], (failures, log[-3000:])
    assert sum(answers.values()) == CLIENTS * REQUESTS_PER_CLIENT
    assert set(answers) <= {200, 409, 503}, (answers, codes, log[-3000:])
    assert answers[200] > 0 and codes["already_on_image"] > 0
    assert_counters_exact()
    assert NodeLog.objects.count() - logs_before == answers[200]
    assert Command.objects.count() - commands_before == answers[200]
