"""Data: read a dataset directory (or hub id), clean it, and report what was dropped."""

from distilora.data.encoding import TOKEN_FIELDS, encode_splits, token_rows
from distilora.data.loading import DataError, TaskData, load_task_data

__all__ = ["TOKEN_FIELDS", "DataError", "TaskData", "encode_splits", "load_task_data", "token_rows"]
