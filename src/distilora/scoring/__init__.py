"""Score files of any size with a run's model: ``distilora.score_file(run, "odd", "in.parquet", "out.parquet")``, or
``Scorer(classifier)(batch)`` on a pandas / pyarrow batch."""

from distilora.scoring.formats import InputError, InputFile
from distilora.scoring.job import ScoreJob, ScoreSummary
from distilora.scoring.scorer import Scorer
from distilora.scoring.service import score_file

__all__ = ["InputError", "InputFile", "ScoreJob", "ScoreSummary", "Scorer", "score_file"]
