"""Upgrades through HTTP: gunicorn and `POST /api/v1/nodes/{id}/upgrade/` with a token, driven by
`wrk` with a Lua script (C, a few % of a core), against the service level (node_upgrade from as
many processes as gunicorn has workers) measured in the same run on the same data. Prints
throughput, p50/p99 latency and the ratio, per gunicorn configuration.

    .venv/bin/python bench/http_throughput.py [--database nodefleet_bench] [--seconds 15]
        [--configs sync:4,gthread:2x4]   # worker class:workers[xthreads], one phase each

wrk is Debian's package; the bench installs it (apt-get) when it is missing. Each wrk thread
holds one keep-alive connection and upgrades its own share of nodes to random other images of
their protocol, tracking the image of each node from the answers (so every request is a real
upgrade: 200, or 409 when the host is full). gunicorn's sync worker does not keep connections
alive: wrk then reconnects for every request, as a client of a sync worker behind no proxy would.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, ensure_fleet
from bench.upgrade_throughput import load_plan, run_phase

LUA = r"""
-- Written by bench/http_throughput.py. One connection per thread: the answer to read is always
-- the one to the request this thread sent last, so each node's image is known.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads)
end

function init(args)
  token, plan_dir = args[1], args[2]
  nodes = {}
  for line in io.lines(plan_dir .. "/plan-" .. index .. ".txt") do
    local fields = {}
    for field in line:gmatch("%S+") do table.insert(fields, field) end
    local node = {id = fields[1], image = fields[2], images = {}}
    for i = 3, #fields do table.insert(node.images, fields[i]) end
    table.insert(nodes, node)
  end
  math.randomseed(os.time() * 100 + index)
  statuses = {}
  headers = {["Authorization"] = "Token " .. token, ["Content-Type"] = "application/json"}
end

function request()
  node = nodes[math.random(#nodes)]
  repeat target = node.images[math.random(#node.images)] until target ~= node.image
  return wrk.format("POST", "/api/v1/nodes/" .. node.id .. "/upgrade/", headers,
                    '{"image_id": "' .. target .. '"}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then node.image = target end
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[tostring(status)] = (total[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do table.insert(parts, '"' .. status .. '": ' .. count) end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"seconds": %f, "requests": %d, "p50_ms": %f, "p99_ms": %f, "statuses": {%s}, ' ..
    '"socket_errors": %d}\n',
    summary.duration / 1e6, summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    table.concat(parts, ", "), errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def ensure_wrk() -> str:
    """Debian's wrk, installed with apt-get when missing."""
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, worker_class: str, workers: int, threads: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "benchmark-only",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_WORKER_CLASS": worker_class,
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_ACCESS_LOG": "",
        "API_WRITE_THROTTLE_RATE": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # config/gunicorn.py makes a fresh one
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(150):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn did not answer: {server.stderr.read()[-2000:]}")


def write_plan(directory: Path, plan: dict) -> None:
    """plan-<n>.txt for wrk thread n: `node current-image image image ...` (its protocol's images)."""
    for index, share in enumerate(plan["work"], start=1):
        lines = [
            " ".join([str(node), str(current), *map(str, plan["images"][protocol])])
            for node, current, protocol in share
        ]
        (directory / f"plan-{index}.txt").write_text("\n".join(lines) + "\n")


def parse_config(text: str) -> tuple[str, int, int]:
    """`sync:4` or `gthread:2x4` -> (class, workers, threads)."""
    worker_class, _, size = text.partition(":")
    workers, _, threads = size.partition("x")
    return worker_class, int(workers), int(threads or 1)


def http_phase(
    wrk: str, url: str, config: str, token: str, connections: int, seconds: float, sample: int, warmup: float
) -> dict:
    worker_class, workers, threads = parse_config(config)
    with tempfile.TemporaryDirectory(prefix="nodefleet-wrk-") as directory:
        directory = Path(directory)
        (directory / "upgrade.lua").write_text(LUA)
        port = free_port()
        server = start_gunicorn(url, port, worker_class, workers, threads)
        try:
            output = ""
            for duration in (warmup, seconds):  # the first run warms every worker up (imports, caches)
                write_plan(directory, load_plan(connections, sample))  # the nodes' images as they are now
                command = [wrk, "-t", str(connections), "-c", str(connections), "-d", f"{duration:g}s"]
                command += ["--timeout", "10s", "-s", str(directory / "upgrade.lua"), f"http://127.0.0.1:{port}"]
                command += ["--", token, str(directory)]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        finally:
            server.terminate()
            server.wait(20)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["rate"] = result["statuses"].get("200", 0) / result["seconds"]
    result["config"] = f"{worker_class}, {workers} workers" + (f" x {threads} threads" if threads > 1 else "")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument(
        "--configs",
        default="gthread:2x4",
        help="gunicorn configurations, comma-separated: class:workers[xthreads] (default gthread:2x4)",
    )
    parser.add_argument("--processes", type=int, default=4, help="service-level processes (default 4)")
    parser.add_argument("--connections", type=int, default=8, help="wrk threads, one connection each (default 8)")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of requests not measured, per configuration")
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()

    wrk = ensure_wrk()
    url = ensure_fleet(args.database, args.hosts, args.nodes_per_host)
    from bench.profile_upgrade import bench_token

    token = bench_token()
    service = run_phase("service", url, args.processes, args.seconds, load_plan(args.processes, args.sample))
    results = [
        http_phase(wrk, url, config, token, args.connections, args.seconds, args.sample, args.warmup)
        for config in args.configs.split(",")
    ]
    print(
        f"fleet: {args.hosts} hosts x {args.nodes_per_host} nodes; {args.seconds:g} s per phase; "
        f"wrk: {args.connections} connections"
    )
    print(f"  service level ({args.processes} processes)  {service['rate']:>8.1f} upgrades/s")
    for result in results:
        print(
            f"  HTTP, {result['config']:<28} {result['rate']:>8.1f} upgrades/s  p50 {result['p50_ms']:.2f} ms  "
            f"p99 {result['p99_ms']:.2f} ms  statuses {dict(sorted(result['statuses'].items()))}"
            + (f"  socket errors {result['socket_errors']}" if result["socket_errors"] else "")
        )
        print(f"    ratio HTTP / service level: {result['rate'] / service['rate']:.2f}x (target >= 0.6x)")


if __name__ == "__main__":
    main()
