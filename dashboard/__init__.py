"""The web dashboard: starlette pages over the engine and the store, served by the
runtime beside the admin API (``http://127.0.0.1:9070/``).

One module per page kind (``invocations``, ``invocation``, ``awakeables``, ``state``,
``services``, ``sql``); templates in ``durable.templates`` (``dashboard/``), a vendored
htmx and one CSS file in ``static/``. See docs/architecture.md (the Dashboard decisions).
"""

from ._app import create_dashboard, dashboard_app

__all__ = ["create_dashboard", "dashboard_app"]
