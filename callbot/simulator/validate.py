"""Small readers for request bodies that raise Graph's 400 naming the problem."""

from __future__ import annotations

from typing import Any

from callbot.simulator.errors import bad_request

MODALITIES = frozenset({"audio", "video", "videobasedscreensharing", "data", "unknown"})
TONES = frozenset(
    [f"tone{i}" for i in range(10)] + ["star", "pound", "a", "b", "c", "d", "flash"]
)
IDENTITY_MEMBERS = frozenset(
    {
        "user",
        "application",
        "applicationInstance",
        "phone",
        "guest",
        "encrypted",
        "onPremises",
        "azureCommunicationServicesUser",
    }
)


def sub(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is an object, else ``{}`` (lenient nested reads)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def obj(value: Any, name: str) -> dict[str, Any]:
    """``value`` as a required JSON object."""
    if not isinstance(value, dict):
        raise bad_request(f"'{name}' must be an object.")
    return value


def opt_obj(value: Any, name: str) -> dict[str, Any] | None:
    """``value`` as a JSON object, or ``None`` when absent."""
    return None if value is None else obj(value, name)


def text(
    value: Any, name: str, required: bool = False, max_len: int | None = None
) -> str | None:
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string.")
    if max_len is not None and len(value) > max_len:
        raise bad_request(f"'{name}' must be at most {max_len} characters.")
    return value


def client_context(body: dict[str, Any]) -> str | None:
    """The optional ``clientContext`` (≤ 256 characters, contract §12)."""
    return text(body.get("clientContext"), "clientContext", max_len=256)


def array(value: Any, name: str, required: bool = True) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise bad_request(f"'{name}' must be an array.")
    return value


def integer(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer.")
    if not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low} and {high}.")
    return int(value)


def callback_uri(value: Any, required: bool) -> str | None:
    """An http(s) callback URL. Graph demands https; the emulator also takes http so a
    bot on a developer machine can be reached without a tunnel."""
    uri = text(value, "callbackUri", required=required)
    if uri is not None and not uri.lower().startswith(("https://", "http://")):
        raise bad_request("'callbackUri' must be an absolute https URL.")
    return uri


def media_config(value: Any) -> dict[str, Any]:
    """A ``mediaConfig`` whose ``@odata.type`` names one of the two concrete types."""
    config = obj(value, "mediaConfig")
    kind = str(config.get("@odata.type", "")).lower()
    if kind not in (
        "#microsoft.graph.servicehostedmediaconfig",
        "#microsoft.graph.apphostedmediaconfig",
    ):
        raise bad_request(
            "'mediaConfig' must carry @odata.type #microsoft.graph.serviceHostedMediaConfig "
            "or #microsoft.graph.appHostedMediaConfig."
        )
    return config


def modalities(value: Any, name: str) -> list[str]:
    items = array(value, name)
    if not items:
        raise bad_request(f"'{name}' must not be empty.")
    for item in items:
        if not isinstance(item, str) or item.lower() not in MODALITIES:
            raise bad_request(f"'{name}' contains an unknown modality: {item!r}.")
    return [str(item) for item in items]


def identity_set(value: Any, name: str) -> dict[str, Any]:
    """An identitySet with at least one known member that has an ``id``."""
    identity = obj(value, name)
    members = [
        key for key in identity if key in IDENTITY_MEMBERS and identity[key] is not None
    ]
    if not members:
        raise bad_request(
            f"'{name}' must set one of: user, phone, application, applicationInstance, guest."
        )
    for key in members:
        member = identity[key]
        if not isinstance(member, dict) or not (member.get("id") or key == "guest"):
            raise bad_request(f"'{name}.{key}.id' is required.")
    return identity


def invitation(value: Any, name: str) -> dict[str, Any]:
    """An invitationParticipantInfo (contract §2.3)."""
    info = obj(value, name)
    identity_set(info.get("identity"), f"{name}.identity")
    return info


def prompts(value: Any, max_count: int) -> list[dict[str, Any]]:
    """``prompts``: mediaPrompt objects each with ``mediaInfo.uri`` (contract §6.9)."""
    items = array(value, "prompts", required=False)
    if len(items) > max_count:
        raise bad_request(f"'prompts' accepts at most {max_count} entries.")
    for index, item in enumerate(items):
        prompt = obj(item, f"prompts[{index}]")
        info = obj(prompt.get("mediaInfo"), f"prompts[{index}].mediaInfo")
        uri = text(info.get("uri"), f"prompts[{index}].mediaInfo.uri", required=True)
        if uri is not None and not uri.lower().startswith(("https://", "http://")):
            raise bad_request(
                f"'prompts[{index}].mediaInfo.uri' must be an https URL of a WAV file."
            )
    return items
