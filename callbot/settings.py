"""Callbot settings, read from the environment.

Nothing set gives the embedded default: SQLite (WAL) under ``var/``, the in-memory
channel layer, Celery tasks run in-process, and Graph URLs pointing at the built-in
emulator. ``DATABASE_URL`` switches to PostgreSQL, ``REDIS_URL`` to Redis for the
Celery broker and the channel layer, ``GRAPH_TENANT_ID`` to a real Teams tenant.
Every setting is named like its environment variable.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

import dj_database_url
from csp.constants import NONE, SELF

from callbot.runtime import redisretry


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_secret(name: str, default: str = "") -> str:
    """Read ``NAME`` or, when ``NAME_FILE`` is set, the file it names (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE: cannot read {path}: {exc}"
            ) from exc
    return os.environ.get(name, default)


def env_url(name: str, default: str) -> str:
    value = env_str(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, not {value!r}")
    return value


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CALLBOT_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Public, so refused outside the embedded default (see "Outside the embedded default").
DEVELOPMENT_SECRET_KEY = "callbot-embedded-default-not-for-production"  # noqa: S105
SECRET_KEY = env_secret("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = [
    h for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
PORT = env_int("PORT", 8000)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "callbot.calls",
    "callbot.ivr",
    "callbot.simulator",
    "callbot.runtime",
    "dashboard",
    "callbot.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "callbot.observability.logcontext.LogContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

# The Graph webhook's own chain (callbot/asgi.py, WebhookHandler): it has no
# session, user, form or page, and each middleware above costs it a thread hop.
WEBHOOK_MIDDLEWARE = [
    "callbot.runtime.webhookchain.InlineSecurityMiddleware",
    "callbot.observability.logcontext.LogContextMiddleware",
]

ROOT_URLCONF = "callbot.urls"
ASGI_APPLICATION = "callbot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
# Like every secret, also read from a file: DATABASE_URL_FILE (it holds a password).
DATABASE_URL = env_secret("DATABASE_URL")
if DATABASE_URL:
    # Connections are reused per thread (CONN_MAX_AGE), health-checked before a
    # request or task uses one again (CONN_HEALTH_CHECKS); the webhook applies
    # batches on long-lived threads that keep theirs (WEBHOOK_INGEST_THREADS),
    # since Django runs every other request in a thread made for it.
    # DATABASE_POOL_MAX_SIZE > 0 uses a psycopg_pool pool per process instead
    # (Django's OPTIONS["pool"]): fewer connections, but while PostgreSQL is down
    # a request waits DATABASE_POOL_TIMEOUT for one before failing, and the pool
    # reconnects with a backoff once it is back (docs/ingest.md).
    DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0)
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=0 if DATABASE_POOL_MAX_SIZE else 60
        )
    }
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must be a postgres:// URL")
    # Django's, with the health check's SELECT 1 replaced by a look at the
    # socket for an idle connection (callbot/runtime/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "callbot.runtime.postgresql"
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASE_POOL_MAX_SIZE:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            # A request waits this long for a free connection, then fails (503).
            "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
        }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            # Django's, with the process's writers queued in Python rather than
            # in SQLite's busy handler (callbot/runtime/sqlite/base.py).
            "ENGINE": "callbot.runtime.sqlite",
            "NAME": str(VAR_DIR / "callbot.sqlite3"),
            "OPTIONS": {
                # WAL lets readers (the dashboard) run beside the one writer;
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue
                # on busy_timeout instead of failing a lock upgrade mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Live-server tests run daphne in another process, which needs a file.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
    # The webhook inbox in a file of its own (callbot/calls/inboxrouter.py): the
    # webhook's store then does not wait for SQLite's one writer while the
    # applier holds it. `manage.py migrate` makes both files.
    DATABASES["inbox"] = {
        **DATABASES["default"],
        "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),
        "NAME": env_str(
            "WEBHOOK_INBOX_DATABASE", str(VAR_DIR / "callbot-inbox.sqlite3")
        ),
        "TEST": {"NAME": str(VAR_DIR / "test-inbox.sqlite3")},
    }
# Only where the inbox has a file of its own: with PostgreSQL no router runs on
# any query.
DATABASE_ROUTERS = (
    ["callbot.calls.inboxrouter.InboxRouter"] if "inbox" in DATABASES else []
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and channel layer ---------------------------------------
REDIS_URL = env_secret("REDIS_URL")
# channels_redis waits for a channel's next message with a blocking BZPOPMIN of
# RedisChannelLayer.brpop_timeout (5 s) and loops. redis-py 8 gives every connection
# a 5 s socket read timeout by default (None before), so on an idle channel the read
# gave up first, receive() raised TimeoutError and every idle websocket closed with
# 1011. The read timeout must outlast the blocking pop; it stays finite so a Redis
# that stops answering is still noticed.
CHANNEL_LAYER_REDIS_SOCKET_TIMEOUT = 15
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": CHANNEL_LAYER_REDIS_SOCKET_TIMEOUT,
                        "socket_connect_timeout": 5,
                        # A pooled connection Redis closed (a restart) is
                        # replaced and the command sent again, not raised.
                        **redisretry.async_options(),
                    }
                ],
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
else:
    # In memory, and safe for the in-process worker's threads to publish into.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "callbot.runtime.layers.InProcessChannelLayer"}
    }

# The cache holds the app token's roles, read by the worker and shared with the web
# processes (callbot/calls/app_permissions.py): Redis when there is one, else the
# process's memory (the embedded default runs the worker in-process).
CACHES: dict[str, dict[str, object]] = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "callbot",
            "OPTIONS": {
                "socket_timeout": 2,
                "socket_connect_timeout": 2,
                **redisretry.sync_options(),
            },
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# A worker killed mid-task must not lose the task: acknowledge only after it ran.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
# Celery's Django fixup closes the database connections around every task unless
# told to reuse them; a fresh PostgreSQL connection per action cost a fifth of the
# worker's time. Django's CONN_MAX_AGE and health checks still retire stale ones.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if REDIS_URL:
    # kombu's Redis transport, outliving Redis going away with messages in hand
    # (callbot/celery.py).
    CELERY_BROKER_TRANSPORT = "callbot.celery:RedisTransport"
# Redis redelivers an unacknowledged task (its worker died) after this many seconds.
# Kept short because actions are about live calls; repeated delivery is harmless
# (``perform`` claims each action once per lease).
# The worker looks for such orphans every CELERY_RESTORE_INTERVAL seconds (kombu
# would otherwise scan only every tenth sweep, about every 100 s).
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, float] = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 120),
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
if not REDIS_URL:
    # The in-process worker (``callbot.runtime.inprocess``) polls the memory broker.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.02
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How often beat sends again actions whose task message was lost (the broker was
# down, or Redis restarted and forgot its queues): such an action is sent again at
# most ACTION_REQUEUE_AFTER_SECONDS plus this interval after it was last touched.
ACTION_REQUEUE_SWEEP_SECONDS = env_int("ACTION_REQUEUE_SWEEP_SECONDS", 15)
# How often beat applies the alert rules (thresholds: AlertSettings in the admin):
# with the ringing threshold, within Teams' 15 s answer window (alertmodels).
ALERT_SWEEP_SECONDS = env_int("ALERT_SWEEP_SECONDS", 5)
# How often beat sends the worker heartbeat: whichever worker consumes the queue
# stamps its row; /healthz's detail, the Settings page and the ``worker_down`` alert
# read the newest (callbot/calls/workerhealth.py).
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10)
# How often the web processes apply the ``worker_down`` rule when /healthz is
# probed: it must hold when no worker runs beat's alert sweep.
WORKER_CHECK_SECONDS = env_int("WORKER_CHECK_SECONDS", 5)
# How often the worker reads the app token's roles (``read_app_roles``); pages
# offer a control that needs a permission only while the roles read hold it.
APP_ROLES_SECONDS = env_int("APP_ROLES_SECONDS", 300)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "keep-calls-alive": {
        "task": "callbot.calls.send_keep_alives",
        "schedule": 60.0,
    },
    "reconcile-silent-calls": {
        "task": "callbot.calls.reconcile_silent_calls",
        "schedule": 60.0,
    },
    "requeue-stale-actions": {
        "task": "callbot.calls.requeue_stale_actions",
        "schedule": float(ACTION_REQUEUE_SWEEP_SECONDS),
    },
    "join-due-meetings": {
        "task": "callbot.calls.join_due_meetings",
        "schedule": 10.0,
    },
    # Alerts whose rules depend on time (a call ringing too long): callbot/calls/alerts.py.
    "evaluate-alerts": {
        "task": "callbot.calls.evaluate_alerts",
        "schedule": float(ALERT_SWEEP_SECONDS),
    },
    # A worker's proof of life: a task through the same queue as the actions.
    "worker-heartbeat": {
        "task": "callbot.calls.worker_heartbeat",
        "schedule": float(WORKER_HEARTBEAT_SECONDS),
    },
    # IVR tone-collection timeouts and supervisors-step waits: a countdown is
    # ignored when tasks run eagerly, so a sweep enforces them (callbot/ivr).
    "ivr-sweep-timeouts": {"task": "callbot.ivr.sweep_timeouts", "schedule": 1.0},
    # Call policies that hand a ringing call to the supervisors: the fallback when
    # nobody decided within the policy's wait (at most 14 s, so every second).
    "ivr-sweep-handoffs": {"task": "callbot.ivr.sweep_handoffs", "schedule": 1.0},
    # Ringing calls whose policy task the broker refused (Redis away): decided
    # once it is back, inside Graph's 15 s of ringing.
    "ivr-decide-unsent-calls": {
        "task": "callbot.ivr.decide_unsent_calls",
        "schedule": 1.0,
    },
    # The app token's roles, for the controls that need a permission it lacks.
    "read-app-roles": {
        "task": "callbot.calls.read_app_roles",
        "schedule": float(APP_ROLES_SECONDS),
    },
}

# --- Audit trail (docs/audit.md) ------------------------------------------------------

# The Ed25519 key that signs the audit chain's checkpoints: PEM or 64 hex digits
# (or AUDIT_SIGNING_KEY_FILE). Unset on the embedded default, one is generated at
# AUDIT_SIGNING_KEY_PATH on first use; elsewhere checkpoints need it set.
AUDIT_SIGNING_KEY = env_secret("AUDIT_SIGNING_KEY")
AUDIT_SIGNING_KEY_PATH = Path(
    env_str("AUDIT_SIGNING_KEY_PATH", str(VAR_DIR / "audit-signing-key.pem"))
)
AUDIT_SIGNING_KEY_GENERATE = not DATABASE_URL
# The public keys of signing keys used before this one (PEM blocks one after the
# other, or AUDIT_PREVIOUS_PUBLIC_KEYS_FILE): checkpoints they signed still verify.
AUDIT_PREVIOUS_PUBLIC_KEYS = env_secret("AUDIT_PREVIOUS_PUBLIC_KEYS")
# A signed checkpoint seals the chain's head this often (when it moved).
AUDIT_CHECKPOINT_MINUTES = env_int("AUDIT_CHECKPOINT_MINUTES", 15)
# Calls (with events, participants, actions, recordings) older than this many days
# are purged daily; 0 keeps them forever. AUDIT_RETENTION_DAYS does the same for
# the audit trail's own entries (sealed by a checkpoint first).
CALL_RETENTION_DAYS = env_int("CALL_RETENTION_DAYS", 0)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0)
if min(CALL_RETENTION_DAYS, AUDIT_RETENTION_DAYS, AUDIT_CHECKPOINT_MINUTES - 1) < 0:
    raise ImproperlyConfigured(
        "CALL_RETENTION_DAYS and AUDIT_RETENTION_DAYS must be 0 or more, "
        "AUDIT_CHECKPOINT_MINUTES 1 or more"
    )
CELERY_BEAT_SCHEDULE["seal-audit-chain"] = {
    "task": "callbot.calls.seal_audit_chain",
    "schedule": float(AUDIT_CHECKPOINT_MINUTES * 60),
}
CELERY_BEAT_SCHEDULE["apply-retention"] = {
    "task": "callbot.calls.apply_retention",
    "schedule": 24 * 3600.0,
}

# --- Call control -------------------------------------------------------------------

# A worker holds a claimed action this long (longer than one Graph request with
# its retries) before another may take it over.
ACTION_LEASE_SECONDS = env_int("ACTION_LEASE_SECONDS", 60)
ACTION_MAX_ATTEMPTS = env_int("ACTION_MAX_ATTEMPTS", 6)
ACTION_REQUEUE_AFTER_SECONDS = env_int("ACTION_REQUEUE_AFTER_SECONDS", 30)
# The contract ends a call after 45 minutes without keepAlive; send every 15.
KEEP_ALIVE_INTERVAL_SECONDS = env_int("KEEP_ALIVE_INTERVAL_SECONDS", 15 * 60)
# A live call silent this long is checked with Graph (and closed if Graph has
# forgotten it): a lost ending leaves a ghost on the board at most this long.
RECONCILE_SILENCE_SECONDS = env_int("RECONCILE_SILENCE_SECONDS", 120)
# A scheduled join more than this late (Callbot was down) is skipped.
MEETING_JOIN_GRACE_SECONDS = env_int("MEETING_JOIN_GRACE_SECONDS", 30 * 60)

# --- The live socket (dashboard/consumers.py) ------------------------------------------
# How often each web process reads the board's KPIs and open alerts and pushes
# what changed to its board sockets (dashboard/pulse.py).
BOARD_PULSE_SECONDS = env_int("BOARD_PULSE_SECONDS", 5)
# Actions a person may ask for over the socket: a bucket of LIVE_ACTION_BURST that
# refills at LIVE_ACTION_RATE a minute, per user and per socket ("mute everyone" is
# one). A supervisor clicking as fast as they can stays inside it; a script does not.
LIVE_ACTION_RATE = env_int("LIVE_ACTION_RATE", 120)
LIVE_ACTION_BURST = env_int("LIVE_ACTION_BURST", 30)
if LIVE_ACTION_RATE < 1 or LIVE_ACTION_BURST < 1:
    raise ImproperlyConfigured(
        "LIVE_ACTION_RATE and LIVE_ACTION_BURST must be 1 or more"
    )

# --- Microsoft Graph ----------------------------------------------------------------
# With no tenant configured, Callbot talks to its built-in emulator (callbot/simulator)
# at EMULATOR_URL; with GRAPH_TENANT_ID set, the defaults are Microsoft's.
EMULATOR_URL = env_url("EMULATOR_URL", "https://127.0.0.1:8443")
EMULATOR_TENANT_ID = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
EMULATOR_CLIENT_ID = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
EMULATOR_CLIENT_SECRET = "emulator-client-secret"  # noqa: S105 (a public test value)

GRAPH_TENANT_ID = env_str("GRAPH_TENANT_ID")
USE_EMULATOR = not GRAPH_TENANT_ID
if USE_EMULATOR:
    GRAPH_TENANT_ID = EMULATOR_TENANT_ID
    GRAPH_CLIENT_ID = env_str("GRAPH_CLIENT_ID", EMULATOR_CLIENT_ID)
    GRAPH_CLIENT_SECRET = env_secret("GRAPH_CLIENT_SECRET", EMULATOR_CLIENT_SECRET)
    GRAPH_BASE_URL = env_url("GRAPH_BASE_URL", f"{EMULATOR_URL}/v1.0")
    GRAPH_AUTHORITY = env_url("GRAPH_AUTHORITY", f"{EMULATOR_URL}/{GRAPH_TENANT_ID}")
    GRAPH_NOTIFICATION_OPENID_URL = env_url(
        "GRAPH_NOTIFICATION_OPENID_URL",
        f"{EMULATOR_URL}/v1/.well-known/OpenIdConfiguration",
    )
    # The emulator serves TLS with a certificate from the local CA it writes here.
    GRAPH_CA_BUNDLE = env_str("GRAPH_CA_BUNDLE", str(VAR_DIR / "emulator" / "ca.pem"))
else:
    GRAPH_CLIENT_ID = env_str("GRAPH_CLIENT_ID")
    GRAPH_CLIENT_SECRET = env_secret("GRAPH_CLIENT_SECRET")
    if not GRAPH_CLIENT_ID or not GRAPH_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "GRAPH_TENANT_ID is set, so GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET must be too"
        )
    GRAPH_BASE_URL = env_url("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0")
    GRAPH_AUTHORITY = env_url(
        "GRAPH_AUTHORITY", f"https://login.microsoftonline.com/{GRAPH_TENANT_ID}"
    )
    GRAPH_NOTIFICATION_OPENID_URL = env_url(
        "GRAPH_NOTIFICATION_OPENID_URL",
        "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration",
    )
    GRAPH_CA_BUNDLE = env_str("GRAPH_CA_BUNDLE")

# The application instance (resource account) linked to the bot: the ``source`` of
# calls it places to phone numbers (contract §6.2). Unset: Callbot refuses such calls.
EMULATOR_APPLICATION_INSTANCE_ID = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
GRAPH_APPLICATION_INSTANCE_ID = env_str(
    "GRAPH_APPLICATION_INSTANCE_ID",
    EMULATOR_APPLICATION_INSTANCE_ID if USE_EMULATOR else "",
).strip()
if GRAPH_APPLICATION_INSTANCE_ID and not re.fullmatch(
    r"[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}", GRAPH_APPLICATION_INSTANCE_ID
):
    raise ImproperlyConfigured(
        "GRAPH_APPLICATION_INSTANCE_ID must be the application instance's object id "
        "(a GUID)"
    )

GRAPH_SCOPE = env_str("GRAPH_SCOPE", "https://graph.microsoft.com/.default")
GRAPH_NOTIFICATION_ISSUERS = [
    i
    for i in env_str(
        "GRAPH_NOTIFICATION_ISSUERS",
        "https://api.botframework.com,https://graph.microsoft.com",
    ).split(",")
    if i
]
GRAPH_NOTIFICATION_LEEWAY_SECONDS = env_int("GRAPH_NOTIFICATION_LEEWAY_SECONDS", 300)
# The largest notification batch the webhook reads (413 beyond). A batch carrying
# the full rosters of a few large meetings passes DATA_UPLOAD_MAX_MEMORY_SIZE's
# 2.5 MB, which still guards every other view.
# Ask Graph for delta rosters (callOptions.isDeltaRosterEnabled) when answering,
# joining a meeting and placing a group call: a change in a large meeting then
# carries only the people who changed (contract §2.6; the full-roster path stays).
GRAPH_DELTA_ROSTER = env_bool("GRAPH_DELTA_ROSTER", True)
WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 25 * 1024 * 1024)
# Long-lived threads the webhook applies batches on, keeping their database
# connections, in arrival order per call (callbot/calls/ingestthreads.py): two on
# SQLite, which take turns on its one writer in the process; four on PostgreSQL.
# 0: where Django runs views.
WEBHOOK_INGEST_THREADS = env_int("WEBHOOK_INGEST_THREADS", 4 if DATABASE_URL else 2)
# When the webhook applies a batch (docs/ingest.md, "Deferred apply"): "inline"
# applies it before answering 202; "deferred" stores the verified batch as one
# row (InboxBatch) and answers, and one applier at a time (per database) applies
# the stored batches in arrival order, off the request (callbot/calls/inbox.py).
# Deferred by default: the answer takes one INSERT, the applier applies what
# waits in groups (bench/README.md): with PostgreSQL and Redis in a process of
# its own (147 batches/s accepted instead of 55); on the embedded default on a
# thread that takes its turn beside the requests (callbot/calls/arrivals.py;
# server time p50 2-3 ms instead of 6, about 1.5x the batches). Inline with
# PostgreSQL but no Redis, whose applier could only be a thread.
WEBHOOK_APPLY = env_str(
    "WEBHOOK_APPLY", "inline" if DATABASE_URL and not REDIS_URL else "deferred"
)
if WEBHOOK_APPLY not in ("inline", "deferred"):
    raise ImproperlyConfigured('WEBHOOK_APPLY must be "inline" or "deferred"')
# How often a stored batch nobody woke an applier for (its web process died
# between storing and applying) is looked for: by each web process's applier
# and by beat's apply-webhook-inbox.
WEBHOOK_INBOX_SWEEP_SECONDS = env_int("WEBHOOK_INBOX_SWEEP_SECONDS", 5)
# Stored batches waiting behind one another are applied this many at a time, in
# one transaction and one set of statements (ingest.apply_deliveries): the
# applier catches up under load. On SQLite a store waits for at most one group.
WEBHOOK_INBOX_GROUP = env_int("WEBHOOK_INBOX_GROUP", 20)
# An applier thread (WEBHOOK_INBOX_APPLIER "thread") lets a stream of webhook
# requests go first, applying between them, and a group at least this often
# (applying holds the interpreter lock against them; callbot/calls/arrivals.py).
WEBHOOK_INBOX_YIELD_MS = env_int("WEBHOOK_INBOX_YIELD_MS", 100)
# Where a web process applies its stored batches: "process", a child process
# it wakes through a pipe (applying is CPU-bound and would hold the interpreter
# lock against the requests; the default with PostgreSQL and Redis), or
# "thread", one of its own threads (SQLite's: its one writer would make the
# request's store sleep in the busy handler behind another process's
# transactions; bench/README.md). A child process reaches the pages and the
# workers only through Redis: without it the channel layer and the broker live
# in the web process.
WEBHOOK_INBOX_APPLIER = env_str(
    "WEBHOOK_INBOX_APPLIER", "process" if DATABASE_URL and REDIS_URL else "thread"
)
if WEBHOOK_INBOX_APPLIER not in ("process", "thread"):
    raise ImproperlyConfigured('WEBHOOK_INBOX_APPLIER must be "process" or "thread"')
# The applier process's niceness (os.nice, 0-19). Applying costs two to three
# times the CPU of answering per batch; niced, the applier lets the web
# process's answers go first for a core during a burst and catches up from the
# inbox after it. Off by default: on a machine shared with other work a niced
# applier also yields to everything else there and fell far behind (4-9
# against 15-26 batches/s applied at nice 10, load 9-11, bench/README.md).
WEBHOOK_INBOX_APPLIER_NICE = env_int("WEBHOOK_INBOX_APPLIER_NICE", 0)
if not 0 <= WEBHOOK_INBOX_APPLIER_NICE <= 19:
    raise ImproperlyConfigured("WEBHOOK_INBOX_APPLIER_NICE must be 0-19")
if WEBHOOK_INBOX_APPLIER == "process" and not REDIS_URL:
    raise ImproperlyConfigured(
        'WEBHOOK_INBOX_APPLIER="process" needs REDIS_URL (live deltas and tasks '
        "leave the applier process through Redis)"
    )
# Beat's sweep: stored webhook batches left unapplied (deferred mode; one query otherwise).
CELERY_BEAT_SCHEDULE["apply-webhook-inbox"] = {
    "task": "callbot.calls.apply_webhook_inbox",
    "schedule": float(WEBHOOK_INBOX_SWEEP_SECONDS),
}
GRAPH_TIMEOUT_SECONDS = env_int("GRAPH_TIMEOUT_SECONDS", 10)
GRAPH_RETRY_BUDGET_SECONDS = env_int("GRAPH_RETRY_BUDGET_SECONDS", 30)
BOT_PUBLIC_URL = env_url("BOT_PUBLIC_URL", f"http://127.0.0.1:{PORT}")
BOT_DISPLAY_NAME = env_str("BOT_DISPLAY_NAME", "Callbot")
# The user who organises online meetings the bot creates (contract §10.1).
ONLINE_MEETING_ORGANIZER_ID = env_str(
    "ONLINE_MEETING_ORGANIZER_ID", "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"
)

# --- Outside the embedded default --------------------------------------------------------
# PostgreSQL, Redis or a real tenant means a deployment that others reach, where the
# public development key would let anyone forge sessions, CSRF tokens and password
# resets. DEBUG says nothing here: it is off on the embedded default too.
EMBEDDED_DEFAULT = not DATABASE_URL and not REDIS_URL and USE_EMULATOR
if not EMBEDDED_DEFAULT and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DATABASE_URL, REDIS_URL or GRAPH_TENANT_ID is set, so Callbot will not start "
        "with the public development key: set SECRET_KEY (or SECRET_KEY_FILE, a file "
        "holding it) to a long random value of your own, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`"
    )

# /healthz shows which backend failed (host and port included) only to admins and to
# callers with ``Authorization: Bearer <HEALTHZ_TOKEN>``; unset, no token is accepted.
HEALTHZ_TOKEN = env_secret("HEALTHZ_TOKEN")

# --- Metrics (callbot/observability, docs/deploy.md) -------------------------------------
# /metrics answers callers with ``Authorization: Bearer <METRICS_TOKEN>`` (or
# METRICS_TOKEN_FILE); unset, only loopback callers on the embedded default.
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# A separate Celery worker serves its own metrics on this port (0: not at all).
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)

# --- Call policy and IVR (callbot/ivr) --------------------------------------------------
# The demo flow's "0" queues the caller for the supervisors, then after a minute
# transfers to this Azure AD user, the operator. The default is a made-up
# user the emulator accepts; set a real object id with a real tenant.
IVR_OPERATOR_USER_ID = env_str(
    "IVR_OPERATOR_USER_ID", "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"
)
IVR_OPERATOR_DISPLAY_NAME = env_str("IVR_OPERATOR_DISPLAY_NAME", "Operator")
# A ringing call no policy task decided this many seconds after it arrived is
# taken as one whose task the broker lost (callbot/ivr/unsent.py): beat's
# decide_unsent_calls applies the policy to it, well inside Graph's 15 s.
IVR_POLICY_LOST_AFTER_SECONDS = env_int("IVR_POLICY_LOST_AFTER_SECONDS", 3)
# Uploaded prompts; Graph fetches them from BOT_PUBLIC_URL/ivr/prompts/<name>.wav.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

# --- Sign in with Microsoft (dashboard/microsoft.py, docs/deploy.md) ---------------------
# Entra ID's authorization-code flow with PKCE for people of the bot's own tenant
# (GRAPH_TENANT_ID). On the embedded default the emulator plays Entra ID and it is
# on; with a real tenant, turn it on once the app registration has the redirect URI
# https://<host>/accounts/microsoft/callback. Local accounts keep working.
ENTRA_SIGNIN_ENABLED = env_bool("ENTRA_SIGNIN_ENABLED", USE_EMULATOR)
ENTRA_SIGNIN_CLIENT_ID = env_str("ENTRA_SIGNIN_CLIENT_ID", GRAPH_CLIENT_ID)
ENTRA_SIGNIN_CLIENT_SECRET = env_secret(
    "ENTRA_SIGNIN_CLIENT_SECRET", GRAPH_CLIENT_SECRET
)


def _role_map(raw: str) -> dict[str, str]:
    """``Callbot.Admin=admin,<group object id>=auditor``: app role values or group
    ids of the id_token to Callbot roles."""
    mapping: dict[str, str] = {}
    for item in raw.split(","):
        claim, _, role = item.strip().partition("=")
        if not item.strip():
            continue
        if not claim or role.strip().lower() not in {"admin", "supervisor", "auditor"}:
            raise ImproperlyConfigured(
                "ENTRA_ROLE_MAP takes claim=role pairs, comma-separated, with the "
                f"roles admin, supervisor and auditor; not {item!r}"
            )
        mapping[claim.strip()] = role.strip().lower()
    return mapping


# The emulator's demo tenant also has the group "Callbot auditors" (its object id).
ENTRA_ROLE_MAP = _role_map(
    env_str(
        "ENTRA_ROLE_MAP",
        "Callbot.Admin=admin,Callbot.Supervisor=supervisor,Callbot.Auditor=auditor"
        + (",5b7c2d1e-9a4f-4c3b-8e6d-1f0a2b3c4d5e=auditor" if USE_EMULATOR else ""),
    )
)

# --- Sign-in throttling (django-axes) ----------------------------------------------------
# Failed sign-ins are counted per account and per client address; reaching the limit
# on either locks it for the cool-off (each further attempt starts the cool-off
# again). The lock-out page and the audit entry are dashboard/signin.py's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured(
        "AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be at least 1"
    )
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)


def _axes_lockout_parameters(raw: str) -> list[str | list[str]]:
    """``username,ip_address`` counts each alone; ``username+ip_address`` the pair."""
    known = {"username", "ip_address", "user_agent"}
    parameters: list[str | list[str]] = []
    for item in raw.split(","):
        names = [name.strip() for name in item.split("+") if name.strip()]
        if not names:
            continue
        if not set(names) <= known:
            raise ImproperlyConfigured(
                "AXES_LOCKOUT_PARAMETERS takes username, ip_address and user_agent, "
                f"comma-separated (joined with + to count a combination), not {item!r}"
            )
        parameters.append(names[0] if len(names) == 1 else names)
    if not parameters:
        raise ImproperlyConfigured("AXES_LOCKOUT_PARAMETERS must name at least one")
    return parameters


AXES_LOCKOUT_PARAMETERS = _axes_lockout_parameters(
    env_str("AXES_LOCKOUT_PARAMETERS", "username,ip_address")
)
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "dashboard.signin.locked_out_response"

# --- REST API (docs/api.md) ------------------------------------------------------------
# Requests a token (or a signed-in browser) may make, per minute, across every endpoint;
# over it the API answers 429 with Retry-After. Counted in API_THROTTLE_CACHE: Redis
# when REDIS_URL is set (shared by every web process), else this process's memory.
API_RATE_PER_MINUTE = env_int("API_RATE_PER_MINUTE", 120)
API_ANON_RATE_PER_MINUTE = env_int("API_ANON_RATE_PER_MINUTE", 30)
if min(API_RATE_PER_MINUTE, API_ANON_RATE_PER_MINUTE) < 1:
    raise ImproperlyConfigured(
        "API_RATE_PER_MINUTE and API_ANON_RATE_PER_MINUTE must be at least 1"
    )
API_THROTTLE_CACHE = "api-throttle"
# Beside the default cache (the app token's roles, above), not in place of it.
CACHES[API_THROTTLE_CACHE] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "callbot-api",
        "OPTIONS": redisretry.sync_options(),
    }
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "callbot-api-throttle",
    }
)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "callbot.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["callbot.api.permissions.CanView"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "callbot.api.renderers.StrictBrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["callbot.api.throttling.TokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "callbot.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "callbot.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Callbot API",
    "DESCRIPTION": (
        "Calls, actions, meetings, recordings, the audit trail and alerts of a "
        "Callbot installation. Authenticate with `Authorization: Token <key>` "
        "(`manage.py api_token <user>`) or a signed-in browser session."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Outbound webhooks (docs/api.md) ------------------------------------------------------
# Targets resolving to private, loopback, link-local or otherwise non-public addresses
# are refused unless this is on (a lab, the emulator's tests).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
# A failed delivery is tried again after BACKOFF, 2x, 4x ... seconds (at most a day
# apart), WEBHOOK_MAX_ATTEMPTS attempts in all.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_BACKOFF_SECONDS = env_int("WEBHOOK_BACKOFF_SECONDS", 30)
# After an endpoint's secret is rotated (admin action), the old one signs beside the
# new one for this long, so the receiver can move to the new one without a gap.
WEBHOOK_SECRET_OVERLAP_HOURS = env_int("WEBHOOK_SECRET_OVERLAP_HOURS", 24)
if min(WEBHOOK_TIMEOUT_SECONDS, WEBHOOK_MAX_ATTEMPTS, WEBHOOK_BACKOFF_SECONDS) < 1:
    raise ImproperlyConfigured(
        "WEBHOOK_TIMEOUT_SECONDS, WEBHOOK_MAX_ATTEMPTS and WEBHOOK_BACKOFF_SECONDS "
        "must be at least 1"
    )
# Deliveries whose retry is due are sent by this sweep too (a countdown is ignored
# when tasks run eagerly, and a lost message must not lose a delivery).
CELERY_BEAT_SCHEDULE["send-due-webhooks"] = {
    "task": "callbot.api.send_due_webhooks",
    "schedule": 30.0,
}

# --- Content-Security-Policy (django-csp) ---------------------------------------------
# Pages load only their own files: no inline script, style or event handler (the
# templates hold none; scripts are ES modules under static/), no plugins, no framing.
# connect-src 'self' covers the page's own ws:// and wss:// origin (CSP Level 3).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "media-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- The rest -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise warns on every start when its root is missing.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- HTTPS ----------------------------------------------------------------------------
# All off by default (the embedded default serves plain HTTP on loopback); behind a
# TLS-terminating proxy set SECURE_PROXY_SSL_HEADER so Django knows which requests
# came in over HTTPS, then the redirect, HSTS and secure cookies.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe over plain HTTP and must get the status, not a redirect.
# Prometheus scrapes each web process directly, inside the network, over HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("SECURE_HSTS_SECONDS must be 0 or more")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)


def _proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto`` -> ``("HTTP_X_FORWARDED_PROTO", "https")``."""
    name = name.strip()
    if not name:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER must be a header name such as "
            f"X-Forwarded-Proto, not {name!r}"
        )
    return ("HTTP_" + name.upper().replace("-", "_"), "https")


# Trust this header only when the proxy always sets it (clients cannot pass it).
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER"))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)

# --- Logs and error reports (docs/observability.md) ------------------------------------
# JSON lines (one object a line) outside the embedded default, for a log pipeline;
# readable lines on it. Every line carries the call id, Graph's client-request-id and
# the user when the work is about a call (callbot/observability/logcontext.py).
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if EMBEDDED_DEFAULT else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
# A Celery worker keeps this configuration instead of replacing the root logger's.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "callbot.observability.logcontext.ContextFilter"},
        "refusal": {"()": "callbot.observability.logcontext.RefusalFilter"},
    },
    "formatters": {
        "plain": {
            "()": "callbot.observability.logcontext.ReadableFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s "
            "%(call_id)s %(client_request_id)s %(user)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
            },
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        # A 403 (a role opening a page it may not see) is one line, no traceback.
        "django.request": {"filters": ["refusal"]},
        # One line per task and per beat tick drowns what matters; the outcome of
        # every action is on its row and in the dashboard.
        "celery.app.trace": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
        # django-axes says INFO on every start and sign-in; failures and lock-outs
        # are WARNING and stay.
        "axes": {"level": "WARNING"},
    },
}

# Error reports to Sentry (or a compatible service) when a DSN is given; off
# otherwise. No personal data is sent (send_default_pii off).
SENTRY_DSN = env_secret("SENTRY_DSN")
if SENTRY_DSN:
    from callbot.observability.errors import init_sentry

    init_sentry(
        SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=float(env_str("SENTRY_TRACES_SAMPLE_RATE", "0") or 0),
    )
