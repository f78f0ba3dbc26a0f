"""restate.endpoint: ``app([...])`` gives what ``durable dev`` discovers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from durable import App
from durable.definitions import ServiceDef

__all__ = ["Endpoint", "app"]


class Endpoint:
    """The services of an app, bound one by one (restate's builder)."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceDef] = {}

    def bind(self, *services: ServiceDef) -> Endpoint:
        for s in services:
            self.services[s.name] = s
        return self

    def streaming_protocol(self) -> Endpoint:
        return self

    def request_response_protocol(self) -> Endpoint:
        return self

    def identity_key(self, _key: str) -> Endpoint:
        return self

    def set_journal_value_codec(self, _codec: Any) -> Endpoint:
        return self

    def app(self) -> App:
        return App(self.services.values())


def app(
    services: Iterable[ServiceDef],
    protocol: str | None = None,
    identity_keys: list[str] | None = None,
    journal_value_codec: Any = None,
) -> App:
    """The services ``durable dev`` serves (restate's ASGI app is not needed: durable's
    runtime calls the handlers). ``protocol`` and ``identity_keys`` concern a Restate
    server and change nothing here."""
    return App(services)
