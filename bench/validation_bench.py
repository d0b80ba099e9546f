"""Validating a valid 100-record produce body against the served request schema: jsonschema-rs vs jsonschema.

    .venv/bin/python bench/validation_bench.py
    PYTHONPATH=<old checkout>:<old checkout>/handlers:<old checkout>/plugins .venv/bin/python bench/validation_bench.py

The second form measures an older checkout (one that still has the hand-written compiled check,
``validation/_compile.py``, which it then times too).
"""

from __future__ import annotations

import importlib
import timeit

import jsonschema_rs
from jsonschema import Draft202012Validator

import kafka_sidecar_plugins.openapi  # noqa: F401 - loads the plugins in their import order
from kafka_sidecar_handlers.producer._openapi import PRODUCE_REQUEST

BODY = {
    "keyFormat": "string",
    "valueFormat": "string",
    "records": [{"key": f"key-{i}", "value": "x" * 1024, "headers": {"a": "b"}} for i in range(100)],
}


def per_call_us(check: object, number: int = 2000) -> float:
    assert callable(check)
    assert check(BODY), "the body must be valid"
    return timeit.timeit(lambda: check(BODY), number=number) / number * 1e6


def main() -> None:
    print(f"jsonschema-rs:        {per_call_us(jsonschema_rs.validator_for(PRODUCE_REQUEST).is_valid):8.1f} µs")
    print(f"jsonschema (Python):  {per_call_us(Draft202012Validator(PRODUCE_REQUEST).is_valid, 50):8.1f} µs")
    try:
        compile_check = importlib.import_module("kafka_sidecar_plugins.validation._compile").compile_check
    except ImportError:
        return
    check = compile_check(PRODUCE_REQUEST)
    if check is not None:
        print(f"hand-compiled check:  {per_call_us(check):8.1f} µs")


if __name__ == "__main__":
    main()
