"""``distilora score --engine ray`` on a local Ray cluster (2 CPUs): the same output as the local engine."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distilora.config import ScoreConfig
from distilora.scoring import score_file
from tests.conftest import synthetic_rows

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_the_ray_engine_writes_exactly_what_the_local_engine_writes(tiny_run, tmp_path, local_cluster):
    from distilora.integrations.ray import score_file_with_ray

    texts = [text for text, _ in synthetic_rows(20_000, seed=9)]
    texts[7], texts[19_999] = "", "   "
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": texts}), source)
    config = ScoreConfig(backend="pytorch", precision="fp32", id_column="id", chunk_rows=2_500, progress=False,
                         workers=2)
    local = score_file(tiny_run, "odd", source, tmp_path / "local.parquet", config)
    distributed = score_file_with_ray(tiny_run, "odd", source, tmp_path / "ray.parquet", config)
    ours, theirs = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "ray.parquet")
    assert theirs.num_rows == 20_000 and theirs.column("id").to_pylist() == [f"r{i}" for i in range(20_000)]
    assert ours.schema.remove_metadata() == theirs.schema.remove_metadata()
    for column in ours.column_names:
        if column.startswith("score_"):  # batches of other texts can move the last float bits
            assert ours.column(column).to_pylist() == pytest.approx(theirs.column(column).to_pylist(), abs=1e-5,
                                                                   nan_ok=True)
        else:
            assert ours.column(column).to_pylist() == theirs.column(column).to_pylist(), column
    assert (local.scored, local.flagged, local.unscorable) == (distributed.scored, distributed.flagged,
                                                               distributed.unscorable)


def test_the_ray_scorer_uses_the_cpus_ray_assigned_it(tiny_run, local_cluster):
    from distilora.integrations.ray import RayScorer

    @ray.remote(num_cpus=2)
    def threads_of_a_scorer() -> tuple[int, int]:
        import torch

        scorer = RayScorer(str(tiny_run), "odd")
        return torch.get_num_threads(), len(scorer(pa.table({"text": ["some text"]})))

    assert ray.get(threads_of_a_scorer.remote()) == (2, 1)
