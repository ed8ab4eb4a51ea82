"""The identity side: Entra ID client-credentials tokens and notification signing.

Two RSA keys, persisted in the state directory so tokens and cached JWKS survive a
restart: one signs the Graph access tokens the token endpoint hands out (and the Graph
routes verify), the other signs every notification POST the way the calling platform
does (contract §8: ``iss=https://api.botframework.com``, ``aud`` = bot app id, ``tid``).
A third, throw-away key exists only for the "wrong signing key" fault.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from callbot.simulator.config import BotApp

GRAPH_AUDIENCE = "https://graph.microsoft.com"
NOTIFICATION_ISSUER = "https://api.botframework.com"
TOKEN_LIFETIME = 3600
# A notification token is reused until this little lifetime is left, as the real
# platform does not mint one per POST either; it keeps signing off the hot path.
_NOTIFICATION_TOKEN_REUSE = 300

WrongKeyMode = Literal["same_kid", "unknown_kid"]


class InvalidTokenError(Exception):
    """A bearer token the emulator did not issue, or one that expired."""


@dataclass(frozen=True)
class SigningKey:
    """An RSA private key and the ``kid`` its public half is published under."""

    key: rsa.RSAPrivateKey
    kid: str

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``use`` and ``alg``."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        # Entra ID and the Bot Framework both publish x5t; a thumbprint of the public
        # key stands in for the certificate's.
        jwk["x5t"] = self.kid
        return jwk


def load_or_create_key(path: Path | None) -> SigningKey:
    """Load the PEM key at ``path`` or create (and save) a new 2048-bit one.

    ``path`` None keeps the key in memory only.
    """
    key: rsa.RSAPrivateKey | None = None
    if path is not None and path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(loaded, rsa.RSAPrivateKey):
            key = loaded
    if key is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            path.chmod(0o600)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:15]).decode()
    return SigningKey(key=key, kid=kid)


class Identity:
    """Mints and checks Graph tokens; signs notifications."""

    def __init__(self, bot: BotApp, state_dir: Path | None) -> None:
        self.bot = bot
        self.graph_key = load_or_create_key(
            state_dir / "graph-token-key.pem" if state_dir else None
        )
        self.notification_key = load_or_create_key(
            state_dir / "notification-key.pem" if state_dir else None
        )
        self._wrong_key: SigningKey | None = None
        self._cached: tuple[str, float] | None = None

    # --- Entra ID side -------------------------------------------------------------
    def token_issuer(self) -> str:
        """``iss`` of the access tokens (Entra ID's v1 token issuer for app tokens)."""
        return f"https://sts.windows.net/{self.bot.tenant_id}/"

    def mint_graph_token(self, lifetime: int = TOKEN_LIFETIME) -> str:
        """An app-only access token for Graph carrying the app's permissions as roles,
        valid for ``lifetime`` seconds."""
        now = int(time.time())
        claims = {
            "aud": GRAPH_AUDIENCE,
            "iss": self.token_issuer(),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": self.bot.client_id,
            "app_displayname": self.bot.display_name,
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.bot.client_id)),
            "roles": list(self.bot.permissions),
            "tid": self.bot.tenant_id,
            "ver": "1.0",
            "uti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims,
            self.graph_key.key,
            algorithm="RS256",
            headers={"kid": self.graph_key.kid},
        )

    def sign_id_token(self, claims: dict[str, Any]) -> str:
        """A user's id_token, signed with the key the tenant's JWKS publishes."""
        return jwt.encode(
            claims,
            self.graph_key.key,
            algorithm="RS256",
            headers={"kid": self.graph_key.kid},
        )

    def verify_graph_token(self, token: str) -> dict[str, Any]:
        """Check signature, audience, issuer, expiry, tenant and app of a bearer token.

        Returns the claims. Raises ``InvalidTokenError`` saying what was wrong.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.graph_key.key.public_key(),
                algorithms=["RS256"],
                audience=GRAPH_AUDIENCE,
                issuer=self.token_issuer(),
                options={"require": ["exp", "iat", "tid", "appid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError(
                "Lifetime validation failed, the token is expired."
            ) from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"Access token validation failure: {exc}") from exc
        if (
            claims.get("tid") != self.bot.tenant_id
            or claims.get("appid") != self.bot.client_id
        ):
            raise InvalidTokenError(
                "Access token was issued for another tenant or app."
            )
        return claims

    # --- Calling platform side -----------------------------------------------------
    def notification_token(self, wrong_key: WrongKeyMode | None = None) -> str:
        """The bearer token for one notification POST (contract §8).

        With ``wrong_key`` set, the token is signed by a key nobody publishes, under the
        published ``kid`` or an unknown one (the "wrong signing key" fault).
        """
        now = time.time()
        if (
            wrong_key is None
            and self._cached
            and self._cached[1] - now > _NOTIFICATION_TOKEN_REUSE
        ):
            return self._cached[0]
        if wrong_key is None:
            key, kid = self.notification_key, self.notification_key.kid
        else:
            if self._wrong_key is None:
                self._wrong_key = load_or_create_key(None)
            key = self._wrong_key
            kid = (
                self.notification_key.kid
                if wrong_key == "same_kid"
                else self._wrong_key.kid
            )
        issued = int(now)
        claims = {
            "iss": NOTIFICATION_ISSUER,
            "aud": self.bot.client_id,
            "tid": self.bot.tenant_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_LIFETIME,
        }
        token = jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": kid})
        if wrong_key is None:
            self._cached = (token, issued + TOKEN_LIFETIME)
        return token

    def forget_cached_token(self) -> None:
        """Drop the reused notification token (after a permissions or app change)."""
        self._cached = None
