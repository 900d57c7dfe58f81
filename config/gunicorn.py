"""gunicorn settings for production: `gunicorn -c config/gunicorn.py config.wsgi`.

Environment: BIND (default 127.0.0.1:8000), WEB_CONCURRENCY (workers, default 4),
GUNICORN_WORKER_CLASS (sync or gthread, default sync), GUNICORN_THREADS (per gthread worker,
default 1), GUNICORN_TIMEOUT, GUNICORN_ACCESS_LOG (default "-", stdout; empty for none).

Worker class and count: measured in docs/performance.md ("gunicorn workers"; `bench/http_throughput.py
--configs ...`). A request spends most of its time in Python, so a worker per core keeps the
cores busy only while none waits on the database; two per core cover those waits.
Each worker is a process with its own metrics; they are gathered through PROMETHEUS_MULTIPROC_DIR."""

import os
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: no access log
graceful_timeout = 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Must be set before any worker imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="nodefleet-metrics-"))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
