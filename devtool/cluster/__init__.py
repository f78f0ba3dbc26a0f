"""The dev tool on a Restate cluster: its admin API as durable's (``--restate URL``).

:mod:`.restate` talks to Restate's admin API; :mod:`.journal` maps its journals to
durable entries; :mod:`.views` builds durable's admin JSON from its SQL tables;
:mod:`.app` serves durable's admin API paths over them, in-process (``cluster_app``).
"""
