"""The app's application permissions against what each of Callbot's features needs.

One row per feature (contract §1.3): the permissions that make it work (any one
of them) and what stops working without them. ``permission_report`` compares the
rows with the ``roles`` the app's access token actually holds; ``check_app``
fetches those roles through the Graph client. The permissions panel shows the
result to admins. Reads only; no rows are written.

The roles read are also kept in Django's cache (Redis when configured) for
``APP_ROLES_SECONDS`` x 3, so the pages and the service stop offering a control
whose permission the app lacks (``availability.py``) without a token request of
their own: the worker's ``read_app_roles`` (beat) and the panel write them,
``held_roles`` reads them. Unknown roles (nothing read yet, the cache down) hold
nothing against any control: Graph still refuses what the app may not do.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from callbot.graph.app_roles import AppGrant
from callbot.graph.errors import GraphError
from callbot.graph.factory import get_graph_client

logger = logging.getLogger(__name__)

ROLES_CACHE_KEY = "app_permissions.roles"


@dataclass(frozen=True)
class Feature:
    name: str
    # Any one of these is enough; empty: needs no permission.
    needs: tuple[str, ...]
    # What people see fail without it.
    without: str
    # Optional features are alternatives or extras; missing them is no problem.
    optional: bool = False


FEATURES: tuple[Feature, ...] = (
    Feature(
        "Answer and hang up peer-to-peer calls, mute the bot, play prompts, "
        "hold music, mute participants",
        (),
        "",
    ),
    Feature(
        "Place calls to people and phone numbers, transfer and redirect calls",
        ("Calls.Initiate.All",),
        "Placing a call, transferring and redirecting fail: Teams answers 403.",
    ),
    Feature(
        "Place group calls and invite people into a call",
        ("Calls.InitiateGroupCall.All",),
        "Group calls cannot be placed and nobody can be invited: Teams answers 403.",
    ),
    Feature(
        "Join meetings, answer meeting invites, remove participants, and stay in "
        "a call someone turns into a group call",
        ("Calls.JoinGroupCall.All",),
        "The bot cannot join meetings or answer their invites, and Teams drops it "
        "from any call a participant adds a third person to.",
    ),
    Feature(
        "Join meetings as an anonymous guest",
        ("Calls.JoinGroupCallAsGuest.All",),
        "Guest joins are refused (joins as the app still work with "
        "Calls.JoinGroupCall.All).",
        optional=True,
    ),
    Feature(
        "Collect key presses (IVR menus), record responses, screen-sharing role, "
        "recording status, app-hosted media",
        ("Calls.AccessMedia.All",),
        "IVR menus hear no key presses, recordings fail, and the screen-sharing "
        "role and recording status are refused: Teams answers 403.",
    ),
    Feature(
        "Create online meetings",
        ("OnlineMeetings.ReadWrite.All",),
        "Creating a meeting fails: Teams answers 403 (the tenant's application "
        "access policy must also allow it).",
    ),
)

# Every permission some feature can use, in the order the panel lists them.
KNOWN_PERMISSIONS: tuple[str, ...] = tuple(
    dict.fromkeys(p for feature in FEATURES for p in feature.needs)
)


@dataclass(frozen=True)
class FeatureStatus:
    feature: Feature
    works: bool


@dataclass(frozen=True)
class MissingPermission:
    name: str
    # What stops working without it (the features only it could enable).
    stops: tuple[str, ...]
    optional: bool


@dataclass(frozen=True)
class PermissionReport:
    held: tuple[str, ...]
    missing: tuple[MissingPermission, ...]
    features: tuple[FeatureStatus, ...]
    # Roles the token holds that no feature of Callbot uses.
    unused: tuple[str, ...]

    @property
    def problems(self) -> tuple[MissingPermission, ...]:
        """The missing permissions that are not optional."""
        return tuple(m for m in self.missing if not m.optional)


def permission_report(roles: Collection[str]) -> PermissionReport:
    """Compare the token's ``roles`` with what each feature needs."""
    granted = set(roles)
    features = tuple(
        FeatureStatus(f, not f.needs or bool(granted & set(f.needs))) for f in FEATURES
    )
    missing = []
    for name in KNOWN_PERMISSIONS:
        if name in granted:
            continue
        broken = [
            s.feature for s in features if not s.works and name in s.feature.needs
        ]
        missing.append(
            MissingPermission(
                name,
                tuple(f.without for f in broken),
                optional=all(f.optional for f in broken),
            )
        )
    return PermissionReport(
        held=tuple(p for p in KNOWN_PERMISSIONS if p in granted),
        missing=tuple(missing),
        features=features,
        unused=tuple(sorted(granted - set(KNOWN_PERMISSIONS))),
    )


@dataclass(frozen=True)
class AppCheck:
    """The app's grant and its report, or why it could not be read."""

    grant: AppGrant | None
    report: PermissionReport | None
    error: str = ""


def check_app(*, fresh: bool = False) -> AppCheck:
    """Read the app's token (a new one with ``fresh``) and report on its roles.

    Talks to the token endpoint when no token is cached (or ``fresh``), never to
    Graph itself. A failure is returned as ``error``, in words, not raised.
    """
    try:
        grant = get_graph_client().app_grant(fresh=fresh)
    except GraphError as exc:
        return AppCheck(None, None, f"Callbot could not read its access token: {exc}")
    remember_roles(grant.roles)
    return AppCheck(grant, permission_report(grant.roles))


def remember_roles(roles: Collection[str]) -> None:
    """Keep the token's ``roles`` for ``held_roles``, for three reading intervals
    (so one missed reading does not forget them)."""
    try:
        cache.set(
            ROLES_CACHE_KEY, sorted(roles), timeout=settings.APP_ROLES_SECONDS * 3
        )
    except Exception as exc:  # the cache is Redis: it may be down
        logger.warning("app roles not kept: %s", exc)


def held_roles() -> frozenset[str] | None:
    """The roles last read from the app's token, or None when not known.

    A cache read, no token request: safe under a row lock and on every snapshot.
    """
    try:
        roles = cache.get(ROLES_CACHE_KEY)
    except Exception as exc:  # the cache is Redis: it may be down
        logger.warning("app roles unknown, the cache failed: %s", exc)
        return None
    if not isinstance(roles, list):
        return None
    return frozenset(str(r) for r in roles)


def forget_roles() -> None:
    """Drop the roles kept (tests; a new app registration)."""
    cache.delete(ROLES_CACHE_KEY)
