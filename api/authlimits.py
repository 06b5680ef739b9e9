"""Rate limits on the sign-in endpoints: per client address and per account.

Each family (``login``, ``register``, ``resend``, ``password``) has two limits from the settings
(``SHOPLEDGER_<FAMILY>_RATE_LIMIT_PER_ADDRESS`` and ``..._PER_ACCOUNT``/``..._PER_EMAIL``),
counted by the limiter of api/ratelimit.py: in Redis in scaled mode (so every API process
shares them), in this process otherwise. Over either: 429 RATE_LIMITED with Retry-After.

Logins count failures only: a login that succeeds gives its hits back, so people who type
their password right are never throttled, while a guesser gets at most
``login_rate_limit_per_address`` tries per window from one address, fewer than the five
consecutive failures that lock an account (aggregates/accounts.py), so one address cannot lock
an account out in one burst. The per-account limit (looser, so one address cannot use it up
on its own) bounds guessing spread over many addresses; the lockout still applies.

Account keys are hashed: no email address or username is written to Redis.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Literal

from fastapi import Request

from api.ratelimit import Limit, RateLimiter, refusal
from shopledger.settings import Settings, rate_spec

log = logging.getLogger(__name__)

Family = Literal["login", "register", "resend", "password"]
FAMILIES: tuple[Family, ...] = ("login", "register", "resend", "password")
_ACCOUNT_SETTING = {
    "login": "per_account",
    "register": "per_email",
    "resend": "per_account",
    "password": "per_account",
}


def limits_of(settings: Settings, family: Family) -> tuple[Limit, Limit]:
    """(per address, per account) of a family, from the settings."""
    by_address = rate_spec(getattr(settings, f"{family}_rate_limit_per_address"))
    by_account = rate_spec(getattr(settings, f"{family}_rate_limit_{_ACCOUNT_SETTING[family]}"))
    return (
        Limit(f"auth:{family}:address", *by_address),
        Limit(f"auth:{family}:account", *by_account),
    )


def address_key(host: str) -> str:
    """The client address as limited: an IPv6 address by its /64 (one subscriber's network;
    the host part is theirs to change at will), an IPv4-mapped one as IPv4."""
    try:
        address = ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def account_key(identity: str) -> str:
    """An account id, an email address or a login name, hashed (case-insensitive)."""
    return hashlib.sha256(identity.strip().lower().encode()).hexdigest()[:32]


@dataclass
class Attempt:
    """The hits one request took; a login that succeeds gives them back."""

    limiter: RateLimiter
    hits: list[tuple[Limit, str, str]] = field(default_factory=list)

    def give_back(self) -> None:
        for limit, key, token in self.hits:
            self.limiter.give_back(limit, key, token)
        self.hits.clear()


class AuthLimits:
    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self._limiter = limiter
        self._on = settings.auth_rate_limits
        self._limits = {family: limits_of(settings, family) for family in FAMILIES}

    def attempt(self) -> Attempt:
        return Attempt(self._limiter)

    def by_address(self, attempt: Attempt, family: Family, request: Request) -> None:
        """Count a hit of the caller's address; 429 RATE_LIMITED when it is over."""
        host = request.client.host if request.client else "unknown"
        self._take(attempt, self._limits[family][0], address_key(host))

    def by_account(self, attempt: Attempt, family: Family, identity: str) -> None:
        """Count a hit of an account (its id, or the email or name asked for); 429 when over."""
        self._take(attempt, self._limits[family][1], account_key(identity))

    def _take(self, attempt: Attempt, limit: Limit, key: str) -> None:
        if not self._on:
            return
        wait, token = self._limiter.take(limit, key)
        if wait is not None:
            log.info("rate limited", extra={"limit": limit.name})
            raise refusal(limit, wait)
        attempt.hits.append((limit, key, token))


def auth_limits(request: Request) -> AuthLimits:
    limits: AuthLimits = request.app.state.auth_limits
    return limits
