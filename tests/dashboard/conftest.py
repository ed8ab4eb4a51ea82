"""Dashboard actors by role: Alice (admin, from tests/conftest.py), Bob the
supervisor and Carol the auditor, each in the group the roles migration made."""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps

import pytest

from dashboard.permissions import Role
from dashboard.roles import upsert_user

PASSWORDS = {"bob": "bob-pw-12345", "carol": "carol-pw-12345", "dave": "dave-pw-12345"}


def ensure_roles() -> None:
    """Recreate the role groups: a transactional test's flush removes the rows the
    data migration made."""
    migration = importlib.import_module("dashboard.migrations.0001_roles")
    migration.create_roles(apps, None)


@pytest.fixture
def bob(db: Any) -> Any:
    """Bob, a supervisor."""
    ensure_roles()
    return upsert_user("bob", Role.SUPERVISOR, password=PASSWORDS["bob"])[0]


@pytest.fixture
def carol(db: Any) -> Any:
    """Carol, an auditor."""
    ensure_roles()
    return upsert_user("carol", Role.AUDITOR, password=PASSWORDS["carol"])[0]


@pytest.fixture
def dave(django_user_model: Any) -> Any:
    """Dave has an account and no role."""
    return django_user_model.objects.create_user("dave", password=PASSWORDS["dave"])
