"""A ``sqlite`` dead-letter sink: dead letters go to a table in a SQLite file instead of a Kafka topic.

A reactive consumer picks it with ``dead_letter_sink: sqlite``; the file is set by the plugin's own
section of ``chains.yml``::

    sqlite_dead_letters:
      path: /var/lib/sidecar/dead-letters.db

Every letter is one row (source topic, partition, offset, key, value, headers, error, attempts,
consumer). ``write`` answers ``stored=True`` only after the transaction committed, so the sidecar
commits the source offset only for letters that are safely in the file. When the file cannot be
written (its folder is missing, the disk is full), ``write`` raises: the sidecar keeps the records
uncommitted and writes them again after a back-off.

It imports only the public plugin API, ``kafka_sidecar.plugin``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka_sidecar.plugin import (
    ConfigSection,
    DeadLetter,
    DeadLetterReceipt,
    DeadLetterSinkSpec,
    Resources,
    doc,
    hookimpl,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_topic TEXT NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    headers TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    consumer TEXT
)
"""


@dataclass(frozen=True, slots=True)
class SqliteDeadLettersConfig:
    path: str = field(default="dead-letters.db", metadata=doc("The SQLite file dead letters are written to."))


def _row(letter: DeadLetter) -> tuple[object, ...]:
    record = letter.record
    headers = json.dumps([[name, value.decode("utf-8", "replace")] for name, value in record.headers])
    return (record.topic, record.partition, record.offset, record.key, record.value, headers, letter.error,
            letter.attempts, letter.consumer)  # fmt: skip


class SqliteSink:
    """Writes each batch of letters in one transaction; one receipt per letter, the row id as its offset."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def write(self, letters: Sequence[DeadLetter], suffix: str) -> list[DeadLetterReceipt]:
        row_ids = await asyncio.to_thread(self._insert, [_row(letter) for letter in letters])
        return [DeadLetterReceipt(True, f"sqlite:{self.path}", offset=row_id) for row_id in row_ids]

    def _insert(self, rows: list[tuple[object, ...]]) -> list[int]:
        with sqlite3.connect(self.path) as connection:  # commits on success, rolls back on error
            connection.execute(SCHEMA)
            ids = []
            for row in rows:
                cursor = connection.execute(
                    "INSERT INTO dead_letters (source_topic, source_partition, source_offset, key, value, headers,"
                    " error, attempts, consumer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                ids.append(int(cursor.lastrowid or 0))
        connection.close()
        return ids


def _sink(resources: Resources) -> SqliteSink:
    return SqliteSink(resources.section(SqliteDeadLettersConfig).path)


@hookimpl
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection("sqlite_dead_letters", SqliteDeadLettersConfig, "Where the sqlite dead-letter sink writes"))


@hookimpl
def kafka_sidecar_register_dead_letter_sinks(register: Callable[[DeadLetterSinkSpec], None]) -> None:
    register(DeadLetterSinkSpec("sqlite", _sink, "Dead letters as rows of a SQLite file (sqlite_dead_letters.path)"))
