"""How table cells spell a missing value, shared by every reader of label cells (single- and multi-label)."""

from __future__ import annotations

MISSING_LABELS = frozenset({"NA", "N/A", "n/a", "<NA>", "#N/A", "NaN", "nan", "-NaN", "-nan", "NULL", "null",
                            "None"})
"""How tables spell a missing value (pandas' and R's defaults): in the label column, a missing label, unless the
dataset declares a class of that name (labels.txt or the hub's class names)."""
