"""How Callbot is watched: Prometheus metrics (``metrics``, ``collectors``,
``exposition``), log context and formats (``logcontext``), error reporting.

The domain records into ``metrics`` with one line where a thing happens; nothing
here writes domain state.
"""
