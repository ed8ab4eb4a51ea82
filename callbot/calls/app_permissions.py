"""The app's application permissions against what each of Callbot's features needs.

One row per feature (contract §1.3): the permissions that make it work (any one
of them) and what stops working without them. ``permission_report`` compares the
rows with the ``roles`` the app's access token actually holds; ``check_app``
fetches those roles through the Graph client. The permissions panel shows the
result to admins. Reads only; no rows are written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from callbot.graph.app_roles import AppGrant
from callbot.graph.errors import GraphError
from callbot.graph.factory import get_graph_client


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
    return AppCheck(grant, permission_report(grant.roles))
