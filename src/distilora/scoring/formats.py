"""Reading a file of texts in record batches, and writing scored parts, for CSV, JSON Lines and Parquet (chosen by
extension). Memory stays flat: nothing holds more than one chunk of rows."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
READ_REASON = "_distilora_read_reason"
"""A column the JSON Lines reader adds when a row's text could not be read as text (a number, invalid JSON)."""
BLOCK_BYTES = 1 << 20


class InputError(ValueError):
    """The input cannot be scored as asked (a missing column, an unreadable or empty file): one line, nothing
    written."""


def file_format(path: Path, role: str) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"{role} {path}: unknown format {path.suffix or '(no extension)'!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}") from None


@dataclass
class InputFile:
    """A file of texts to score: its format, its columns, and (when cheap to know) how many rows it has."""

    path: Path
    text_column: str
    columns: list[str]
    """The columns read (the text column, the id column, the kept ones)."""

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.format = file_format(self.path, "--input")
        if not self.path.is_file():
            raise InputError(f"--input {self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise InputError(f"--input {self.path}: the file is empty")
        missing = [column for column in self.columns if column not in self.available_columns]
        if missing:
            raise InputError(f"--input {self.path}: no column {', '.join(map(repr, missing))}; it has "
                             f"{', '.join(self.available_columns) or 'none'} (set --text-column / --id-column / "
                             "--keep-columns)")

    @cached_property
    def available_columns(self) -> list[str]:
        """The file's columns (Parquet's schema, the CSV header, the keys of the first JSON lines)."""
        try:
            if self.format == "parquet":
                return list(pq.ParquetFile(self.path).schema_arrow.names)
            if self.format == "csv":
                with self.path.open(newline="", encoding="utf-8") as handle:
                    return next(csv.reader(handle), [])
            return self._jsonl_keys()
        except (OSError, UnicodeDecodeError, pa.ArrowException, csv.Error) as error:
            raise InputError(f"--input {self.path}: cannot be read as {self.format} ({error})") from None

    def _jsonl_keys(self) -> list[str]:
        """The keys of the first records (JSON Lines has no header)."""
        keys: dict[str, None] = {}
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if number > 1000:
                    break
                try:
                    record = json.loads(line) if line.strip() else None
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    keys.update(dict.fromkeys(record))
        if not keys:
            raise InputError(f"--input {self.path}: no JSON object in its first lines")
        return list(keys)

    def count_rows(self) -> int | None:
        """Rows in the file: exact for Parquet; for JSON Lines its lines, for CSV its lines - 1 (exact unless there
        are blank lines or texts with newlines)."""
        if self.format == "parquet":
            return pq.ParquetFile(self.path).metadata.num_rows
        lines = 0
        with self.path.open("rb") as handle:
            while block := handle.read(BLOCK_BYTES):
                lines += block.count(b"\n")
            if self.path.stat().st_size and not _ends_with_newline(self.path):
                lines += 1
        return max(lines - 1, 0) if self.format == "csv" else lines

    def batches(self, rows: int) -> Iterator[pa.Table]:
        """The file in tables of exactly ``rows`` rows (the last may have fewer), columns :attr:`columns`."""
        yield from rechunk(self._record_batches(), rows)

    def _record_batches(self) -> Iterator[pa.RecordBatch | pa.Table]:
        if self.format == "parquet":
            yield from pq.ParquetFile(self.path).iter_batches(batch_size=65_536, columns=self.columns)
        elif self.format == "csv":
            # Every column as text: a later block cannot change a column's type, and ids keep their spelling.
            reader = pa_csv.open_csv(
                self.path, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=self.columns, column_types={c: pa.string() for c in self.columns},
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
            yield from reader
        else:
            yield from self._jsonl_batches()

    def _jsonl_batches(self, rows: int = 10_000) -> Iterator[pa.Table]:
        """JSON Lines read line by line: a text that is not a string, or a line that is not a JSON object, stays a
        row (text null, the reason in :data:`READ_REASON`); blank lines are not records."""
        records: list[dict] = []
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    records.append(self._jsonl_record(line))
                    if len(records) == rows:
                        yield self._jsonl_table(records)
                        records = []
        if records:
            yield self._jsonl_table(records)

    def _jsonl_record(self, line: str) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return {READ_REASON: "invalid JSON"}
        if not isinstance(record, dict):
            return {READ_REASON: "not a JSON object"}
        text = record.get(self.text_column)
        if text is not None and not isinstance(text, str):
            record = {**record, self.text_column: None, READ_REASON: "text is not a string"}
        return record

    def _jsonl_table(self, records: list[dict]) -> pa.Table:
        columns = {c: [_plain(r.get(c)) for r in records] for c in self.columns}
        columns[self.text_column] = [r.get(self.text_column) for r in records]
        table = pa.table({c: pa.array(v, type=pa.string() if c == self.text_column else None)
                          for c, v in columns.items()})
        return table.append_column(READ_REASON, pa.array([r.get(READ_REASON) for r in records], type=pa.string()))


def _plain(value):
    """Kept JSON values as scalars or their JSON text (one column needs one type)."""
    return value if value is None or isinstance(value, str | int | float | bool) else json.dumps(value)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def rechunk(batches: Iterator[pa.RecordBatch | pa.Table], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows from batches of any size (the last may have fewer)."""
    pending: list[pa.Table] = []
    held = 0
    for batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        while len(table):
            take = min(rows - held, len(table))
            pending.append(table.slice(0, take))
            held += take
            table = table.slice(take)
            if held == rows:
                yield pa.concat_tables(pending, promote_options="permissive")
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending, promote_options="permissive")


def lists_as_json(table: pa.Table) -> pa.Table:
    """List columns (a multi-label model's decided ``labels``) as their JSON text, which CSV can hold: ``[]`` for an
    empty list, an empty cell for null."""
    for index, column in enumerate(table.schema):
        if pa.types.is_list(column.type):
            text = [None if value is None else json.dumps(value, ensure_ascii=False)
                    for value in table.column(index).to_pylist()]
            table = table.set_column(index, column.name, pa.array(text, type=pa.string()))
    return table


def write_part(table: pa.Table, path: Path, output_format: str) -> None:
    """One scored part, written to a temporary name, synced and renamed into place."""
    partial = path.with_name(path.name + ".partial")
    if output_format == "parquet":
        pq.write_table(table, partial)
    elif output_format == "csv":
        pa_csv.write_csv(lists_as_json(table), partial)
    else:
        with partial.open("w", encoding="utf-8") as handle:
            for record in table.to_pylist():
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)


def join_parts(parts: list[Path], output: Path, output_format: str, metadata: dict[str, str]) -> None:
    """Stream the parts, in order, into ``output`` (one header for CSV; ``metadata`` as Parquet key-value metadata)."""
    partial = output.with_name(output.name + ".partial")
    if output_format == "parquet":
        schema = pq.read_schema(parts[0]).with_metadata({k.encode(): v.encode() for k, v in metadata.items()})
        with pq.ParquetWriter(partial, schema) as writer:
            for part in parts:
                for batch in pq.ParquetFile(part).iter_batches():
                    writer.write_batch(batch)
    else:
        with partial.open("wb") as target:
            for index, part in enumerate(parts):
                with part.open("rb") as source:
                    if output_format == "csv" and index:
                        source.readline()  # each part has the header; the output has it once
                    while block := source.read(BLOCK_BYTES):
                        target.write(block)
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, output)
