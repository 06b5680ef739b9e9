"""Signed checkpoints: the chain's head (position, link, time) signed with the service's RS256
key, as a compact JWS with the key's ``kid`` in its header (the JWKS at
``/.well-known/jwks.json`` publishes the key), recorded as a ``Checkpoint`` event.

Anyone holding the public key verifies a checkpoint offline: check the JWS, then compare its
``link`` with the link the chain (or an export) has at ``position``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from eventsourcing.utils import get_topic
from sqlalchemy import Table, select

from aggregates.checkpoints import Checkpoint
from audit.chain import Head, read_head

if TYPE_CHECKING:
    from commands.application import EventMeta
    from commands.credentials import KeyRing
    from shopledger.bootstrap import Container

CHECKPOINT_TOPIC = get_topic(Checkpoint.Signed)
#: The JWS header's ``typ``: a checkpoint is never mistaken for an access token, and back.
JWS_TYPE = "shopledger-checkpoint+jwt"
SUBJECT = "shopledger-event-chain"
ACTOR = "system:audit-checkpoint"


class CheckpointError(Exception):
    """A checkpoint does not verify; the message says why."""


@dataclass(frozen=True)
class SignedHead:
    position: int
    link: str  # hex
    signed_at: str  # ISO 8601, UTC
    kid: str
    jws: str


# --- signing and verifying ------------------------------------------------------------------
def sign_head(keys: KeyRing, head: Head, at: datetime, issuer: str) -> SignedHead:
    signed_at = at.astimezone(UTC).isoformat()
    kid = keys.current.kid
    token = jwt.encode(
        {
            "iss": issuer,
            "sub": SUBJECT,
            "position": head.position,
            "link": head.link_hex,
            "signedAt": signed_at,
            "iat": int(at.timestamp()),
        },
        keys.private_key,
        algorithm="RS256",
        headers={"kid": kid, "typ": JWS_TYPE},
    )
    return SignedHead(head.position, head.link_hex, signed_at, kid, token)


def verify_jws(token: str, keys: Mapping[str, Any]) -> SignedHead:
    """The signed head of a checkpoint JWS, if it verifies with one of ``keys`` (kid → RSA
    public key; the kid ``*`` stands for a key given without one, e.g. a PEM file)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise CheckpointError("not a JWS") from None
    if header.get("alg") != "RS256" or header.get("typ") != JWS_TYPE:
        raise CheckpointError("not a checkpoint JWS (alg RS256, typ " + JWS_TYPE + ")")
    kid = str(header.get("kid"))
    key = keys.get(kid, keys.get("*"))
    if key is None:
        raise CheckpointError(f"signed with an unknown key (kid {kid})")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={"require": ["position", "link", "iat"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise CheckpointError(f"the signature does not verify ({exc})") from None
    if claims.get("sub") != SUBJECT:
        raise CheckpointError("not a checkpoint of the event chain")
    try:
        position = int(claims["position"])
        link = str(claims["link"])
        bytes.fromhex(link)
    except (TypeError, ValueError):
        raise CheckpointError("malformed checkpoint claims") from None
    return SignedHead(position, link, str(claims.get("signedAt", "")), kid, token)


def decode_state(state: bytes) -> dict[str, Any]:
    """A stored event's state as JSON (the store compresses it with zlib)."""
    try:
        raw = zlib.decompress(state)
    except zlib.error:
        raw = state
    try:
        value = json.loads(raw)
    except ValueError:
        raise CheckpointError("the checkpoint event cannot be decoded") from None
    if not isinstance(value, dict):
        raise CheckpointError("the checkpoint event cannot be decoded")
    return value


def read_checkpoint(state: bytes, keys: Mapping[str, Any]) -> SignedHead:
    """Verify a stored ``Checkpoint.Signed`` event: its JWS, and its plain fields agree."""
    fields = decode_state(state)
    signed = verify_jws(str(fields.get("jws", "")), keys)
    if fields.get("signed_position") != signed.position or fields.get("link") != signed.link:
        raise CheckpointError("its fields differ from what its JWS signs")
    return signed


# --- keys -----------------------------------------------------------------------------------
def keys_of(ring: KeyRing) -> dict[str, Any]:
    return {kid: key.public_key for kid, key in ring.by_kid.items()}


def load_public_keys(path: Path) -> dict[str, Any]:
    """Public keys from a JWKS document (``/.well-known/jwks.json``) or a PEM file."""
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        key: Any = (
            serialization.load_pem_private_key(data, password=None).public_key()
            if b"PRIVATE KEY" in data
            else serialization.load_pem_public_key(data)
        )
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"{path} holds no RSA key")
        return {"*": key}
    try:
        document = json.loads(data)
        keys = {
            str(jwk["kid"]): jwt.PyJWK(jwk, algorithm="RS256").key
            for jwk in document.get("keys", [])
            if jwk.get("kty") == "RSA" and "kid" in jwk
        }
    except (ValueError, KeyError, AttributeError, jwt.PyJWTError) as exc:
        raise ValueError(f"{path} is neither a PEM key nor a JWKS document: {exc}") from None
    if not keys:
        raise ValueError(f"{path} holds no RSA key with a kid")
    return keys


# --- on the store ---------------------------------------------------------------------------
def last_checkpoint_position(session: Any, events: Table) -> int | None:
    """The position of the latest checkpoint event (a backward scan from the head, which
    stops at the first checkpoint, one interval's worth of events back)."""
    c = events.c
    row = session.execute(
        select(c.id).where(c.topic == CHECKPOINT_TOPIC).order_by(c.id.desc()).limit(1)
    ).first()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class Signed:
    """What :func:`create_checkpoint` did: ``created`` False means the head had not moved
    since the last checkpoint (``head`` is then that checkpoint's signed position)."""

    created: bool
    signed: SignedHead | None
    position: int | None  # the checkpoint event's own position, when created


def create_checkpoint(
    container: Container, meta: EventMeta | None = None, finalize: Any = None
) -> Signed:
    """Sign the chain's head and record it, unless nothing but the last checkpoint itself was
    appended since (a no-op then). ``meta``: who asked (default: the timed rule);
    ``finalize``: the command bus's finalizer (an HTTP request's idempotency record)."""
    from commands.application import EventMeta
    from commands.checkpoints import RecordCheckpoint

    recorder: Any = container.app.recorder
    events = recorder.events_record_cls.__table__
    with recorder.transaction(commit=False) as session:
        head = read_head(session)
        last = last_checkpoint_position(session, events)
    if head is None or (last is not None and last >= head.position):
        return Signed(False, None, None)
    signed = sign_head(
        container.tokens.keys, head, datetime.now(UTC), container.settings.public_url
    )
    outcome = container.bus.execute(
        RecordCheckpoint(signed.position, signed.link, signed.signed_at, signed.kid, signed.jws),
        meta or EventMeta(ACTOR, f"checkpoint:{signed.position}"),
        finalize=finalize,
    )
    if outcome.result is None:  # another process signed this head first
        return Signed(False, None, None)
    return Signed(True, signed, outcome.position)
