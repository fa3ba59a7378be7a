"""Settings, from TAKEBACK_* environment variables; one object passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, PrivateAttr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAKEBACK_", extra="ignore")

    #: Where the on-device "already hashed" cache lives (hashes, no file names).
    cache_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("takeback")))
    #: Hashing worker processes; 0 hashes in the calling process.
    workers: int | None = Field(default=None, ge=0)
    #: Images above this many pixels are refused (decompression bombs).
    max_image_pixels: int = Field(default=250_000_000, gt=0)

    # --- match service -------------------------------------------------------------------------------------------
    #: Server state (the SQLite database, index snapshots) lives here unless database_url says otherwise.
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("takeback")))
    #: SQLAlchemy URL; empty means SQLite at data_dir/takeback.sqlite3.  PostgreSQL: postgresql+psycopg://…
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    #: PDQ match threshold (bits of 256) used when a query does not give one; queries may not exceed max_threshold.
    pdq_threshold: int = Field(default=31, ge=0, le=256)
    max_threshold: int = Field(default=63, ge=0, le=256)
    #: vPDQ video rule (vpdq's defaults): frame distance, frame quality floor, share of query / bank frames matched.
    vpdq_threshold: int = Field(default=31, ge=0, le=256)
    vpdq_quality: int = Field(default=50, ge=0, le=100)
    vpdq_query_match_pct: float = Field(default=80.0, ge=0, le=100)
    vpdq_compared_match_pct: float = Field(default=0.0, ge=0, le=100)
    #: Largest match batch and largest signal upload per request.
    max_match_batch: int = Field(default=1000, gt=0)
    max_upload_signals: int = Field(default=100_000, gt=0)
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    #: Default per-client request budget (requests per minute) when a client is created without one.
    default_rate_limit: int = Field(default=6000, gt=0)
    #: Webhook URLs on private, loopback, link-local or metadata addresses are refused unless this is set.
    allow_private_webhooks: bool = False
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=6, gt=0)
    webhook_backoff_s: float = Field(default=1.0, ge=0)
    #: How often each server process picks up bank changes other processes committed to the shared database
    #: (its own changes show at once); 0 turns the background sync off.
    index_sync_interval_s: float = Field(default=1.0, ge=0)

    # --- dashboard (web/dashboard) ------------------------------------------------------------------------------
    #: How long a sign-in lasts.
    ui_session_hours: float = Field(default=12.0, gt=0)
    #: Mark cookies Secure even when the request arrived over plain HTTP (behind a TLS-terminating proxy).
    ui_cookie_secure: bool = False
    #: Failed sign-ins allowed per account and per client address within ui_login_window_minutes.
    ui_login_max_failures: int = Field(default=5, gt=0)
    ui_login_max_failures_per_ip: int = Field(default=30, gt=0)
    ui_login_window_minutes: float = Field(default=15.0, gt=0)

    #: Platforms: offer the public TAKE IT DOWN request form at /takedown-request (the inbox is at /app/operator/).
    inbox_public_form: bool = False
    #: The platform's name as requesters see it on the form and in the acknowledgement e-mail.
    platform_name: str = "this service"
    #: Requests accepted per client address per hour (floods are refused, not stored).
    inbox_max_per_ip_per_hour: int = Field(default=20, gt=0)

    # --- outgoing mail (takedown notices, petition verification) -----------------------------------------------------
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    #: The From address of every message; its domain also names the Message-IDs.
    smtp_from: str = "takeback@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    #: STARTTLS after connecting (port 587), or TLS from the first byte (port 465).
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_s: float = Field(default=20.0, gt=0)

    # --- takedown (takedown/): deadlines, RDAP, platform directory -------------------------------------------------
    #: Follow-up deadline in days for DMCA notices (the law says "expeditiously", no number) and for DSA, search
    #: delisting and abuse reports ("timely"); TAKE IT DOWN (48 h) and GDPR (one month) are fixed by law.
    takedown_dmca_days: float = Field(default=7.0, gt=0)
    takedown_followup_days: float = Field(default=14.0, gt=0)
    #: RDAP bootstrap base URL (IANA's dns.json/ipv4.json/ipv6.json live under it), request timeout, cache lifetime.
    rdap_bootstrap_url: str = "https://data.iana.org/rdap/"
    rdap_timeout_s: float = Field(default=10.0, gt=0)
    rdap_cache_ttl_s: float = Field(default=86_400.0, ge=0)
    #: An editable platform directory (JSON, the shape of takedown/data/platforms.json) merged over the shipped one.
    takedown_platforms_file: Path | None = None

    # --- takedown follow-through (jobs `notices.*`), inbound sweep, SMTP trust (docs/takedown.md, docs/jobs.md) ----
    #: When a notice's deadline passes, the jobs send the same party one reminder citing the notice and its deadline.
    #: On by default: it goes to whoever already has the notice and asserts nothing new.
    takedown_auto_reminders: bool = True
    #: How long the party has after the reminder before the next step (escalation).
    takedown_reminder_grace_days: float = Field(default=3.0, gt=0)
    #: Carry out escalations (the next party's notice, drafted from her earlier statements, sent) instead of only
    #: proposing them to her.  Off by default: it tells someone new about her, under a basis she may not have chosen.
    takedown_auto_escalate: bool = False
    #: Re-check the URLs of notices waiting for removal this often; removed ones (to catch re-uploads) this often.
    takedown_recheck_hours: float = Field(default=6.0, gt=0)
    takedown_recheck_removed_hours: float = Field(default=24.0, gt=0)
    #: Inbound mode: the bank where the platform registers its uploads' hashes (each signal's note: the upload's
    #: reference).  Accepting a TAKE IT DOWN request sweeps it for copies; empty turns the sweep off.
    takedown_uploads_bank: str = "uploads"
    #: A CA certificate (PEM) to trust for the SMTP server's TLS instead of the system's: a private relay.
    smtp_tls_ca_file: Path | None = None

    # --- discover fetcher (discover/fetch.py; every crawl, re-check and feed request goes through it) --------------
    #: Largest decompressed body kept per request; whole-request deadline (slow bodies included); connect deadline.
    fetch_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    fetch_timeout_s: float = Field(default=20.0, gt=0)
    fetch_connect_timeout_s: float = Field(default=5.0, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0)
    #: Politeness per host: requests in flight at once and the pause between two requests.
    fetch_per_host_concurrency: int = Field(default=2, ge=1)
    fetch_per_host_delay_s: float = Field(default=0.0, ge=0)
    fetch_user_agent: str = "takeback-discover/0.1 (+https://github.com/takeback)"
    fetch_respect_robots: bool = True
    #: Hashing worker processes per scan (takeback scan, the API and dashboard scans, scheduled re-scans): both
    #: cores hash while the event loop fetches; 0 hashes in threads instead (one core, no start-up cost).
    scan_hash_processes: int = Field(default=2, ge=0, le=64)
    #: Lowest name-match score (0-100) reported by scans and the domain watch (discover/names.py: the rule and scores).
    name_match_threshold: int = Field(default=80, ge=0, le=100)

    # --- petition (docs/petition.md) ------------------------------------------------------------------------------
    #: HMAC key for verification links, proof-of-work challenges and export summaries; empty: one is generated on
    #: first use and kept in the database (so every server process on that database shares it).
    petition_secret: str = ""
    #: Proof-of-work difficulty: the browser tries on average half this many SHA-256 hashes (ALTCHA maxnumber).
    petition_pow_max_number: int = Field(default=50_000, ge=1, le=10_000_000)
    petition_pow_expiry_s: int = Field(default=900, gt=0)
    #: Signatures per minute from one IP address and from one network (/24 IPv4, /48 IPv6); 0 turns a limit off.
    petition_ip_limit_per_minute: int = Field(default=20, ge=0)
    petition_network_limit_per_minute: int = Field(default=200, ge=0)
    #: Review flags: more than this many signatures in one hour from one network / one postcode.
    petition_flag_network_per_hour: int = Field(default=100, gt=0)
    petition_flag_postcode_per_hour: int = Field(default=500, gt=0)
    #: Largest group commit of the signature intake (signatures per transaction).
    petition_batch_max: int = Field(default=1000, gt=0)
    #: Send verification e-mails (off only for load tests); links in them start with petition_public_url (empty:
    #: the address the signer used).
    petition_send_mail: bool = True
    petition_public_url: str = ""
    petition_token_max_age_days: int = Field(default=30, gt=0)

    # --- background jobs (docs/jobs.md) -------------------------------------------------------------------------------
    #: "local": jobs run inside `takeback serve` (SQLite or PostgreSQL, nothing else to run); "procrastinate": jobs
    #: queue in PostgreSQL and `takeback worker` processes on any machines run them.
    jobs_backend: Literal["local", "procrastinate"] = "local"
    #: Run the local backend's scheduler inside `takeback serve` (off: nothing runs in the background).
    jobs_in_server: bool = True
    #: Extra modules whose TASKS / SCHEDULES the workers and servers register (plug-ins, tests).
    jobs_task_modules: list[str] = Field(default_factory=list)
    #: Workers' heartbeat; a worker silent for jobs_stalled_after_s is taken for dead and its jobs run again
    #: elsewhere (checked every jobs_stalled_check_s).  Keep stalled_after well above the heartbeat.
    jobs_heartbeat_s: float = Field(default=10.0, gt=0)
    jobs_stalled_after_s: float = Field(default=60.0, gt=0)
    jobs_stalled_check_s: float = Field(default=15.0, gt=0)
    #: How long a stopping worker waits for running jobs (None: for ever; they are retried elsewhere anyway).
    jobs_shutdown_timeout_s: float | None = Field(default=30.0, ge=0)
    #: Schedules (cron, UTC): due re-checks of findings, due re-scans of cases, queued notices and deadlines,
    #: webhook deliveries left pending (procrastinate backend; the local one resumes them at start).
    jobs_recheck_cron: str = "*/15 * * * *"
    jobs_rescan_cron: str = "0 * * * *"
    jobs_notices_cron: str = "* * * * *"
    jobs_webhooks_cron: str = "* * * * *"

    #: Loopback origins ("127.0.0.1:8701") the discover fetcher may reach although they are private.  Set only by
    #: code (`takeback serve --demo`, for the demo site it starts itself) through `allowing_origins`, never from the
    #: environment or a file, so no configuration can loosen the SSRF guard of a deployed server.
    _fetch_allow_origins: tuple[str, ...] = PrivateAttr(default=())

    @property
    def fetch_allow_origins(self) -> tuple[str, ...]:
        return self._fetch_allow_origins

    def allowing_origins(self, *origins: str) -> Settings:
        """A copy whose fetchers may also reach exactly these host:port origins (see `discover.allow`)."""
        copy = self.model_copy()
        copy._fetch_allow_origins = tuple(dict.fromkeys((*self._fetch_allow_origins, *origins)))
        return copy

    @property
    def cache_path(self) -> Path:
        return self.cache_dir / "hash-cache.sqlite3"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'takeback.sqlite3'}"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "index"


def load() -> Settings:
    return Settings()
