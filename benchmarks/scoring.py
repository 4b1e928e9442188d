"""``distilora score`` at scale: a file of N rows built from the shared datasets' texts (repeated and shuffled), scored
by one model of a run, beside the same model's batch-64 texts/s measured in the same process; peak RSS of the scoring
process sampled with psutil; optionally killed with SIGKILL half-way and rerun (the rerun must reuse the finished parts
and give exactly one row per input row).

    python -m benchmarks.scoring --run runs/tweet_eval_hate --model odd --rows 1000000 --kill-at 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SOURCES = ("tweet_eval_hate", "hate_speech18")


def build_input(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows (``id``, ``text``): every text of the shared datasets' splits, repeated and shuffled."""
    texts = []
    for name in SOURCES:
        for split in ("train", "validation", "test"):
            table = pa_csv.read_csv(SHARED / name / f"{split}.csv",
                                    convert_options=pa_csv.ConvertOptions(column_types={"text": pa.string()}))
            texts += table.column("text").to_pylist()
    order = np.random.default_rng(seed).integers(0, len(texts), size=rows)
    pq.write_table(pa.table({"id": [f"c{i:07d}" for i in range(rows)], "text": [texts[i] for i in order]}), path,
                   row_group_size=100_000)


def batch64_texts_per_s(run: str, model: str, backend: str, texts: list[str]) -> float:
    """The model's texts/s at batch 64 on ``texts`` (PyTorch at the precision named in ``backend``)."""
    from distilora.inference import load_classifier

    precision = "bf16" if "bf16" in backend else "fp32"
    classifier = load_classifier(run, model, precision=precision)
    classifier.batch_size = 64
    classifier.predict(texts[:64])
    start = time.perf_counter()
    classifier.predict(texts)
    return len(texts) / (time.perf_counter() - start)


def score(run: str, model: str, source: Path, output: Path, kill_at: float | None, rows: int) -> dict:
    """Run ``distilora score`` in a child process; its wall, peak RSS and (if killed) when."""
    command = [sys.executable, "-m", "distilora", "score", "--run", run, "--model", model, "--input", str(source),
               "--output", str(output), "--id-column", "id", "--no-progress"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    child = psutil.Process(process.pid)
    peak, killed = 0, False
    parts = output.with_name(output.name + ".parts") / "manifest.json"
    while process.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        if kill_at is not None and parts.is_file():
            done = sum(p["rows"] for p in json.loads(parts.read_text())["parts"])
            if done >= kill_at * rows:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
        time.sleep(0.2)
    stderr = process.communicate()[1]
    return {"wall_s": time.perf_counter() - start, "peak_rss_mb": peak / 2**20, "killed": killed,
            "returncode": process.returncode, "summary": stderr.strip().splitlines()[-1:] if stderr else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--model", default="odd")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kill-at", type=float, default=None, help="SIGKILL when this share of rows is written")
    parser.add_argument("--workdir", default="bench-results/scoring")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    source, output = workdir / f"input-{args.rows}.parquet", workdir / f"scores-{args.rows}.parquet"
    if not source.exists():
        build_input(source, args.rows)
    runs = [score(args.run, args.model, source, output, args.kill_at, args.rows)]
    if runs[0]["killed"]:
        runs.append(score(args.run, args.model, source, output, None, args.rows))
    ids = pq.read_table(output, columns=["id"]).column("id")
    metadata = json.loads(pq.read_schema(output).metadata[b"distilora"])
    sample = pq.read_table(source, columns=["text"]).slice(0, 512).column("text").to_pylist()
    reference = batch64_texts_per_s(args.run, args.model, metadata["backend"], sample)
    print(json.dumps({"rows": args.rows, "runs": runs, "output_rows": len(ids),
                      "unique_ids": pc.count_distinct(ids).as_py(), "backend": metadata["backend"],
                      "batch64_texts_per_s": reference}, indent=1))


if __name__ == "__main__":
    main()
