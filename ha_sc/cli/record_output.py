"""How ``ha-sc consume`` prints records: values, ``[key] value``, or JSON lines (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ha_sc.client.consumer_record import ConsumerRecord

CONSUME_FORMATS = ("text", "json")


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def value_line(record: ConsumerRecord) -> str:
    return record.value.decode("utf-8", errors="replace")


def key_value_line(record: ConsumerRecord) -> str:
    """Fluvio's ``--key-value`` form: ``[key] value``, ``[null]`` for no key."""
    key = "null" if record.key is None else _text(record.key)
    return f"[{key}] {value_line(record)}"


def json_line(record: ConsumerRecord) -> str:
    return json.dumps(
        {
            "partition": record.partition,
            "offset": record.offset,
            "key": _text(record.key),
            "value": _text(record.value),
            "timestamp": record.timestamp_ms,
        },
        ensure_ascii=False,
    )


def formatter(output: str, *, key_value: bool) -> Callable[[ConsumerRecord], str]:
    if output == "json":
        return json_line
    return key_value_line if key_value else value_line


def render(records: Sequence[ConsumerRecord], line: Callable[[ConsumerRecord], str]) -> bytes:
    """The lines of ``records``, each ended by a newline, as one piece of output."""
    return "".join([line(record) + "\n" for record in records]).encode()
