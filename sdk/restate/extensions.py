"""restate.extensions: the running handler's context, for libraries."""

from __future__ import annotations

from durable.context_impl import current_context

from .context_managers import contextvar

__all__ = ["current_context", "contextvar"]
