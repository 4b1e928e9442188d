"""The run directory: the one package that knows where a run keeps everything on disk.

```
<run>/
  teacher/ odd/ even/ lora/ …   finished stages: weights + tokenizer + stage.json + manifest.json
  seeds/<seed>/<name>/          the same for the extra seeds of ``num_seeds``
  <name>/calibration.json       temperature and decision threshold fitted on validation by the evaluation
  <name>/README.md              the model card, written after the evaluation
  <name>.partial/               a stage being written; renamed into place once its manifest exists
  predictions/<name>.json       per-item true labels and class probabilities (validation, test)
  results.json  results.md      every metric / the comparison table
  tune.json  .tune/             `distilora tune`'s studies (journal, kept trial models) and their summary
  report.html  report.md  plots/
  checks/<name>.json            behavioural test suite results (``distilora check``)
  export/<name>[-int8]/         ONNX exports (``distilora export``): model.onnx + tokenizer + config + parity.json
  export/<name>.rejected-<t>/   a re-export that failed its gate while <name> passed (kept beside it, not served)
  export/<name>.old-<t>/        a replaced export that held files distilora did not write (moved aside, not served)
  .cache/  .work/  .lock        teacher targets / Trainer checkpoints / the lock of the run holding it
```

:class:`RunLayout` names these paths; :class:`StageStore` writes stages (and exports) atomically and decides
reuse (see :mod:`.stages`); :class:`RunLock` keeps one run at a time; :mod:`.files` reads and writes results,
predictions and the report. The files under ``checks/`` and ``export/`` are handled by
:mod:`distilora.checks.files` and :mod:`distilora.export.files`.

A rerun never deletes what it did not write (:mod:`distilora.kept_files`): files a user added to a finished stage
are left where they are (and carried into the copies the evaluation swaps in); an edited model card or
calibration.json does not retrain the model, it is kept beside as ``README.md.edited-<time>`` when the run writes its
own; a stage replaced while it holds such files is moved to ``NAME.old-<time>/`` instead of being removed.
"""

from distilora.run_dir.files import (
    read_predictions,
    read_results,
    read_tuning,
    write_predictions,
    write_report,
    write_results,
    write_tuning,
)
from distilora.run_dir.layout import (
    CALIBRATION_FILE,
    MODEL_CARD,
    ONNX_FILE,
    PARITY_FILE,
    REPORT_FILES,
    RESULTS,
    RESULTS_TABLE,
    SAFE_NAME,
    TUNE_FILE,
    RunLayout,
    check_safe_name,
)
from distilora.run_dir.lock import RunLock, RunLocked
from distilora.run_dir.records import StageRecord, fingerprint
from distilora.run_dir.stages import STAGE_EXTRAS, STAGE_FILE, StageStore

__all__ = [
    "CALIBRATION_FILE",
    "MODEL_CARD",
    "ONNX_FILE",
    "PARITY_FILE",
    "REPORT_FILES",
    "RESULTS",
    "RESULTS_TABLE",
    "SAFE_NAME",
    "STAGE_EXTRAS",
    "STAGE_FILE",
    "TUNE_FILE",
    "RunLayout",
    "RunLock",
    "RunLocked",
    "StageRecord",
    "StageStore",
    "check_safe_name",
    "fingerprint",
    "read_predictions",
    "read_results",
    "read_tuning",
    "write_predictions",
    "write_report",
    "write_results",
    "write_tuning",
]
