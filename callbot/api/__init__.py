"""The REST API (``/api/v1/``) and outbound webhooks; docs/api.md.

An edge beside the dashboard: its views parse, authorize with the dashboard's own
role checks (``dashboard.permissions``), read through the dashboard's read models
(``history_query``, ``timeline_reads``, ``snapshots``) and act through the same
services as the live socket (``dashboard.incoming``, ``callbot.calls.services``).
It may import ``dashboard`` and ``callbot.calls``; neither imports it (the
webhooks hear the domain through signals: ``callbot.calls.signals``).
"""
