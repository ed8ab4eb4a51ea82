"""``python -m callbot.simulator``: write the CA and certificates, serve over TLS.

Serves the emulator with daphne on one HTTPS origin (default https://127.0.0.1:8443);
clients trust ``<state-dir>/ca.pem``. With ``--scenario`` a scenario starts once the
server is listening and the bot's webhook takes connections, and runs until stopped
(or ``--duration``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from urllib.parse import urlsplit

from callbot.simulator.config import config_from_env
from callbot.simulator.scenarios import SCENARIOS
from callbot.simulator.tls import ensure_certificates

logger = logging.getLogger("callbot.simulator")

_FOREVER = 10.0 * 365 * 24 * 3600
# Listening on every interface: the certificate keeps its local names only.
_WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 (compared, not bound)


async def wait_for_webhook(url: str, *, every: float = 0.2) -> None:
    """Return once ``url``'s host and port take a TCP connection, saying once in
    the log that the scenario waits for it."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    said = False
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if not said:
                logger.info("scenario waits for the bot's webhook at %s", url)
                said = True
            await asyncio.sleep(every)
            continue
        writer.close()
        await writer.wait_closed()
        if said:
            logger.info("the bot's webhook is listening: scenario starts")
        return


def _escape(path: Path) -> str:
    """Twisted endpoint strings use ``:`` as separator; escape it in paths."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m callbot.simulator",
        description="Microsoft Teams / Graph calls emulator (HTTPS, local CA).",
    )
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTPS port (default 8443)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where the CA, certificate and keys live (default var/emulator)",
    )
    parser.add_argument(
        "--public-url", help="origin clients use, if not https://HOST:PORT"
    )
    parser.add_argument(
        "--bot-webhook",
        help="the bot's registered calling webhook (brand-new incoming calls go here)",
    )
    parser.add_argument(
        "--permissions",
        help="comma-separated app permissions (default: all Calls.* and OnlineMeetings.ReadWrite.All)",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="start this scenario once listening and the bot's webhook takes connections",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for the scenario and faults (default 0)"
    )
    parser.add_argument(
        "--speed", type=float, help="virtual-time speed; > 1 fast-forwards (default 1)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="scenario length in virtual seconds (default: until stopped)",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="logging level (default INFO)"
    )
    return parser


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``, with one line per delivery only at DEBUG.

    httpx logs every request at INFO; the emulator POSTs hundreds of notification
    batches a second under a scenario, which would bury the narration (and, under
    ``make run``, Callbot's own output). So its per-request lines show only when the
    emulator runs at DEBUG. Only the emulator process is configured here: Callbot's
    settings keep their own logging.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise SystemExit(f"unknown log level {level!r}")
    logging.basicConfig(
        level=numeric, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    chatty = logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(chatty)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare TLS files, serve until interrupted."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    config = config_from_env()
    if args.host:
        config.host = args.host
    if args.port:
        config.port = args.port
    if args.state_dir:
        config.state_dir = args.state_dir
    if args.public_url:
        config.public_url = args.public_url
    if args.bot_webhook:
        config.bot.webhook = args.bot_webhook
    if args.permissions is not None:
        config.bot.permissions = tuple(
            p.strip() for p in args.permissions.split(",") if p.strip()
        )
    if args.seed is not None:
        config.seed = args.seed
    if args.scenario:
        config.scenario = args.scenario
    config.state_dir = config.state_dir.resolve()
    wildcard = config.host in _WILDCARDS
    hosts = () if wildcard else (config.host,)
    public_host = urlsplit(config.public_url or "").hostname
    if public_host:
        # Reached by another name (a container's, behind --public-url): it too.
        hosts = (*hosts, public_host)
    files = ensure_certificates(config.state_dir, hosts)

    # daphne.server installs Twisted's asyncio reactor on import; import it first.
    from daphne.server import Server, twisted_loop

    from callbot.simulator.app import create_app

    app = create_app(config)
    emulator = app.state.emulator
    speed = args.speed or 1.0
    duration = args.duration or _FOREVER

    def ready() -> None:
        logger.info(
            "emulator listening on https://%s:%s (trust %s); bot webhook %s",
            config.host,
            config.port,
            files.ca_cert,
            config.bot.webhook,
        )
        # Called before the reactor runs: schedule onto the loop daphne will run.
        twisted_loop.call_soon(start_scenario)

    def start_scenario() -> None:
        if config.scenario:
            pending.add(twisted_loop.create_task(play_when_heard()))
        elif args.speed:
            emulator.clock.set_speed(speed)

    pending: set[asyncio.Task[None]] = set()

    async def play_when_heard() -> None:
        # People calling a bot that is not listening yet would only make calls
        # that ring out unheard (the notifications given up after their retries):
        # the scenario starts once the bot's webhook takes connections.
        await wait_for_webhook(config.bot.webhook)
        emulator.scenarios.start(config.scenario, config.seed, duration, speed)

    endpoint = (
        f"ssl:port={config.port}:interface={config.host}"
        f":privateKey={_escape(files.server_key)}:certKey={_escape(files.server_cert)}"
    )
    Server(
        application=app, endpoints=[endpoint], ready_callable=ready, verbosity=0
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
