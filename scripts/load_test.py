#!/usr/bin/env python
"""Load-test a running ``distilora serve`` on loopback: N concurrent clients for T seconds (or R requests).

    distilora serve &                       # in another terminal, or: make serve
    .venv/bin/python scripts/load_test.py --port 8000 --clients 32 --duration 60
    .venv/bin/python scripts/load_test.py --clients 64 --payload huge --duration 30 --slow-clients 4

Payloads: ``single`` (1 text), ``batch`` (--texts-per-request texts), ``huge`` (256 texts of 10,000 characters) or
``mix`` (the three in turn). Reports requests/s, latency p50 / p90 / p99 over *every* request (failed and timed-out
ones count, at the time they failed), HTTP statuses (5xx counted apart), transport errors, /healthz latency probed
every 50 ms during the load, the server's CPU in the seconds after the load stops, and its resident memory (RSS)
before and after — the server found by the port it listens on, or given with --pid. Slow clients trickle their
bodies a few bytes at a time. After a 503, clients wait its Retry-After (``--ignore-retry-after``: resend at once).
Exit status 1 when any request failed or got a 5xx (503 "busy" is not a failure).
``--endpoint analyze`` sends the same texts, one comment a request, to the Perspective-compatible
``/v1alpha1/comments:analyze`` (``--attribute``, ``--key``) instead of ``/api/v1/classify``.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SENTENCES = [
    "What a lovely sunny afternoon with friends and coffee.",
    "You are worthless trash and everyone hates you.",
    "Honestly, the match was okay, sometimes a bit meh.",
    "Those people are vermin and do not belong in this country.",
    "I can't believe how kind the neighbours were during the holiday, thank you all so much!",
    "This is the stupidest idea I have ever read, and the people pushing it are idiots. " * 6,
]


@dataclass
class Tally:
    """What every client saw, merged under a lock."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, limit: int) -> bool:
        """Reserve one request of the overall budget."""
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True


def loopback_only(host: str) -> str:
    """The host, if every address it resolves to is loopback; SystemExit otherwise."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise SystemExit(f"load_test: cannot resolve {host!r}: {error}") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise SystemExit(f"load_test: {host!r} is not a loopback address; this script only drives a local server")
    return host


def find_server_pid(port: int) -> int | None:
    """The process listening on ``port`` (needs permission to see it), or None."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.AccessDenied:
        return None
    return None


def _server_processes(pid: int) -> list:
    """The server and its child processes (the model process)."""
    import psutil

    server = psutil.Process(pid)
    return [server, *server.children(recursive=True)]


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    import psutil

    try:
        return sum(p.memory_info().rss for p in _server_processes(pid)) / 2**20
    except psutil.Error:
        return None


PAYLOADS = ("single", "batch", "huge", "mix")
ENDPOINTS = {"classify": "/api/v1/classify", "analyze": "/v1alpha1/comments:analyze"}
HUGE_TEXT = ("These people are a plague and should be driven out of the country. " * 150)[:10_000]


def request_body(i: int, payload: str, texts_per_request: int, model: str | None,
                 sentences: list[str] = SENTENCES, attribute: str | None = None) -> bytes:
    """A classify body; with ``attribute``, a Perspective analyze body scoring the first text on it."""
    kind = ("single", "batch", "huge")[i % 3] if payload == "mix" else payload
    if kind == "huge":
        texts = [HUGE_TEXT] * 256
    else:
        count = 1 if kind == "single" else texts_per_request
        texts = [sentences[(i + k) % len(sentences)] for k in range(count)]
    body: dict = {"texts": texts}
    if attribute:
        body = {"comment": {"text": texts[0]}, "requestedAttributes": {attribute: {}}}
    elif model:
        body["model"] = model
    return json.dumps(body).encode()


def _send(conn: http.client.HTTPConnection, body: bytes, slow: bool, path: str = ENDPOINTS["classify"]) -> None:
    """POST ``body`` to ``path``; a slow client sends it 64 bytes at a time, 10 ms apart."""
    if not slow:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        return
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    for start in range(0, min(len(body), 64 * 200), 64):  # at most 2 s of trickling, then the rest at once
        conn.send(body[start : start + 64])
        time.sleep(0.01)
    conn.send(body[64 * 200 :])


def client(host: str, port: int, deadline: float, limit: int, payload: str, texts_per_request: int,
           model: str | None, timeout_s: float, tally: Tally, seed: int, slow: bool = False,
           honour_retry_after: bool = True, sentences: list[str] = SENTENCES, path: str = ENDPOINTS["classify"],
           attribute: str | None = None) -> None:
    """One client: a keep-alive connection sending requests one after another until time or budget runs out."""
    conn: http.client.HTTPConnection | None = None
    i = seed
    while time.monotonic() < deadline and tally.claim(limit):
        body = request_body(i, payload, texts_per_request, model, sentences, attribute)
        i += 1
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
            _send(conn, body, slow, path)
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with tally.lock:
                tally.latencies_ms.append(elapsed)
                tally.statuses[response.status] += 1
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
            retry_after = response.getheader("retry-after")
            if response.status == 503 and retry_after and honour_retry_after:  # as a well-behaved client does
                time.sleep(max(0.0, min(float(retry_after), deadline - time.monotonic())))
        except (OSError, http.client.HTTPException) as error:
            elapsed = (time.perf_counter() - started) * 1000
            with tally.lock:  # a failure counts in the latencies too, at the time it failed
                tally.latencies_ms.append(elapsed)
                tally.errors[type(error).__name__] += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def probe_health(host: str, port: int, stop: threading.Event, latencies: list[float]) -> None:
    """GET /healthz every 50 ms on its own connection until ``stop``; a failure counts as 10 s."""
    while not stop.wait(0.05):
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000 if ok else 10_000.0)


def cpu_after(pid: int | None, seconds: int = 3) -> list[float] | None:
    """The server's CPU use (% of one core, its child processes included) in each of the ``seconds`` after the
    load stopped."""
    if pid is None:
        return None
    import psutil

    try:
        processes = _server_processes(pid)
        for process in processes:
            process.cpu_percent()
        samples = []
        for _ in range(seconds):
            time.sleep(1.0)
            samples.append(round(sum(p.cpu_percent() for p in processes if p.is_running()), 1))
        return samples
    except psutil.Error:
        return None


def check_health(host: str, port: int) -> None:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        conn.close()
    except OSError as error:
        raise SystemExit(f"load_test: no server on {host}:{port} ({error}); start one with `distilora serve`") from None
    if status != 200:
        raise SystemExit(f"load_test: {host}:{port}/healthz answered {status}; the server is not ready")


def run(args: argparse.Namespace) -> dict:
    host = loopback_only(args.host)
    check_health(host, args.port)
    pid = args.pid or find_server_pid(args.port)
    rss_before = rss_mib(pid)
    sentences = SENTENCES
    if args.texts_file:
        lines = Path(args.texts_file).read_text(encoding="utf-8").splitlines()
        sentences = [line.strip() for line in lines if line.strip()][:100_000]
        if not sentences:
            raise SystemExit(f"load_test: {args.texts_file} holds no text")
    path = ENDPOINTS[args.endpoint] + (f"?key={args.key}" if args.key else "")
    target = {"path": path, "attribute": args.attribute if args.endpoint == "analyze" else None}
    tally, slow_tally = Tally(), Tally()
    health: list[float] = []
    stop_probe = threading.Event()
    prober = threading.Thread(target=probe_health, args=(host, args.port, stop_probe, health), daemon=True)
    started = time.monotonic()
    deadline = started + args.duration
    threads = [
        threading.Thread(target=client, daemon=True,
                         args=(host, args.port, deadline, args.max_requests, args.payload, args.texts_per_request,
                               args.model, args.request_timeout, tally, n * 97, False, not args.ignore_retry_after,
                               sentences), kwargs=target)
        for n in range(args.clients)
    ] + [
        threading.Thread(target=client, daemon=True,
                         args=(host, args.port, deadline, args.max_requests, args.payload, args.texts_per_request,
                               args.model, args.request_timeout, slow_tally, n, True, not args.ignore_retry_after,
                               sentences), kwargs=target)
        for n in range(args.slow_clients)
    ]
    prober.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.duration + args.request_timeout + 5)
    wall = time.monotonic() - started
    stop_probe.set()
    prober.join(15)
    cpu = cpu_after(pid)
    rss_after = rss_mib(pid)
    with tally.lock:
        latencies = list(tally.latencies_ms)
        statuses = dict(tally.statuses)
        errors = dict(tally.errors)
    answered = len(latencies) - sum(errors.values())
    with slow_tally.lock:
        slow_answered = len(slow_tally.latencies_ms) - sum(slow_tally.errors.values())
        slow = {"clients": args.slow_clients, "answered": slow_answered,
                "statuses": {str(k): v for k, v in sorted(slow_tally.statuses.items())},
                "errors": dict(slow_tally.errors)}
    return {
        "url": f"http://{host}:{args.port}{ENDPOINTS[args.endpoint]}",
        "clients": args.clients,
        "payload": args.payload,
        "texts_per_request": args.texts_per_request,
        "model": args.model or "default",
        "seconds": round(wall, 3),
        "requests": len(latencies),
        "answered": answered,
        "requests_per_s": round(answered / wall, 2) if wall else None,
        "latency_ms": {name: None if v is None else round(v, 2) for name, v in (
            ("p50", percentile(latencies, 50)), ("p90", percentile(latencies, 90)),
            ("p99", percentile(latencies, 99)), ("max", max(latencies) if latencies else None))},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "error_count": sum(errors.values()),
        "non_2xx": sum(v for k, v in statuses.items() if not 200 <= k < 300),
        "server_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "slow_clients": slow,
        "healthz_ms": {"probes": len(health), "p50": percentile(health, 50), "p99": percentile(health, 99),
                       "max": max(health) if health else None},
        "server_cpu_percent_after": cpu,
        "server_pid": pid,
        "rss_mib_before": None if rss_before is None else round(rss_before, 1),
        "rss_mib_after": None if rss_after is None else round(rss_after, 1),
        "rss_mib_change": None if rss_before is None or rss_after is None else round(rss_after - rss_before, 1),
    }


def summary(report: dict) -> str:
    lat = report["latency_ms"]
    rss = ("server RSS: unknown (pass --pid)" if report["rss_mib_before"] is None else
           f"server RSS (pid {report['server_pid']}): {report['rss_mib_before']} MiB before, "
           f"{report['rss_mib_after']} MiB after ({report['rss_mib_change']:+} MiB)")
    return "\n".join([
        f"{report['url']}: {report['clients']} clients, payload {report['payload']} "
        f"({report['texts_per_request']} text(s) for batch), model {report['model']}, {report['seconds']} s",
        f"requests: {report['requests']} ({report['requests_per_s']} answered/s)",
        f"latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}",
        f"statuses: {report['statuses']}  non-2xx: {report['non_2xx']}  5xx: {report['server_5xx']}",
        f"transport errors: {report['error_count']} {report['errors'] or ''}".rstrip(),
        f"/healthz during the load: {report['healthz_ms']['probes']} probes, p50 {report['healthz_ms']['p50']} ms, "
        f"p99 {report['healthz_ms']['p99']} ms",
        f"slow clients: {report['slow_clients']}",
        f"server CPU % in the 3 s after the load: {report['server_cpu_percent_after']}",
        rss,
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="the server's address (loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run at most")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="requests to send at most")
    parser.add_argument("--payload", choices=PAYLOADS, default="batch",
                        help="single: 1 text; batch: --texts-per-request texts; huge: 256 × 10,000 chars; mix")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--texts-file", default=None,
                        help="send these texts (one per line) instead of the built-in ones")
    parser.add_argument("--slow-clients", type=int, default=0, help="extra clients that trickle their bodies")
    parser.add_argument("--ignore-retry-after", action="store_true",
                        help="resend at once after a 503 (default: wait its Retry-After, as a client should)")
    parser.add_argument("--model", default=None, help="model to ask (default: the server's default)")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="classify",
                        help="analyze: Perspective's comments:analyze, one comment a request")
    parser.add_argument("--attribute", default="TOXICITY", help="the attribute analyze requests ask for")
    parser.add_argument("--key", default=None, help="API key for analyze (a server with --api-key-file)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="client timeout per request, seconds")
    parser.add_argument("--pid", type=int, default=None, help="the server's process id (default: found by port)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    for name in ("clients", "max_requests", "texts_per_request"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0 < args.duration <= 3600:
        parser.error("--duration must be in (0, 3600] seconds")
    if args.endpoint == "analyze" and (args.payload != "single" or args.texts_per_request != 1):
        parser.error("--endpoint analyze scores one comment a request: use --payload single")
    if args.texts_per_request > 256:
        parser.error("--texts-per-request: the API takes at most 256")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=1) if args.json else summary(report))
    return 0 if report["error_count"] == 0 and report["server_5xx"] - report["statuses"].get("503", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
