"""Callbot: a Microsoft Teams calling and online-meeting bot with a live dashboard."""

from __future__ import annotations

from callbot.celery import app as celery_app

__all__ = ["celery_app"]
