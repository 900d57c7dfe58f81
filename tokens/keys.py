"""Token keys (pure): how a key is made, recognised and digested. Keys carry 256 random bits,
so one SHA-256 is the right digest: nothing to slow down against guessing, unlike passwords."""

import hashlib
import re
import secrets

#: A user key: `nfu_` then 43 URL-safe characters (32 random bytes). The prefix lets secret
#: scanners and people tell it from an agent's token or anything else.
USER_KEY_PREFIX = "nfu_"
_USER_KEY = re.compile(r"nfu_[A-Za-z0-9_-]{43}")
#: A key of DRF's authtoken, carried over by migration 0002 (it expires like any other).
_LEGACY_KEY = re.compile(r"[0-9a-f]{40}")
PREFIX_LENGTH = 12


def new_key() -> str:
    return USER_KEY_PREFIX + secrets.token_urlsafe(32)


def is_well_formed(key: str) -> bool:
    return bool(_USER_KEY.fullmatch(key) or _LEGACY_KEY.fullmatch(key))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH] if key.startswith(USER_KEY_PREFIX) else key[:8]
