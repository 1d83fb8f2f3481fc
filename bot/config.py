"""Configuration from the environment or a `.env` file (SPEC section 8)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from handlers.base import Options
from jobs.visitor import VisitorSettings

REAL_WECHAT_API = "https://api.weixin.qq.com"
DEV_SECRET = "dev-secret-change-me"
DEV_TOKEN = "houqin-dev-token"
DEV_APP_SECRET = "dev-app-secret"
# The defaults above and every value in .env.example (a test keeps the two in step): public, so never in production.
PLACEHOLDERS = frozenset({
    DEV_SECRET, DEV_TOKEN, DEV_APP_SECRET, "wx0000000000000000", "change-me-to-64-random-characters",
    "the-token-you-typed-in-the-server-config", "wx0123456789abcdef", "your-app-secret", "password",
})
MIN_SECRET_KEY = 32
MIN_SECRET_VARIETY = 10  # distinct characters: `aaaa…` or `abababab…` is not a key
SIMULATOR_SWITCH = "HOUQIN_SIMULATOR"  # set by `houqin demo`; the chat simulator (bot/sandbox) answers only then
SIMULATOR_TOKEN = "HOUQIN_SIMULATOR_TOKEN"  # its per-run secret, set by `houqin demo`


class Settings(VisitorSettings):  # the visitor jobs' settings are declared with the jobs
    # hide_input_in_errors: a refusal names the setting, never prints the secrets it was given
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      hide_input_in_errors=True)

    env: str = Field(default="development", alias="HOUQIN_ENV")  # development | production
    wechat_token: str = DEV_TOKEN
    wechat_app_id: str = "wx0000000000000000"
    wechat_app_secret: str = DEV_APP_SECRET
    wechat_aes_key: str | None = None
    wechat_api_base_url: str = REAL_WECHAT_API
    # None: plaintext is refused once WECHAT_AES_KEY is set (SPEC 7); false only for the changeover
    wechat_require_safe_mode: bool | None = None
    database_url: str = "sqlite:///houqin.db"
    redis_url: str | None = None
    timezone: str = "Asia/Shanghai"
    secret_key: str = DEV_SECRET
    scheduler: str = "on"  # on: run jobs in the web process; off: a separate `houqin scheduler` does
    sender: str = "on"  # on: the outbox sender runs in the web process
    cpu_affinity: str = "auto"  # auto: each server process on one core of its own (bot/cpu.py); off; or "2,3"
    handler_threads: int = 4  # threads running handlers; more only fight over the GIL (bench/repair.py)
    reply_timeout: float = 4.5  # seconds before a slow answer is sent later as a customer-service message
    inbox_lease: float = 30.0  # s a late message is left to its holder before the recovery loop runs it again
    inbox_recovery: str = "on"  # on: this process runs pending messages whose holder died or failed
    inbox_recovery_seconds: float = 1.0  # how often the recovery loop looks
    timestamp_tolerance: int = 300  # seconds; 0 switches the replay check off (only for known-answer tests)
    max_body_bytes: int = 65536
    school_name: str = "示例学校"
    default_building: str = "教学楼"  # DEFAULT_BUILDING: where a bare room number (301) is
    send_rate_per_second: float = 50.0
    outbox_lease: float = 120.0  # s before a row a sender took (and died with) is sent again
    templates: dict[str, str] = Field(default_factory=dict)  # kind → template id
    config_file: str | None = Field(default=None, alias="HOUQIN_CONFIG")  # term calendar etc. (TOML)

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "production":
            self._refuse_weak_secrets()
        if self.wechat_aes_key is not None and self.wechat_aes_key.strip() == "":
            self.wechat_aes_key = None
        if self.wechat_aes_key is not None and len(self.wechat_aes_key) != 43:
            raise ValueError("WECHAT_AES_KEY (EncodingAESKey) must be 43 characters")
        return self

    def _refuse_weak_secrets(self) -> None:
        """SPEC 8: production never starts with a public or guessable secret. SECRET_KEY derives the key of the
        visitors' ID numbers (HKDF, fixed salt): a placeholder would expose every stored ID."""
        problems = []
        key = self.secret_key
        if key in PLACEHOLDERS or "change-me" in key.lower() or "changeme" in key.lower():
            problems.append("SECRET_KEY is a placeholder")
        elif len(key) < MIN_SECRET_KEY:
            problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_KEY} characters")
        elif len(set(key)) < MIN_SECRET_VARIETY:
            problems.append("SECRET_KEY has too little variety (use e.g. `python -c 'import secrets; "
                            "print(secrets.token_urlsafe(48))'`)")
        if self.wechat_token in PLACEHOLDERS:
            problems.append("WECHAT_TOKEN is the development or example value")
        if self.wechat_app_secret in PLACEHOLDERS:
            problems.append("WECHAT_APP_SECRET is not set (placeholder)")
        if self.wechat_app_id in PLACEHOLDERS:
            problems.append("WECHAT_APP_ID is not set (placeholder)")
        password = urlsplit(self.database_url).password if "://" in self.database_url else None
        if password is not None and password in PLACEHOLDERS:
            problems.append("DATABASE_URL has the example password")
        if problems:  # the message names the settings, never their values
            raise ValueError("refusing to start in production (HOUQIN_ENV=production): " + "; ".join(problems))

    @model_validator(mode="after")
    def _templates_from_env(self) -> Settings:
        """Template ids per notification kind, from WECHAT_TEMPLATE_<KIND> variables."""
        for key, value in os.environ.items():
            if key.upper().startswith("WECHAT_TEMPLATE_") and value:
                self.templates.setdefault(key[len("WECHAT_TEMPLATE_"):].lower(), value)
        return self

    @property
    def safe_mode_required(self) -> bool:
        """Plaintext messages refused: plaintext mode signs only the query string, which a log may show."""
        if self.wechat_require_safe_mode is not None:
            return self.wechat_require_safe_mode
        return self.wechat_aes_key is not None

    def handler_options(self) -> Options:
        """The part of the settings the handlers read."""
        return Options(school_name=self.school_name, timezone=self.timezone,
                       visitor_long_stay_hours=self.visitor_long_stay_hours, secret_key=self.secret_key,
                       default_building=self.default_building)


def simulator_enabled(settings: Settings) -> bool:
    """The chat simulator is on: switched on, not in production, and outbound messages go to a fake WeChat
    server on this machine — the API base must be a loopback address (any other spelling of an address,
    the real API's included, keeps it off)."""
    flag = os.environ.get(SIMULATOR_SWITCH, "").strip().lower() in ("1", "true", "on", "yes")
    if not flag or settings.env.strip().lower() == "production":
        return False
    return is_loopback_url(settings.wechat_api_base_url)


def is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _ = parts.port  # a malformed port raises
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_simulator_token: str | None = None


def simulator_token() -> str:
    """The simulator's per-run secret (HOUQIN_SIMULATOR_TOKEN, set by `houqin demo`; else one per process):
    its API answers only requests that carry it, so another site or another person cannot drive it."""
    global _simulator_token
    configured = os.environ.get(SIMULATOR_TOKEN, "").strip()
    if len(configured) >= 16:
        return configured
    if _simulator_token is None:
        _simulator_token = secrets.token_urlsafe(24)
    return _simulator_token

