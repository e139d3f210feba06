"""Every setting the service reads, from environment variables, in one table.

Configuration enters once, at the edge: `Settings.from_env()` parses and
validates the environment (over `settings.env` in the data directory, which
keeps settings that belong with that data, such as the demo's loopback
allowance); everything below takes plain arguments.
The README's configuration table is generated from `SETTINGS` (see
`ingest settings --markdown`), so the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ingest.errors import ConfigError


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _schedule(raw: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in raw.split(",") if part.strip())
    if not values or any(v < 0 for v in values):
        raise ValueError("must be a comma-separated list of seconds, e.g. 5,300,1800")
    return values


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return raw

    return parse


def _flag(raw: str) -> bool:
    if raw.lower() not in ("0", "1", "true", "false", "yes", "no", ""):
        raise ValueError("must be 1 or 0")
    return raw.lower() in ("1", "true", "yes")


def _optional(raw: str) -> str | None:
    return raw or None


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw else None


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, parser and meaning."""

    env: str
    field: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False  # also read from the file named by `<env>_FILE`; redacted when printed


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "INGEST_DATA_DIR",
        "data_dir",
        "./data",
        Path,
        "Directory for the embedded Redis, the SQLite database and other local state.",
    ),
    Setting(
        "REDIS_URL",
        "redis_url",
        "",
        _optional,
        "Redis server. Unset: an embedded Valkey server is started under the data directory "
        "and shared by every `ingest` command using that directory.",
    ),
    Setting(
        "DATABASE_URL",
        "database_url",
        "",
        _optional,
        "`sqlite:///path.db` or `postgresql://...`. Unset: `sqlite:///<data dir>/ingest.db`.",
    ),
    Setting(
        "INGEST_DATABASE_PASSWORD",
        "database_password",
        "",
        _optional,
        "PostgreSQL password, given to the driver apart from `DATABASE_URL`, so any character works.",
        secret=True,
    ),
    Setting(
        "INGEST_REDIS_PREFIX",
        "redis_prefix",
        "ingest:",
        str,
        "Prefix of the service's own Redis keys (dedup index, poller state).",
    ),
    Setting(
        "INGEST_QUEUE_PREFIX",
        "queue_prefix",
        "",
        str,
        "Prefix of the RQ queue names (`ingest`, `alerts`); lets several deployments share a Redis.",
    ),
    Setting(
        "INGEST_LOG_FORMAT",
        "log_format",
        "auto",
        _choice("auto", "json", "console"),
        "`json`, `console` (key=value), or `auto`: console on a terminal, JSON otherwise.",
    ),
    Setting(
        "INGEST_LOG_LEVEL",
        "log_level",
        "info",
        _choice("debug", "info", "warning", "error"),
        "Minimum log level.",
    ),
    Setting(
        "INGEST_POLL_INTERVAL",
        "poll_interval",
        "600",
        _positive_int,
        "Default seconds between two polls of a feed (a feed's own `--interval` overrides).",
    ),
    Setting(
        "INGEST_FETCH_TIMEOUT",
        "fetch_timeout",
        "20",
        _non_negative_float,
        "Seconds allowed for one feed fetch, connect and read included.",
    ),
    Setting(
        "INGEST_MAX_BODY_BYTES",
        "max_body_bytes",
        "10485760",
        _positive_int,
        "Largest feed or page body read, after decompression; larger bodies are cut off and refused.",
    ),
    Setting(
        "INGEST_MAX_ENTRIES",
        "max_entries",
        "1000",
        _positive_int,
        "Most entries taken from one fetch of a feed.",
    ),
    Setting(
        "INGEST_ALLOWED_NETWORKS",
        "allowed_networks",
        "",
        _networks,
        "Comma-separated CIDRs that are allowed although non-public (e.g. `127.0.0.0/8` for a demo). "
        "Feed and webhook URLs resolving to other loopback, private, link-local or reserved "
        "addresses are refused.",
    ),
    Setting(
        "INGEST_USER_AGENT",
        "user_agent",
        "news-ingest/0.1 (+https://example.invalid/contact)",
        str,
        "User-Agent sent with every fetch; put a contact URL in it.",
    ),
    Setting("INGEST_BATCH_SIZE", "batch_size", "50", _positive_int, "Entries per worker job."),
    Setting(
        "INGEST_DEDUP_WINDOW_DAYS",
        "dedup_window_days",
        "7",
        _positive_int,
        "Days during which a syndicated copy joins its original's story.",
    ),
    Setting(
        "INGEST_DEDUP_THRESHOLD",
        "dedup_threshold",
        "0.5",
        float,
        "Estimated share of the shorter body's word shingles found in the longer one (containment) "
        "above which two bodies are one story.",
    ),
    Setting(
        "INGEST_WEBHOOK_RETRY_SCHEDULE",
        "webhook_retry_schedule",
        "5,300,1800,7200,18000,36000,36000",
        _schedule,
        "Seconds to wait before each webhook retry; after the last one the alert is dead-lettered.",
    ),
    Setting(
        "INGEST_WEBHOOK_TIMEOUT",
        "webhook_timeout",
        "15",
        _non_negative_float,
        "Seconds one webhook attempt may take in all: connect, request, headers and body together, "
        "whatever the receiver does (at most 64 KiB of its answer are read).",
    ),
    Setting(
        "INGEST_SENDER_CONCURRENCY",
        "sender_concurrency",
        "256",
        _positive_int,
        "Webhook attempts one sender (`ingest send`) keeps in flight at once, in all.",
    ),
    Setting(
        "INGEST_SENDER_PER_RECEIVER",
        "sender_per_receiver",
        "8",
        _positive_int,
        "Webhook attempts one sender keeps in flight at once to one receiver origin (scheme, host, port).",
    ),
    Setting(
        "INGEST_SWEEP_INTERVAL",
        "sweep_interval",
        "30",
        _positive_int,
        "Seconds between two sweeps that queue again the batches whose job was lost (one sweep per "
        "period across all pollers).",
    ),
    Setting(
        "INGEST_RECOVERY_AFTER",
        "recovery_after",
        "60",
        _non_negative_float,
        "Seconds after a batch of entries was queued before the recovery sweeper queues it again "
        "from the database if its job is gone (Redis lost it), failed, or held by a dead worker.",
    ),
    Setting(
        "INGEST_BATCH_MAX_ATTEMPTS",
        "batch_max_attempts",
        "5",
        _positive_int,
        "Times a batch of entries is queued before it is given up (kept in the database as "
        "`failed`, with the reason).",
    ),
    Setting(
        "INGEST_JOB_TIMEOUT",
        "job_timeout",
        "600",
        _positive_int,
        "Seconds one batch job may run before RQ stops it (the batch is then queued again).",
    ),
    Setting(
        "INGEST_DISABLE_AFTER_DAYS",
        "disable_after_days",
        "3",
        _non_negative_float,
        "A subscription whose every delivery failed for this many days, with no success in between, "
        "is disabled (status `disabled`, with the reason); `0` never disables.",
    ),
    Setting(
        "INGEST_API_TOKEN",
        "api_token",
        "",
        _optional,
        "Bearer token required by the HTTP API (everything but health checks).",
        secret=True,
    ),
    Setting(
        "RQ_DASHBOARD_PASSWORD",
        "rq_dashboard_password",
        "",
        _optional,
        "Basic-auth password of rq-dashboard as the image starts it (`deploy/dashboard.py`).",
        secret=True,
    ),
    Setting(
        "INGEST_CLEAN_RULES",
        "clean_rules",
        "",
        _optional_path,
        "TOML file of site-specific cleaning rules, added to the bundled generic ones "
        "(format: `ingest/rules/default.toml`; rules may be scoped to domains).",
    ),
    Setting(
        "INGEST_API_MAX_BODY_BYTES",
        "api_max_body_bytes",
        "65536",
        _positive_int,
        "Largest request body the HTTP API reads; larger ones are refused with 413.",
    ),
    Setting(
        "INGEST_METRICS_PUBLIC",
        "metrics_public",
        "0",
        _flag,
        "`1`: `/metrics` answers without the API token (for a scraper on a private network).",
    ),
    Setting(
        "INGEST_SECRET_GRACE_SECONDS",
        "secret_grace_seconds",
        "86400",
        _positive_int,
        "After a webhook secret is rotated, seconds during which alerts are also signed "
        "with the previous secret.",
    ),
    Setting(
        "INGEST_MIN_POLL_INTERVAL",
        "min_poll_interval",
        "120",
        _positive_int,
        "Shortest seconds between two polls of a feed the adaptive scheduler chooses.",
    ),
    Setting(
        "INGEST_MAX_POLL_INTERVAL",
        "max_poll_interval",
        "86400",
        _positive_int,
        "Longest seconds between two polls (also caps Cache-Control, Expires, `<ttl>`, "
        "Retry-After and the error backoff).",
    ),
    Setting(
        "INGEST_FETCH_CONCURRENCY",
        "fetch_concurrency",
        "100",
        _positive_int,
        "Feeds one poller fetches at the same time, in all.",
    ),
    Setting(
        "INGEST_FETCH_PER_HOST",
        "fetch_per_host",
        "4",
        _positive_int,
        "Feeds fetched at the same time from one host by all pollers together (slots shared in "
        "Redis; each poller also keeps this many per process).",
    ),
    Setting(
        "INGEST_POLL_BATCH",
        "poll_batch",
        "200",
        _positive_int,
        "Feeds one poller holds claimed at once (leased for 2 x INGEST_FETCH_TIMEOUT + 5 s); it claims "
        "again, in one statement, when half are done. Bounds its memory and what a dead poller holds.",
    ),
    Setting(
        "INGEST_CONNECT_TIMEOUT",
        "connect_timeout",
        "10",
        _non_negative_float,
        "Seconds allowed to connect to a feed's server (within `INGEST_FETCH_TIMEOUT`).",
    ),
    Setting(
        "INGEST_READ_TIMEOUT",
        "read_timeout",
        "15",
        _non_negative_float,
        "Seconds a feed's server may stay silent while sending (within `INGEST_FETCH_TIMEOUT`).",
    ),
    Setting(
        "INGEST_CONTACT_URL",
        "contact_url",
        "",
        _optional,
        "Contact URL put into the default User-Agent, so feed owners can reach the operator.",
    ),
    Setting(
        "INGEST_PUBLIC_URL",
        "public_url",
        "",
        _optional,
        "Public base URL of the HTTP API (e.g. `https://ingest.example.com`). Set: feeds that "
        "advertise a WebSub hub are subscribed with callback `<url>/websub/<feed id>`; unset: no push.",
    ),
    Setting(
        "INGEST_WEBSUB_LEASE",
        "websub_lease",
        "864000",
        _positive_int,
        "Seconds of WebSub lease requested from hubs (renewed a day before it ends).",
    ),
    Setting(
        "INGEST_WEBSUB_POLL_INTERVAL",
        "websub_poll_interval",
        "21600",
        _positive_int,
        "Seconds between fallback polls of a feed whose WebSub subscription is active.",
    ),
    Setting(
        "INGEST_FULLTEXT_MIN_WORDS",
        "fulltext_min_words",
        "120",
        _positive_int,
        "Feeds added with `--fulltext`: an entry whose body has fewer words than this (a summary or "
        "excerpt) is replaced by the article extracted from its page.",
    ),
    Setting(
        "INGEST_SHORT_TEXT_MODELS",
        "short_text_models",
        "1",
        _flag,
        "`1`: entries with under 120 letters of title and text (headline-only) that the cheap "
        "detectors are less than 0.99 sure of are re-ranked by lingua's high-accuracy models "
        "(test word pairs 0.848 -> 0.888-0.890), loaded on demand (1-82 MB and 5-280 ms CPU per "
        "language, at most 16, loaded only while the worker stays under 440 MB). `0`: such texts keep "
        "lingua's low-accuracy ranking blended with py3langid's (0.2-0.5 ms, nothing loaded).",
    ),
    Setting(
        "INGEST_SHORT_TEXT_LOADS_PER_MINUTE",
        "short_text_loads_per_minute",
        "12",
        _non_negative_float,
        "With INGEST_SHORT_TEXT_MODELS=1: language model loads allowed per minute and worker, after "
        "a first 16. Beyond them a short text is re-ranked by the models already loaded, or keeps "
        "the cheap ranking: loading then takes 1-4 s of CPU a minute (0.1-0.3 s a load, eviction "
        "included, on the hosts measured).",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process."""

    data_dir: Path
    redis_url: str | None
    database_url: str | None
    redis_prefix: str
    queue_prefix: str
    log_format: str
    log_level: str
    poll_interval: int
    fetch_timeout: float
    max_body_bytes: int
    max_entries: int
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    user_agent: str
    batch_size: int
    dedup_window_days: int
    dedup_threshold: float
    webhook_retry_schedule: tuple[float, ...]
    webhook_timeout: float
    sweep_interval: int
    api_token: str | None
    clean_rules: Path | None = None
    min_poll_interval: int = 120
    max_poll_interval: int = 86400
    fetch_concurrency: int = 100
    fetch_per_host: int = 4
    poll_batch: int = 200
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    contact_url: str | None = None
    public_url: str | None = None
    websub_lease: int = 864000
    websub_poll_interval: int = 21600
    api_max_body_bytes: int = 65536
    metrics_public: bool = False
    secret_grace_seconds: int = 86400
    disable_after_days: float = 3.0
    recovery_after: float = 60.0
    batch_max_attempts: int = 5
    job_timeout: int = 600
    fulltext_min_words: int = 120
    short_text_models: bool = True
    short_text_loads_per_minute: float = 12.0
    sender_concurrency: int = 256
    sender_per_receiver: int = 8
    database_password: str | None = None
    rq_dashboard_password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse the environment over the data directory's settings file; a bad value raises
        ConfigError naming the variable."""
        given = os.environ if environ is None else environ
        data_dir = Path(given.get("INGEST_DATA_DIR", "./data"))
        env = {**read_settings_file(data_dir / SETTINGS_FILE), **given}
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = _raw_value(setting, env)
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env}={raw!r} is invalid: {exc}") from None
        return cls(**values)

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'ingest.db'}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and the demo use it)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Settings(**current)


ENV_NAMES = frozenset(s.env for s in SETTINGS) | {f"{s.env}_FILE" for s in SETTINGS if s.secret}
REDACTED = "<redacted>"  # how `ingest settings` prints a secret
PLACEHOLDER = re.compile(rf"change-?me|{REDACTED}", re.IGNORECASE)  # .env.example's values, or a redaction


def _raw_value(setting: Setting, env: Mapping[str, str]) -> str:
    """The variable's text; a secret may come from `<NAME>_FILE` and is never a placeholder."""
    path = env.get(f"{setting.env}_FILE") if setting.secret else None
    if path and env.get(setting.env):
        raise ConfigError(f"set {setting.env} or {setting.env}_FILE, not both")
    try:
        raw = Path(path).read_text(encoding="utf-8").rstrip("\r\n") if path else None
    except OSError as exc:
        raise ConfigError(f"{setting.env}_FILE={path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting.env}_FILE={path}: not UTF-8 text") from None
    raw = env.get(setting.env, setting.default) if raw is None else raw
    if setting.secret and PLACEHOLDER.match(raw):
        raise ConfigError(
            f"{setting.env} is a placeholder (from .env.example or `ingest settings`): set a real secret"
        )
    return raw


SETTINGS_FILE = "settings.env"  # in the data directory: settings that belong with its data (the demo's)
_SQLITE_PREFIX = "sqlite:///"


def read_settings_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines of a data directory's settings file (absent: none); the environment wins."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name.strip() not in ENV_NAMES:
            raise ConfigError(f"{path}: line {number}: expected NAME=value with a setting's name")
        values[name.strip()] = value.strip()
    return values


def write_setting(data_dir: Path, name: str, value: str) -> None:
    """Set one setting in the data directory's settings file, keeping the others."""
    path = data_dir / SETTINGS_FILE
    values = {**read_settings_file(path), name: value}
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")


def sqlite_path(database_url: str) -> Path:
    """The file of a `sqlite:///path` URL (`sqlite:////abs` for an absolute path)."""
    return Path(database_url[len(_SQLITE_PREFIX) :])


def settings_table() -> str:
    """The README's configuration table, in Markdown."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | `{s.default}` | {s.doc}{_secret_note(s)} |" for s in SETTINGS]
    return "\n".join(rows)


def _secret_note(setting: Setting) -> str:
    if not setting.secret:
        return ""
    return f" Secret: or read from the file named by `{setting.env}_FILE`; never printed."
