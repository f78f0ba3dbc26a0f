"""The admin server: the JSON API the dashboard, the TUI and the CLI use, and the
dashboard mounted beside it.

``app`` builds the server (``create_admin``: health, events, the API routes, the
dashboard); ``routes`` holds the API's endpoints and ``offline_app`` (the same routes over
a store opened read-only); ``filters`` parses list filters and numbers; ``views`` builds
the dicts the API returns; ``actions`` carries out what a person asks for.
"""

from __future__ import annotations

from .app import create_admin
from .routes import offline_app

__all__ = ["create_admin", "offline_app"]
