#!/usr/bin/env python
"""Single-text latency of ``distilora serve`` on an idle server, beside the models' own in this process.

    .venv/bin/python scripts/latency.py --run runs/tweet_eval_hate --models odd,teacher
    .venv/bin/python scripts/latency.py --run RUN --models odd,teacher --port 8000      # a server already running
    .venv/bin/python scripts/latency.py --run RUN --dump-texts texts.txt                # the test texts, for wrk

Without ``--port`` it starts ``distilora serve --run RUN`` on a free loopback port (and stops it after). For each
model it sends ``--requests`` sequential POSTs of one test text each (rotating through the run's test split) on one
keep-alive connection, and times ``load_classifier(RUN, model).predict([text])`` on the same texts in this process,
in alternating blocks of 50, so that both see the same machine. Warm-up calls are not counted. Prints p50 / p99 of
both, the server's overhead and each model's p50 over the teacher's. Nothing else should run on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BLOCK = 50
"""Requests to the server, then as many in-process calls, in turn."""
sys.path.insert(0, str(REPO / "tests"))  # server_process: start a server and wait until it is healthy


@dataclass
class Latency:
    """One model's single-text latencies, ms."""

    model: str
    server_p50: float
    server_p99: float
    in_process_p50: float
    in_process_p99: float
    requests: int
    non_200: int

    @property
    def overhead_ms(self) -> float:
        return self.server_p50 - self.in_process_p50


def test_split(run: Path) -> list[str]:
    """The texts of the run's test split, read as the run read them."""
    from distilora.config import DataConfig
    from distilora.data.loading import load_task_data
    from distilora.run_dir import RunLayout, read_results

    results = read_results(RunLayout(run))
    return list(load_task_data(DataConfig(**results["config"]["data"])).splits["test"]["text"])


def sample(texts: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` of ``texts`` (seeded; repeated when there are fewer)."""
    rng = random.Random(seed)
    return rng.sample(texts, n) if n <= len(texts) else [rng.choice(texts) for _ in range(n)]


def post(conn: http.client.HTTPConnection, model: str, text: str) -> tuple[float, int]:
    """One classify request: milliseconds from sending to the whole answer read, and the status."""
    body = json.dumps({"texts": [text], "model": model}).encode()
    started = time.perf_counter()
    conn.request("POST", "/api/v1/classify", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return (time.perf_counter() - started) * 1000, response.status


def measure(model: str, run: Path, port: int, texts: list[str], warmup: list[str]) -> Latency:
    from distilora.inference import load_classifier

    classifier = load_classifier(run, model)  # fp32, as distilora serve runs it by default
    served, own, failed = [], [], 0
    blocks = [warmup, *(texts[start : start + BLOCK] for start in range(0, len(texts), BLOCK))]
    for number, block in enumerate(blocks):  # in blocks: this process's idle torch threads spin for a while
        # a connection per block: the server closes one idle for 5 s
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()  # not timed
        answers = [post(conn, model, text) for text in block]
        conn.close()
        calls = []
        for text in block:
            started = time.perf_counter()
            classifier.predict([text])
            calls.append((time.perf_counter() - started) * 1000)
        if number > 0:  # the first block warms up
            served += [elapsed for elapsed, _ in answers]
            failed += sum(status != 200 for _, status in answers)
            own += calls
    return Latency(model, float(np.median(served)), float(np.percentile(served, 99)), float(np.median(own)),
                   float(np.percentile(own, 99)), len(texts), failed)


def table(rows: list[Latency], teacher: str = "teacher") -> str:
    lines = [f"{'model':<12} {'server p50':>10} {'server p99':>10} {'in-process p50':>14} {'in-process p99':>14} "
             f"{'overhead p50':>12} {'non-200':>7}"]
    for row in rows:
        lines.append(f"{row.model:<12} {row.server_p50:>8.2f}ms {row.server_p99:>8.2f}ms {row.in_process_p50:>12.2f}ms "
                     f"{row.in_process_p99:>12.2f}ms {row.overhead_ms:>+10.2f}ms {row.non_200:>7}")
    by_name = {row.model: row for row in rows}
    if teacher in by_name:
        base = by_name[teacher]
        for row in rows:
            if row.model != teacher:
                lines.append(f"{row.model}/{teacher} p50: server {row.server_p50 / base.server_p50:.2f}, "
                             f"in-process {row.in_process_p50 / base.in_process_p50:.2f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="a run directory made by distilora run")
    parser.add_argument("--models", default="odd,teacher", help="comma-separated model names")
    parser.add_argument("--requests", type=int, default=200, help="timed single-text requests per model")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per model first")
    parser.add_argument("--port", type=int, default=None,
                        help="a distilora serve of the same run already listening on loopback (default: start one)")
    parser.add_argument("--dump-texts", type=Path, default=None, metavar="FILE",
                        help="only write the run's test texts to FILE, one per line (for scripts/wrk_classify.lua)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.dump_texts:
        texts = list(dict.fromkeys(" ".join(t.split()) for t in test_split(args.run) if t.strip()))
        args.dump_texts.write_text("\n".join(texts) + "\n", encoding="utf-8")
        print(f"wrote {len(texts)} test texts to {args.dump_texts}")
        return 0
    import torch
    from server_process import ServerProcess

    torch.set_num_threads(os.cpu_count() or 1)  # as the server's model process
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    texts = sample(test_split(args.run), args.requests + args.warmup)
    server = None
    if args.port is None:
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"distilora-latency-{os.getpid()}.log"
        server = ServerProcess(args.run, log).start()
        print(f"started distilora serve on port {server.port} (log: {log})", file=sys.stderr)
    try:
        port = args.port or server.port
        rows = [measure(m, args.run, port, texts[args.warmup:], texts[:args.warmup]) for m in models]
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"latency: {error}") from None
    finally:
        if server is not None:
            server.stop()
    print(json.dumps([asdict(r) | {"overhead_ms": r.overhead_ms} for r in rows], indent=1) if args.json
          else table(rows))
    return 1 if any(r.non_200 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
