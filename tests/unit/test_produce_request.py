"""A produce request's schema fields, as the producer reads them: each spelling, each role, none at all."""

from __future__ import annotations

import pytest

from kafka_sidecar.plugin import SchemaRef, ValidationFailed
from kafka_sidecar_handlers.producer._request import parse_batch

DEFAULTS = ("json", "json")


def batch(**fields: object) -> tuple[SchemaRef, SchemaRef]:
    parsed = parse_batch({"records": [{"value": 1}], **fields}, None, DEFAULTS, 100)
    return parsed.key_schema, parsed.value_schema


def test_no_schema_field_means_no_schema_for_either_role() -> None:
    key, value = batch()
    assert key == value == SchemaRef()
    assert not key.given
    assert not value.given


@pytest.mark.parametrize(
    ("fields", "key", "value"),
    [
        ({"keySchemaId": 4}, SchemaRef(schema_id=4), SchemaRef()),
        ({"key_schema_id": 4}, SchemaRef(schema_id=4), SchemaRef()),
        ({"value_schema": '"string"'}, SchemaRef(), SchemaRef(schema='"string"')),
        ({"valueSchema": '"int"', "value_schema": '"string"'}, SchemaRef(), SchemaRef(schema='"int"')),
        ({"valueSchemaVersion": 2, "valueSchemaSubject": "s"}, SchemaRef(), SchemaRef(version=2, subject="s")),
        ({"keySubjectNameStrategy": "RecordNameStrategy"}, SchemaRef(subject_strategy="RecordNameStrategy"),
         SchemaRef()),
    ],
)  # fmt: skip
def test_each_schema_field_reaches_its_role(fields: dict[str, object], key: SchemaRef, value: SchemaRef) -> None:
    assert batch(**fields) == (key, value)


def test_a_schema_id_with_a_schema_is_refused_naming_the_id() -> None:
    with pytest.raises(ValidationFailed) as caught:
        batch(valueSchemaId=3, valueSchema='"string"')
    assert caught.value.field == "valueSchemaId"
