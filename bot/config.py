"""Configuration from the environment or a `.env` file (SPEC section 8)."""

from __future__ import annotations

import os

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from handlers.base import Options
from jobs.visitor import VisitorSettings

REAL_WECHAT_API = "https://api.weixin.qq.com"
DEV_SECRET = "dev-secret-change-me"
SIMULATOR_SWITCH = "HOUQIN_SIMULATOR"  # set by `houqin demo`; the chat simulator (bot/sandbox) answers only then


class Settings(VisitorSettings):  # the visitor jobs' settings are declared with the jobs
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    env: str = Field(default="development", alias="HOUQIN_ENV")  # development | production
    wechat_token: str = "houqin-dev-token"
    wechat_app_id: str = "wx0000000000000000"
    wechat_app_secret: str = "dev-app-secret"
    wechat_aes_key: str | None = None
    wechat_api_base_url: str = REAL_WECHAT_API
    wechat_require_safe_mode: bool = False
    database_url: str = "sqlite:///houqin.db"
    redis_url: str | None = None
    timezone: str = "Asia/Shanghai"
    secret_key: str = DEV_SECRET
    scheduler: str = "on"  # on: run jobs in the web process; off: a separate `houqin scheduler` does
    sender: str = "on"  # on: the outbox sender runs in the web process
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
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 16:
                raise ValueError("SECRET_KEY must be set to a long random value in production")
            if self.wechat_app_secret == "dev-app-secret":
                raise ValueError("WECHAT_APP_SECRET must be set in production")
        if self.wechat_aes_key is not None and self.wechat_aes_key.strip() == "":
            self.wechat_aes_key = None
        if self.wechat_aes_key is not None and len(self.wechat_aes_key) != 43:
            raise ValueError("WECHAT_AES_KEY (EncodingAESKey) must be 43 characters")
        return self

    @model_validator(mode="after")
    def _templates_from_env(self) -> Settings:
        """Template ids per notification kind, from WECHAT_TEMPLATE_<KIND> variables."""
        for key, value in os.environ.items():
            if key.upper().startswith("WECHAT_TEMPLATE_") and value:
                self.templates.setdefault(key[len("WECHAT_TEMPLATE_"):].lower(), value)
        return self

    def handler_options(self) -> Options:
        """The part of the settings the handlers read."""
        return Options(school_name=self.school_name, timezone=self.timezone,
                       visitor_long_stay_hours=self.visitor_long_stay_hours, secret_key=self.secret_key,
                       default_building=self.default_building)


def simulator_enabled(settings: Settings) -> bool:
    """The chat simulator is on: switched on and outbound messages go to a fake WeChat server, not the real one."""
    flag = os.environ.get(SIMULATOR_SWITCH, "").strip().lower() in ("1", "true", "on", "yes")
    return flag and settings.wechat_api_base_url.rstrip("/") != REAL_WECHAT_API

