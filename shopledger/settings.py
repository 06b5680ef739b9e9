"""One settings class: every ``SHOPLEDGER_*`` environment variable, validated at start-up."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from aggregates.loyalty import LoyaltyRules
from shopledger.durations import parse_duration


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]


def rate_spec(value: str) -> tuple[int, int]:
    """``"5/PT15M"`` → (5, 900): at most 5 in any 15 minutes (whole seconds, at least 1)."""
    count, slash, duration = value.strip().partition("/")
    if not slash or not count.strip().isdigit() or not 1 <= int(count) <= 1_000_000:
        raise ValueError('must be "N/duration", e.g. 5/PT15M (N from 1 to 1000000)')
    window = parse_duration(duration.strip())
    if window <= timedelta(0):
        raise ValueError("the window must be a positive duration")
    return int(count), max(1, round(window.total_seconds()))


def _rate_spec(value: str) -> str:
    rate_spec(value)
    return value


RateSpec = Annotated[str, AfterValidator(_rate_spec)]

DEFAULT_VAR_DIR = Path("var")


def _numbers(value: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(part.strip()) for part in value.split(","))


ShippingMethod = Literal["STANDARD", "EXPRESS", "SAME_DAY", "PICKUP"]
DEFAULT_SHIPPING_FEES: dict[ShippingMethod, Decimal] = {
    "STANDARD": Decimal(60),
    "EXPRESS": Decimal(120),
    "SAME_DAY": Decimal(200),
    "PICKUP": Decimal(0),
}


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Runtime configuration. Names, defaults and meaning are listed in README.md."""

    model_config = SettingsConfigDict(env_prefix="SHOPLEDGER_", extra="ignore", frozen=True)

    # --- named by API.md -------------------------------------------------------------------
    database_url: str = ""
    redis_url: str | None = None
    mail_url: str = ""
    jwt_private_key_file: Path | None = None
    access_token_ttl: Duration = timedelta(hours=3)
    lockout_duration: Duration = timedelta(minutes=30)
    unpaid_order_ttl: Duration = timedelta(minutes=30)
    ship_reminder_after: Duration = timedelta(days=7)
    auto_deliver_after: Duration = timedelta(days=3)
    public_url: str = "http://127.0.0.1:8000"

    # --- our additions ---------------------------------------------------------------------
    var_dir: Path = DEFAULT_VAR_DIR
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``json`` (one object per line) or ``text`` (readable); default: text in development,
    #: JSON otherwise.
    log_format: Literal["json", "text"] | None = None
    min_position_wait: Duration = timedelta(seconds=2)
    projection_poll_interval: Duration = timedelta(seconds=1)
    projection_batch_size: int = Field(default=500, ge=1, le=10_000)
    #: Events per batch while a projection is more than a batch behind (a new or rebuilt
    #: projection, a projector back after downtime): fewer, larger commits.
    projection_catch_up_batch_size: int = Field(default=2000, ge=1, le=20_000)
    command_max_attempts: int = Field(default=12, ge=1, le=100)
    #: Aggregates kept in memory between commands (commands/cache.py); 0 turns it off.
    aggregate_cache_size: int = Field(default=20_000, ge=0, le=1_000_000)
    #: VAT charged on (subtotal - discount).
    tax_rate: Decimal = Field(default=Decimal("0.05"), ge=0, le=1, decimal_places=4)
    #: Shipping fee per method, JSON: {"STANDARD": 60, "EXPRESS": 120, ...}.
    shipping_fees: dict[ShippingMethod, Annotated[Decimal, Field(ge=0, le=100000)]] = Field(
        default_factory=lambda: dict(DEFAULT_SHIPPING_FEES)
    )
    #: ECPay all-in-one checkout. All three empty: ECPay's public stage merchant outside
    #: production, ECPay switched off in production. ``ecpay_production`` picks the endpoint.
    ecpay_merchant_id: str = Field(default="", pattern=r"^[0-9]{0,10}$")
    ecpay_hash_key: str = Field(default="", max_length=64, repr=False)
    ecpay_hash_iv: str = Field(default="", max_length=64, repr=False)
    ecpay_production: bool = False
    #: The built-in sandbox card gateway approves any Luhn-valid number: on by default outside
    #: production, and in production only when set to true (a demo deployment).
    sandbox_cards: bool | None = None
    #: Two capital letters: the e-invoice track numbers are taken from (AB00000001, ...).
    invoice_track: str = Field(default="SL", pattern=r"^[A-Z]{2}$")
    idempotency_ttl: Duration = timedelta(hours=24)
    idempotency_lease: Duration = timedelta(seconds=60)
    run_projections_in_process: bool | None = None
    ready_max_lag: int = Field(default=1000, ge=0)
    refresh_token_ttl: Duration = timedelta(days=14)
    email_verification_ttl: Duration = timedelta(days=1)
    jwt_previous_key_file: Path | None = None
    #: The secret that signs payment links (paymentUrl, the result page): its own, so a JWT
    #: key rotation leaves links already sent working. Generated in var/ when absent.
    link_secret_file: Path | None = None
    mail_from: str = "no-reply@shopledger.local"
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    password_hash_queue: int = Field(default=32, ge=0, le=10_000)

    # --- workers and timed rules (workers/) ----------------------------------------------------
    #: Deliver the mail outbox from a thread of the API process. Default: in embedded mode
    #: only; with Redis, RQ jobs deliver it (``shopledger worker``).
    deliver_mail_in_process: bool | None = None
    #: RQ queue names are ``<prefix>-rules``, ``<prefix>-mail`` and ``<prefix>-audit`` (one
    #: Redis, several shops).
    queue_prefix: str = Field(default="shopledger", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    #: How often the sweep fires due deadlines that no scheduled job fired (and schedules the
    #: ones coming due before the next sweep).
    rule_sweep_interval: Duration = timedelta(seconds=10)
    #: A dispatched firing not finished by then is dispatched again; a firing the order
    #: refused is retried after this, doubling each time (at most hourly).
    rule_retry_after: Duration = timedelta(minutes=1)
    #: ``worker`` and ``projections run`` wait for a database or Redis that cannot be reached,
    #: retrying after 0.5 s, then twice as long each time, at most this long.
    reconnect_max_delay: Duration = timedelta(seconds=30)
    #: A card payment or refund with no recorded answer this long after it started is looked
    #: up at the card gateway and settled (workers/payment_recovery.py).
    payment_recovery_after: Duration = timedelta(seconds=30)
    #: How long the sandbox's slow test cards (4000000000000309, 4000000000000408) take to
    #: answer after recording the charge.
    sandbox_slow_card_delay: Duration = timedelta(seconds=20)
    #: How often the event chain's head is signed (a no-op when nothing was appended since);
    #: embedded: a thread of `serve`; with Redis: a job of `shopledger worker`.
    audit_checkpoint_interval: Duration = timedelta(minutes=10)

    # --- analytics -----------------------------------------------------------------------
    #: A product is low on stock at this many available units or fewer, unless the seller set
    #: its own threshold; the seller is notified (LOW_STOCK) once per crossing.
    low_stock_threshold: int = Field(default=5, ge=0, le=1_000_000)
    #: Stocked products with no sale in this many days are "dead stock".
    dead_stock_days: int = Field(default=30, ge=1, le=3650)

    # --- moderation --------------------------------------------------------------------------
    #: on: new products and edits of their name, description, category or images wait in the
    #: admin review queue before going public (``on``/``off``, ``true``/``false``).
    product_review: bool = False
    # --- loyalty (aggregates/loyalty.py) ----------------------------------------------------
    #: One point per this many NT$ paid on a delivered order (times the level multiplier).
    loyalty_earn_unit: Decimal = Field(default=Decimal(100), gt=0, le=1_000_000)
    #: Points may pay at most this share of a checkout's subtotal (1 point = NT$1).
    loyalty_max_redeem_ratio: Decimal = Field(default=Decimal("0.2"), ge=0, le=1)
    #: Spend (NT$, delivered orders in the window) to reach SILVER, GOLD and PLATINUM.
    loyalty_level_thresholds: str = "10000,30000,80000"
    #: Points multiplier of REGULAR, SILVER, GOLD and PLATINUM.
    loyalty_level_multipliers: str = "1,1.2,1.5,2"
    #: The spend that sets the level is counted over this window (12 months).
    loyalty_level_window: Duration = timedelta(days=365)

    # --- messages ----------------------------------------------------------------------------
    #: A user may send at most this many messages a minute (then 429 RATE_LIMITED).
    message_rate_limit: int = Field(default=30, ge=1, le=100_000)

    # --- sign-in rate limits (api/authlimits.py) ------------------------------------------
    #: off: no rate limits on login, register and resend-verification (tests, load benches).
    auth_rate_limits: bool = True
    #: "N/duration": at most N in any such window. Failed logins from one client address
    #: (IPv6: its /64), and on one account: fewer per address than the lockout's 5, so one
    #: address cannot lock an account out in one burst.
    login_rate_limit_per_address: RateSpec = "4/PT15M"
    login_rate_limit_per_account: RateSpec = "10/PT15M"
    #: Sign-ups from one client address, and attempts with one email address.
    register_rate_limit_per_address: RateSpec = "10/PT1H"
    register_rate_limit_per_email: RateSpec = "3/PT1H"
    #: Verification mails asked for from one client address, and for one account.
    resend_rate_limit_per_address: RateSpec = "10/PT1H"
    resend_rate_limit_per_account: RateSpec = "3/PT1H"
    #: Password endpoints (forgot, reset, change) from one client address, and per account
    #: (the email asked for, the token's account, the signed-in account).
    password_rate_limit_per_address: RateSpec = "10/PT1H"
    password_rate_limit_per_account: RateSpec = "5/PT1H"
    #: How long a password reset link works.
    password_reset_ttl: Duration = timedelta(hours=1)

    # --- returns and disputes ----------------------------------------------------------------
    #: A buyer may ask to return delivered items for this long after delivery.
    return_window: Duration = timedelta(days=7)
    #: A seller who loses this many disputes within ``dispute_loss_window`` is flagged for
    #: admin review (admins are notified, SELLER_FLAGGED).
    dispute_losses_to_flag: int = Field(default=5, ge=1, le=10_000)
    dispute_loss_window: Duration = timedelta(days=90)

    # --- the HTTP edge (api/) --------------------------------------------------------------
    #: Browser origins allowed to call the API (comma-separated, exact origins); none by default.
    cors_origins: str = ""
    #: Request bodies above this many bytes are refused with 413 before they are read in full.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    #: Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated addresses
    #: or networks, e.g. ``127.0.0.1,10.0.0.0/8``); none by default: the peer address is the client.
    trusted_proxies: str = ""
    #: Where the buyer's browser goes back to (ECPay's OrderResultURL/ClientBackURL, and the
    #: page after email verification); default: pages this API serves itself.
    frontend_url: str | None = None
    #: HTTPS: both files, PEM. With them ``serve`` speaks TLS and every answer carries HSTS.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    #: GET /metrics needs ``Authorization: Bearer <this>`` when set; unset, it is open to
    #: whoever reaches the API's address (keep it off the public proxy: compose.yaml does).
    metrics_token: str | None = Field(default=None, repr=False, min_length=16, max_length=200)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [
            ip_network(p.strip(), strict=False)
            for p in self.trusted_proxies.split(",")
            if p.strip()
        ]

    @property
    def https(self) -> bool:
        return self.ssl_certfile is not None

    @property
    def mail_in_process(self) -> bool:
        if self.deliver_mail_in_process is not None:
            return self.deliver_mail_in_process
        return self.embedded

    def shipping_fee_table(self) -> dict[str, Decimal]:
        """The fee per shipping method, keyed by plain strings (what the commands take)."""
        return {str(method): fee for method, fee in self.shipping_fees.items()}

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _metrics_token(cls, value: object) -> object:
        return None if value == "" else value  # compose passes an unset variable as ""

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme == "mysql":
            return "mysql+pymysql://" + value.split("://", 1)[1]
        if scheme not in ("sqlite", "mysql+pymysql", "mariadb+pymysql"):
            raise ValueError(
                "must be sqlite:///path/to/file.db or mysql+pymysql://user:pass@host:port/db"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be redis://host:port/db (or rediss://, unix://)")
        return value

    @field_validator("mail_url")
    @classmethod
    def _mail_url(cls, value: str) -> str:
        if value and not value.startswith(("file://", "smtp://", "smtps://")):
            raise ValueError("must be file:///directory or smtp://host:port")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("frontend_url")
    @classmethod
    def _frontend_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            if origin and origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin (https://host[:port])")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if part:
                try:
                    ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an address or network") from None
        return value

    @field_validator("loyalty_level_thresholds", "loyalty_level_multipliers")
    @classmethod
    def _number_list(cls, value: str) -> str:
        try:
            numbers = _numbers(value)
        except InvalidOperation:
            raise ValueError(
                "must be numbers separated by commas, e.g. 10000,30000,80000"
            ) from None
        if any(not n.is_finite() for n in numbers):
            raise ValueError("must be finite numbers")
        return value

    @model_validator(mode="after")
    def _loyalty_levels(self) -> Settings:
        try:
            self.loyalty_rules()
        except ValueError as exc:
            raise ValueError(
                f"SHOPLEDGER_LOYALTY_LEVEL_THRESHOLDS/SHOPLEDGER_LOYALTY_LEVEL_MULTIPLIERS: {exc}"
            ) from None
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        files = (self.ssl_certfile, self.ssl_keyfile)
        if (files[0] is None) != (files[1] is None):
            raise ValueError("SHOPLEDGER_SSL_CERTFILE and SHOPLEDGER_SSL_KEYFILE go together")
        for f in files:
            if f is not None and not f.is_file():
                raise ValueError(f"TLS file {f} does not exist")
        return self

    @model_validator(mode="after")
    def _ecpay_complete(self) -> Settings:
        given = [bool(self.ecpay_merchant_id), bool(self.ecpay_hash_key), bool(self.ecpay_hash_iv)]
        if any(given) and not all(given):
            missing = [
                n
                for n, g in zip(("merchant_id", "hash_key", "hash_iv"), given, strict=True)
                if not g
            ]
            raise ValueError(
                f"ECPay needs merchant id, hash key and hash IV together; missing SHOPLEDGER_ECPAY_{', SHOPLEDGER_ECPAY_'.join(m.upper() for m in missing)}"
            )
        return self

    # --- derived ---------------------------------------------------------------------------
    def loyalty_rules(self) -> LoyaltyRules:
        return LoyaltyRules(
            earn_unit=self.loyalty_earn_unit,
            max_redeem_ratio=self.loyalty_max_redeem_ratio,
            thresholds=_numbers(self.loyalty_level_thresholds),
            multipliers=_numbers(self.loyalty_level_multipliers),
            window=self.loyalty_level_window,
        )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'shopledger.db').resolve()}"

    @property
    def resolved_log_format(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "text" if self.environment == "development" else "json"

    @property
    def resolved_mail_url(self) -> str:
        return self.mail_url or f"file://{(self.var_dir / 'mail').resolve()}"

    @property
    def resolved_jwt_private_key_file(self) -> Path:
        return self.jwt_private_key_file or (self.var_dir / "jwt-private.pem")

    @property
    def resolved_link_secret_file(self) -> Path:
        return self.link_secret_file or (self.var_dir / "link-secret")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def embedded(self) -> bool:
        """Embedded mode: no Redis, so projections and timed rules run inside the API process."""
        return self.redis_url is None

    @property
    def projections_in_process(self) -> bool:
        if self.run_projections_in_process is not None:
            return self.run_projections_in_process
        return self.embedded

    @property
    def sandbox_cards_enabled(self) -> bool:
        if self.sandbox_cards is not None:
            return self.sandbox_cards
        return self.environment != "production"

    @property
    def is_mysql(self) -> bool:
        return self.resolved_database_url.startswith(("mysql", "mariadb"))


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value raises :class:`SettingsError` with a one-line message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a rule across several settings
            raise SettingsError(f"invalid settings: {message}") from None
        field = str(first["loc"][0])
        raise SettingsError(f"invalid setting SHOPLEDGER_{field.upper()}: {message}") from None
