"""API keys and bind security, shared by both doors (HTTP and gRPC). Pure: no transport import.

``FRIDAY_API_KEYS`` is a comma-separated list of entries, each ``key`` (every role) or
``key:role+role`` with roles ``publish``, ``consume`` and ``admin``::

    FRIDAY_API_KEYS="s3cret-for-n8n,pub-only-key:publish,ops-key:consume+admin"

With no key configured auth is off, which is only allowed while every listener is bound
to a loopback address (:func:`check_bind_security`).

A key is never logged, echoed in an error, or kept in clear in ``repr``: entries are
referred to by their position, and presented keys are compared in constant time
against *every* configured key (SHA-256 digests compared with :func:`hmac.compare_digest`,
no early exit), so timing tells neither which key matched nor how long keys are.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .core.errors import ConfigError

ROLES: tuple[str, ...] = ("publish", "consume", "admin")
Role = Literal["publish", "consume", "admin"]
CheckResult = Literal["ok", "unauthenticated", "forbidden"]

_FORBIDDEN_KEY_CHARS = set(",:+ \t\r\n\x00")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class _Key:
    digest: bytes
    roles: frozenset[str]

    def __repr__(self) -> str:  # never show key material
        return f"_Key(roles={sorted(self.roles)})"


class ApiKeys:
    """The configured API keys and their roles."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        parsed: list[_Key] = []
        for secret, roles in keys:
            r = frozenset(roles) or frozenset(ROLES)
            unknown = r - set(ROLES)
            if unknown:
                raise ConfigError(f"unknown API key roles {sorted(unknown)}; use {', '.join(ROLES)}")
            parsed.append(_Key(_digest(secret), r))
        self._keys: tuple[_Key, ...] = tuple(parsed)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    @classmethod
    def parse(cls, spec: str | None) -> ApiKeys:
        """Parse ``FRIDAY_API_KEYS``. Raises :class:`ConfigError` (naming the entry by position, never
        showing the key) when an entry is empty, has an unknown role, or a key appears twice."""
        if spec is None or not spec.strip():
            return cls()
        entries: list[tuple[str, list[str]]] = []
        seen: set[bytes] = set()
        hint = "each entry is 'key' (all roles) or 'key:role+role' with roles publish, consume, admin"
        for pos, raw in enumerate(spec.split(","), start=1):
            item = raw.strip()
            if not item:
                raise ConfigError(f"FRIDAY_API_KEYS: entry {pos} is empty (stray comma?); {hint}")
            key, sep, role_text = item.partition(":")
            key = key.strip()
            if not key:
                raise ConfigError(f"FRIDAY_API_KEYS: entry {pos} has no key before ':'; {hint}")
            if any(ch in _FORBIDDEN_KEY_CHARS for ch in key):
                raise ConfigError(
                    f"FRIDAY_API_KEYS: the key of entry {pos} contains a space, ',', ':', '+' or NUL; "
                    "use a token such as `python3 -c \"import secrets; print(secrets.token_urlsafe(32))\"`"
                )
            roles: list[str] = []
            if sep:
                parts = [p.strip() for p in role_text.split("+")]
                if not role_text.strip() or any(not p for p in parts):
                    raise ConfigError(f"FRIDAY_API_KEYS: entry {pos} has an empty role list after ':'; {hint}")
                for p in parts:
                    if p not in ROLES:
                        shown = p if len(p) <= 20 else p[:20] + "..."
                        raise ConfigError(f"FRIDAY_API_KEYS: entry {pos} has unknown role {shown!r}; {hint}")
                roles = parts
            d = _digest(key)
            if d in seen:
                raise ConfigError(f"FRIDAY_API_KEYS: entry {pos} repeats the key of an earlier entry; list each key once")
            seen.add(d)
            entries.append((key, roles))
        return cls(entries)

    @classmethod
    def from_settings(cls, settings: Any) -> ApiKeys:
        return cls.parse(getattr(settings, "api_keys", "") or "")

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured (auth is on)."""
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def check(self, presented_key: str | None, role: str) -> CheckResult:
        """``ok`` if auth is off or the key is known and has ``role``; ``unauthenticated`` if the key
        is missing or unknown; ``forbidden`` if it is known but lacks the role.

        Compares against every configured key in constant time, whatever matches."""
        return self.check_any(presented_key, (role,))

    def check_any(self, presented_key: str | None, roles: Iterable[str]) -> CheckResult:
        """Like :meth:`check`, ``ok`` when the key has at least one of ``roles``."""
        wanted = frozenset(roles)
        if not wanted or wanted - set(ROLES):
            raise ValueError(f"roles must be a non-empty subset of {ROLES} (got {sorted(wanted)})")
        if not self._keys:
            return "ok"
        if not presented_key:
            return "unauthenticated"
        presented = _digest(presented_key)
        found = False
        allowed = False
        for k in self._keys:  # no early exit
            match = hmac.compare_digest(presented, k.digest)
            found |= match
            allowed |= match and not wanted.isdisjoint(k.roles)
        if allowed:
            return "ok"
        return "forbidden" if found else "unauthenticated"


def bearer_token(header_value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value (case-insensitive scheme), else None."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1`` (brackets allowed)."""
    h = (host or "").strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind_security(settings: Any, keys: ApiKeys | None = None) -> None:
    """Refuse to serve without a key on a non-loopback address. Raises :class:`ConfigError`."""
    keys = keys if keys is not None else ApiKeys.from_settings(settings)
    if keys.enabled:
        return
    exposed = [
        f"FRIDAY_{name.upper()}={getattr(settings, name)!r}"
        for name in ("http_host", "grpc_host")
        if not is_loopback_host(str(getattr(settings, name)))
    ]
    if exposed:
        raise ConfigError(
            f"{' and '.join(exposed)} listens beyond this machine but no API key is configured: anyone who can reach "
            "the port could publish and consume. Set FRIDAY_API_KEYS (e.g. FRIDAY_API_KEYS=$(python3 -c "
            "\"import secrets; print(secrets.token_urlsafe(32))\")), or bind to 127.0.0.1"
        )
