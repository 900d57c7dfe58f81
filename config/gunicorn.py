"""gunicorn settings for production: `gunicorn -c config/gunicorn.py config.wsgi`.

Environment: BIND (default 127.0.0.1:8000), WEB_CONCURRENCY (workers, default one per core),
GUNICORN_WORKER_CLASS (default gthread; sync also works), GUNICORN_THREADS (per gthread worker,
default 4), GUNICORN_TIMEOUT, GUNICORN_ACCESS_LOG (default "-", stdout; empty for none); BEHIND_TLS_PROXY
and FORWARDED_ALLOW_IPS (below).

Worker class and count, measured (docs/performance.md, "Through HTTP: wrk, gunicorn worker
class and count"; `bench/http_throughput.py --configs sync:4,gthread:2x4,...`): a request
spends most of its wall time waiting on PostgreSQL (three round trips and COMMIT), so threads
overlap one request's wait with another's Python; gthread also keeps client connections alive,
which sync does not. On 2 cores, gthread with 2 workers x 4 threads served 2-2.6x what sync
with 4 workers did, and more processes than cores only preempted each other.
Each worker is a process with its own metrics; they are gathered through PROMETHEUS_MULTIPROC_DIR."""

import os
import tempfile
from pathlib import Path

import environ

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 2)))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: no access log
graceful_timeout = 10

# Forwarded headers. gunicorn's defaults believe X-Forwarded-Proto (and X-Forwarded-Ssl,
# X-Forwarded-Protocol, SCRIPT_NAME, PATH_INFO) from 127.0.0.1 and from any UNIX-socket peer,
# setting wsgi.url_scheme to https: a request would count as secure (no TLS redirect, HSTS
# sent) on a client's word, whatever Django's BEHIND_TLS_PROXY says. So gunicorn believes
# them exactly when Django does (config/settings.py reads the same variable, and .env): with
# BEHIND_TLS_PROXY=true, X-Forwarded-Proto alone, from FORWARDED_ALLOW_IPS (default loopback,
# where a proxy on the same machine connects from); otherwise nothing, from nobody.
environ.Env.read_env(Path(__file__).resolve().parent.parent / ".env", overwrite=False)
BEHIND_TLS_PROXY = environ.Env().bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
else:
    forwarded_allow_ips = ""
    secure_scheme_headers = {}
forwarder_headers = ""  # SCRIPT_NAME and PATH_INFO from a header: the app is always served at /

# Must be set before any worker imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="nodefleet-metrics-"))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
