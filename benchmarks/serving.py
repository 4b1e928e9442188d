"""The service under load, against the model's own batch speed, in one run on one machine.

    .venv/bin/python -m benchmarks.serving --run runs/tweet_eval_hate --model odd

1. the model's batch-64 throughput in this process (``Classifier.predict``) on 512 of the run's test texts — the
   texts the load test then sends, one per request;
2. a real ``distilora serve`` on loopback, 32 clients sending single-text requests for 60 s
   (``scripts/load_test.py``): requests/s, p50 / p99 (failed requests included), errors, 5xx;
3. 64 clients sending 256 texts of 10,000 characters each for 30 s, plus slow clients: 503s instead of an
   unbounded queue, /healthz p99 during the overload, the server's CPU in the seconds after it stops.

Targets (issue 12): single-text requests/s ≥ 0.7 × batch-64 texts/s, p99 ≤ 250 ms, 0 errors, 0 5xx; under
overload /healthz p99 ≤ 50 ms and the server idle (< 10 % of a core) within 2 s after the load stops.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOAD_TEST = REPO / "scripts" / "load_test.py"
sys.path.insert(0, str(REPO / "tests"))


def test_texts(run: Path, n: int = 512, seed: int = 0) -> list[str]:
    """A seeded sample of the run's test texts (what the load test sends, one per request)."""
    from distilora.config import DataConfig
    from distilora.data import load_task_data
    from distilora.evaluation.speed import timing_texts
    from distilora.run_dir import RunLayout, read_results

    results = read_results(RunLayout(run))
    data = load_task_data(DataConfig(**results["config"]["data"]), results["seed"])
    return timing_texts(data.splits["test"]["text"], n, seed)


def batch_throughput(run: Path, model: str, texts: list[str], batch: int = 64) -> dict[str, float]:
    """Texts per second of ``Classifier.predict`` (best of 3): all texts in one call (sorted by length, padded
    per 64 — the benchmark's "batch 64"), and one call per 64 texts as they come (what a server can batch)."""
    from distilora.inference import load_classifier

    classifier = load_classifier(run, model)
    classifier.batch_size = batch
    classifier.predict(texts[:batch])

    def best(call) -> float:
        seconds = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            call()
            seconds = min(seconds, time.perf_counter() - started)
        return len(texts) / seconds

    sorted_all = best(lambda: classifier.predict(texts))
    per_call = best(lambda: [classifier.predict(texts[i : i + batch]) for i in range(0, len(texts), batch)])
    classifier.model.to("meta")  # free the weights before the server loads its own copy
    gc.collect()
    return {"sorted_batches_of_64": sorted_all, "calls_of_64": per_call}


def load(port: int, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(LOAD_TEST), "--port", str(port), "--json", *args],
                          capture_output=True, text=True, timeout=900)
    if not done.stdout.strip():
        raise SystemExit(f"load test failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    from server_process import ServerProcess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished run directory")
    parser.add_argument("--model", default="odd")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of single-text load")
    parser.add_argument("--overload-duration", type=float, default=30.0)
    parser.add_argument("--output", default="bench-results/serving.json")
    parser.add_argument("--server-threads", type=int, default=None, help="distilora serve --threads")
    args = parser.parse_args(argv)

    texts = test_texts(Path(args.run))
    batch = batch_throughput(Path(args.run), args.model, texts)
    texts_per_s = batch["sorted_batches_of_64"]
    print(f"Classifier.predict at batch 64 on {len(texts)} test texts: {texts_per_s:.1f} texts/s sorted by length "
          f"(the benchmark's figure), {batch['calls_of_64']:.1f} texts/s in calls of 64 as they come", flush=True)
    log = Path(args.output).with_suffix(".server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    texts_file = Path(args.output).with_suffix(".texts.txt")
    texts_file.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    extra = ("--threads", str(args.server_threads)) if args.server_threads else ()
    with ServerProcess(args.run, log, extra_args=extra) as server:
        single = load(server.port, "--clients", "32", "--duration", str(args.duration), "--payload", "single",
                      "--model", args.model, "--pid", str(server.pid), "--texts-file", str(texts_file))
        print(f"single-text: {single['requests_per_s']} req/s, p50 {single['latency_ms']['p50']} ms, "
              f"p99 {single['latency_ms']['p99']} ms, statuses {single['statuses']}, errors {single['errors']}",
              flush=True)
        overload = load(server.port, "--clients", "64", "--duration", str(args.overload_duration), "--payload",
                        "huge", "--slow-clients", "4", "--model", args.model, "--pid", str(server.pid),
                        "--request-timeout", "120")
        print(f"overload: statuses {overload['statuses']}, errors {overload['errors']}, /healthz p99 "
              f"{overload['healthz_ms']['p99']:.1f} ms, server CPU after {overload['server_cpu_percent_after']}",
              flush=True)
    ratio = single["requests_per_s"] / texts_per_s
    targets = {
        "single_text_vs_batch64": (round(ratio, 3), ratio >= 0.7),
        "single_text_p99_ms": (single["latency_ms"]["p99"], single["latency_ms"]["p99"] <= 250),
        "single_text_errors_and_5xx": (single["error_count"] + single["server_5xx"],
                                       single["error_count"] + single["server_5xx"] == 0),
        "overload_503s": (overload["statuses"].get("503", 0), overload["statuses"].get("503", 0) > 0),
        "overload_healthz_p99_ms": (overload["healthz_ms"]["p99"], overload["healthz_ms"]["p99"] <= 50),
        "overload_cpu_idle_within_2s": (overload["server_cpu_percent_after"],
                                        bool(overload["server_cpu_percent_after"])
                                        and overload["server_cpu_percent_after"][1] < 10),
    }
    for name, (value, ok) in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    print(f"(against calls of 64 as they come: {single['requests_per_s'] / batch['calls_of_64']:.2f}×)")
    Path(args.output).write_text(json.dumps({"batch64_texts_per_s": batch, "single": single,
                                             "overload": overload, "targets": targets}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
