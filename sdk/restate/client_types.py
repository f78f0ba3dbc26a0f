"""restate.client_types: the client's types, for annotations (the client is unsupported)."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["RestateClient", "RestateScopedClient", "RestateClientSendHandle", "HttpError"]


class HttpError(Exception):
    """An HTTP error answered by an ingress."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"HTTP {status_code}: {body}")
        self.status_code = status_code
        self.body = body


class RestateClientSendHandle:
    """What a client's send returns."""

    def __init__(self, invocation_id: str, status_code: int) -> None:
        self.invocation_id = invocation_id
        self.status_code = status_code


class RestateClient(abc.ABC):  # noqa: B024 (a type for annotations only)
    """restate's ingress client (unsupported under durable: restate.create_client raises)."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


class RestateScopedClient(RestateClient):
    """restate's scoped ingress client (a type for annotations only)."""
