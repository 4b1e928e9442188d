"""Data: read a dataset directory (or hub id), clean it, and report what was dropped."""

from distilora.data.encoding import encode_splits
from distilora.data.loading import DataError, TaskData, load_task_data

__all__ = ["DataError", "TaskData", "encode_splits", "load_task_data"]
