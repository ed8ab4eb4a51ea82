"""The Teams emulator: Microsoft's side of the Graph calls API as its own ASGI app.

It plays the identity platform (client-credentials tokens, OpenID metadata, JWKS), the
Graph cloud-communications endpoints and the calling platform's signed notifications,
from ``graph-calls-contract.md`` alone. Nothing in this package imports ``callbot.*``
(other than ``callbot.simulator`` itself) or ``dashboard.*``: drift between Callbot's
Graph client and this emulator must surface as a failing test, never as a shared bug.
"""
