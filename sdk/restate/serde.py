"""restate.serde: serializers, on durable's (JSON text in the journal)."""

from __future__ import annotations

from durable.serde import (
    BytesSerde,
    DefaultSerde,
    JsonSerde,
    MsgspecJsonSerde,
    PydanticJsonSerde,
    Serde,
    is_pydantic,
)

__all__ = [
    "Serde",
    "BytesSerde",
    "JsonSerde",
    "DefaultSerde",
    "PydanticJsonSerde",
    "MsgspecJsonSerde",
    "is_pydantic",
]
