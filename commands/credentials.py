"""Passwords (argon2id) and tokens (RS256 JWTs with a key ring); no HTTP in here."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
AUDIENCE = "shopledger"


# --- passwords ------------------------------------------------------------------------------
class Passwords:
    """argon2id at the OWASP minimum (m=19 MiB, t=2, p=1) or stronger."""

    def __init__(
        self, memory_kib: int = 19 * 1024, time_cost: int = 2, parallelism: int = 1
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )

    @cached_property
    def _dummy(self) -> str:
        """Verified against when the account does not exist, so the answer takes as long.
        Made on first use: every process bootstraps Passwords, few of them log anyone in."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return (
                self._hasher.verify(password_hash or self._dummy, password)
                and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def token_hash(token: str) -> str:
    """What we store of a one-time token: its SHA-256 (the token has 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- signing keys ---------------------------------------------------------------------------
class KeyFileError(Exception):
    """A key file cannot be read or created; the message names the file."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: rsa.RSAPublicKey
    private_key: rsa.RSAPrivateKey | None

    def jwk(self) -> dict[str, str]:
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": ALGORITHM,
            "kid": self.kid,
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
        }


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that any party can recompute from the key."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _b64uint(numbers.e), "kty": "RSA", "n": _b64uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


#: Parsed keys by the SHA-256 of the file's bytes: parsing (with its RSA consistency check)
#: costs ~35 ms, and a process that builds several applications (the CLI's patient start,
#: tests) reads the same file each time.
_PARSED: dict[bytes, SigningKey] = {}


def _load_pem(path: Path) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    identity = hashlib.sha256(data).digest()
    key = _PARSED.get(identity)
    if key is None:
        key = _PARSED[identity] = _parse_pem(path, data)
    return key


def _parse_pem(path: Path, data: bytes) -> SigningKey:
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise TypeError("not an RSA key")
            return SigningKey(_thumbprint(private.public_key()), private.public_key(), private)
        public = serialization.load_pem_public_key(data)
        if not isinstance(public, rsa.RSAPublicKey):
            raise TypeError("not an RSA key")
        return SigningKey(_thumbprint(public), public, None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path} is not an RSA PEM key: {exc}") from None


def _write_once(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600) holding ``data``, unless it exists. O_EXCL: when several
    processes start at once, exactly one writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_or_create_private_key(path: Path) -> SigningKey:
    """Read the signing key, generating it (mode 0600) when the file does not exist."""
    if not path.exists():
        generated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = generated.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_once(path, pem)
    key = _load_pem(path)
    if key.private_key is None:
        raise KeyFileError(f"key file {path} holds a public key; the signing key must be private")
    return key


def load_or_create_secret(path: Path) -> bytes:
    """A 32-byte secret kept as hex in ``path``, generated (mode 0600) when the file does not
    exist; several processes starting at once agree on one (O_EXCL)."""
    if not path.exists():
        _write_once(path, (secrets.token_hex(32) + "\n").encode())
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    if not text:  # another process is still writing it
        time.sleep(0.05)
        text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{path} must hold a hex secret (e.g. openssl rand -hex 32)") from None
    if len(secret) < 32:
        raise KeyFileError(f"{path} holds {len(secret)} bytes; at least 32 are needed")
    return secret


class KeyRing:
    """The current signing key and, during a rotation, the previous one (verify only)."""

    def __init__(self, current: SigningKey, previous: SigningKey | None = None) -> None:
        if current.private_key is None:
            raise KeyFileError("the current signing key must be a private key")
        self.current = current
        self.private_key: rsa.RSAPrivateKey = current.private_key
        self.by_kid = {current.kid: current}
        if previous is not None and previous.kid != current.kid:
            self.by_kid[previous.kid] = previous

    @classmethod
    def from_files(cls, private_key_file: Path, previous_key_file: Path | None) -> KeyRing:
        current = load_or_create_private_key(private_key_file)
        previous = _load_pem(previous_key_file) if previous_key_file else None
        return cls(current, previous)

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for ``purpose``, derived from the signing key, so every process
        sharing the key file shares it too (and rotating the key changes it)."""
        d = self.private_key.private_numbers().d
        material = purpose.encode() + b"\x00" + d.to_bytes((d.bit_length() + 7) // 8, "big")
        return hashlib.sha256(material).digest()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in self.by_kid.values()]}


# --- tokens ---------------------------------------------------------------------------------
class InvalidJWT(Exception):
    """The token is malformed, tampered with, expired, of another type or signed otherwise."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    sid: str
    jti: str
    typ: str
    exp: datetime
    csrf: str | None = None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_in: int
    refresh_expires_at: datetime
    refresh_jti: str


class Tokens:
    """Issues and verifies access and refresh tokens (RS256 only, ``kid`` in the header)."""

    def __init__(
        self,
        keys: KeyRing,
        issuer: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.clock = clock

    def refresh_expiry(self, now: datetime) -> datetime:
        return now + self.refresh_ttl

    def issue(
        self,
        account_id: str,
        role: str,
        session_id: str,
        refresh_jti: str,
        now: datetime,
        csrf_hash: str | None = None,
    ) -> TokenPair:
        extra = {"csrf": csrf_hash} if csrf_hash else {}
        access = self._sign(
            account_id,
            role,
            session_id,
            secrets.token_hex(16),
            "access",
            now,
            now + self.access_ttl,
            extra,
        )
        refresh_exp = now + self.refresh_ttl
        refresh = self._sign(
            account_id, role, session_id, refresh_jti, "refresh", now, refresh_exp, extra
        )
        return TokenPair(
            access, refresh, int(self.access_ttl.total_seconds()), refresh_exp, refresh_jti
        )

    def _sign(
        self,
        sub: str,
        role: str,
        sid: str,
        jti: str,
        typ: str,
        iat: datetime,
        exp: datetime,
        extra: dict[str, Any],
    ) -> str:
        key = self.keys.current
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": sub,
            "role": role,
            "sid": sid,
            "jti": jti,
            # Whole seconds: exp - iat is exactly the lifetime (the first second may be cut short).
            "typ": typ,
            "iat": int(iat.timestamp()),
            "exp": int(iat.timestamp()) + math.ceil((exp - iat).total_seconds()),
            **extra,
        }
        return jwt.encode(
            payload, self.keys.private_key, algorithm=ALGORITHM, headers={"kid": key.kid}
        )

    def verify(self, token: str, expected_type: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidJWT("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidJWT("unsupported algorithm")
        key = self.keys.by_kid.get(str(header.get("kid")))
        if key is None:
            raise InvalidJWT("unknown signing key")
        try:
            payload = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "sid", "typ", "role"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidJWT("token expired") from None
        except jwt.PyJWTError:
            raise InvalidJWT("invalid token") from None
        if payload.get("typ") != expected_type:
            raise InvalidJWT(f"not an {expected_type} token")
        exp = datetime.fromtimestamp(int(payload["exp"]), UTC)
        if exp <= self.clock():
            raise InvalidJWT("token expired")
        return Claims(
            sub=str(payload["sub"]),
            role=str(payload["role"]),
            sid=str(payload["sid"]),
            jti=str(payload["jti"]),
            typ=str(payload["typ"]),
            exp=exp,
            csrf=payload.get("csrf"),
        )
