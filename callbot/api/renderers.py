"""The browsable API under the Content-Security-Policy (``style-src 'self'``)."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BrowsableAPIRenderer


class StrictBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's HTML pages without the Pygments stylesheet it inlines in a
    ``<style>`` element: the policy blocks it, and each page view reported the
    violation in the console. It only colours highlighted code in descriptions
    written in Markdown, which Callbot's are not."""

    def get_context(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context(*args, **kwargs)
        context["code_style"] = None
        return context
