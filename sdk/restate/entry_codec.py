"""restate.entry_codec: the journal value codec interface (a preview in restate).

durable dev keeps journals on this machine in plain JSON, so a codec is accepted by
``restate.app(journal_value_codec=...)`` and not applied.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable

__all__ = ["JournalValueCodec", "JournalValueCodecProvider"]


class JournalValueCodec(abc.ABC):
    """Transforms journal values after serialization (restate: encryption, compression)."""

    @abc.abstractmethod
    def encode(self, buf: bytes) -> bytes:
        """Encode a serialized value."""

    @abc.abstractmethod
    async def decode(self, buf: bytes) -> bytes:
        """Decode a stored value."""


JournalValueCodecProvider = Callable[[], Awaitable[JournalValueCodec]]
