"""Playback: signed tokens, the /play URL space, playlist rewriting, byte ranges. Pure domain (no I/O)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from common.errors import CodedError
from common.storage import content_types

TOKEN_INVALID = "playback.token_invalid"
TOKEN_EXPIRED = "playback.token_expired"


class TokenError(CodedError):
    """A playback token that must not open the video (403; ``playback.token_invalid`` or ``_expired``)."""

    default_status = 403


class KeyConfigError(ValueError):
    """``PLAYBACK_KEYS`` is malformed."""


@dataclass(frozen=True)
class PlaybackKeys:
    """The signing key (first) and every key that still verifies (rotation: add a new first key, keep the old)."""

    signing_kid: str
    secrets: Mapping[str, bytes]

    @classmethod
    def parse(cls, entries: Sequence[str], *, min_secret_len: int = 16) -> PlaybackKeys:
        """Keys from ``("kid:secret", ...)`` (the ``PLAYBACK_KEYS`` setting, comma-separated)."""
        secrets: dict[str, bytes] = {}
        first = ""
        for entry in entries:
            kid, sep, secret = entry.strip().partition(":")
            kid, secret = kid.strip(), secret.strip()
            if not sep or not kid or not re.fullmatch(r"[A-Za-z0-9_\-]{1,32}", kid):
                raise KeyConfigError(f"PLAYBACK_KEYS entry {kid or entry!r}: expected kid:secret")
            if len(secret) < min_secret_len:
                raise KeyConfigError(
                    f"PLAYBACK_KEYS {kid}: the secret must have at least {min_secret_len} characters"
                )
            if kid in secrets:
                raise KeyConfigError(f"PLAYBACK_KEYS: key id {kid!r} appears twice")
            secrets[kid] = secret.encode()
            first = first or kid
        if not first:
            raise KeyConfigError("PLAYBACK_KEYS is empty")
        return cls(signing_kid=first, secrets=secrets)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_\-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload_b64: str) -> bytes:
    return hmac.new(secret, payload_b64.encode(), hashlib.sha256).digest()


def sign_token(keys: PlaybackKeys, *, video_id: uuid.UUID, expires_at: int) -> str:
    """``base64url(payload).base64url(HMAC-SHA256(secret[kid], base64url(payload)))``, payload ``{v, exp, kid}``."""
    payload = json.dumps(
        {"exp": int(expires_at), "kid": keys.signing_kid, "v": str(video_id)},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    payload_b64 = _b64(payload)
    return f"{payload_b64}.{_b64(_mac(keys.secrets[keys.signing_kid], payload_b64))}"


def verify_token(keys: PlaybackKeys, token: str, *, video_id: uuid.UUID, now: float | None = None) -> int:
    """Check signature, key id, video and expiry; return the expiry, or raise ``TokenError``.

    The signature is checked before the expiry so that a forged expiry reads as invalid, not as expired.
    """
    if not token:
        raise TokenError(TOKEN_INVALID, "a playback token is required (?token=)")
    payload_b64, dot, sig_b64 = token.partition(".")
    if not dot or len(token) > 512:
        raise TokenError(TOKEN_INVALID, "malformed playback token")
    try:
        payload = json.loads(_unb64(payload_b64))
        sig = _unb64(sig_b64)
    except (ValueError, binascii.Error) as e:
        raise TokenError(TOKEN_INVALID, "malformed playback token") from e
    if not isinstance(payload, dict):
        raise TokenError(TOKEN_INVALID, "malformed playback token")
    kid, exp, vid = payload.get("kid"), payload.get("exp"), payload.get("v")
    secret = keys.secrets.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise TokenError(TOKEN_INVALID, "the playback token was signed with an unknown key")
    if not hmac.compare_digest(sig, _mac(secret, payload_b64)):
        raise TokenError(TOKEN_INVALID, "the playback token's signature does not match")
    if type(exp) is not int or not isinstance(vid, str):  # bool is an int subclass: refuse it
        raise TokenError(TOKEN_INVALID, "malformed playback token")
    if vid != str(video_id):
        raise TokenError(TOKEN_INVALID, "the playback token is for another video")
    if exp <= (time.time() if now is None else now):
        raise TokenError(TOKEN_EXPIRED, "the playback token has expired")
    return exp


def clamp_ttl(requested: int | None, *, default: int, minimum: int, maximum: int) -> int:
    """The token lifetime: the default when absent, otherwise clamped into [minimum, maximum]."""
    if requested is None:
        return default
    return max(minimum, min(maximum, int(requested)))


# -- the /play URL space ------------------------------------------------------------------------------------

#: what /play serves (the stream's playlists, segments, captions and thumbnails), typed by the one table
PLAYABLE_EXTENSIONS = frozenset(
    {"m3u8", "m4s", "mp4", "m4a", "aac", "ts", "vtt", "webvtt", "jpg", "jpeg", "png", "webp", "mpd"}
)
PLAYLIST_EXTENSIONS = frozenset({"m3u8", "mpd"})
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class PlayPath:
    """A validated /play path: the storage key it serves and how to serve it."""

    key: str
    extension: str
    content_type: str
    rewrite: str | None  # "hls" | "dash" | "thumbs_vtt" | None (bytes as stored)


def resolve_play_path(video_id: uuid.UUID, path: str) -> PlayPath | None:
    """Map ``/play/<id>/<path>`` onto its storage key, or None (→ 404) for anything that is not a plain file path.

    Only ``[A-Za-z0-9_.-]`` segments are accepted (so ``..``, ``.``, empty segments, backslashes, absolute and
    percent-encoded tricks never reach the store) and only media extensions are served.
    """
    if not path or len(path) > 512 or path.startswith("/"):
        return None
    parts = path.split("/")
    if len(parts) > 6 or any(p in ("", ".", "..") or not _SEGMENT_RE.match(p) for p in parts):
        return None
    ext = parts[-1].rsplit(".", 1)[-1].lower() if "." in parts[-1] else ""
    if ext not in PLAYABLE_EXTENSIONS:
        return None
    content_type = content_types.CONTENT_TYPES[ext]
    if parts[0] == "thumbs":
        if len(parts) < 2:
            return None
        key = f"thumbs/{video_id}/" + "/".join(parts[1:])
        rewrite = "thumbs_vtt" if ext in ("vtt", "webvtt") else None
    else:
        key = f"streams/{video_id}/{path}"
        rewrite = "hls" if ext == "m3u8" else "dash" if ext == "mpd" else None
    return PlayPath(key=key, extension=ext, content_type=content_type, rewrite=rewrite)


def play_url(base_url: str, video_id: uuid.UUID, path: str, token: str) -> str:
    """The absolute, tokenized URL of a file under ``/play/<id>/``."""
    return f"{base_url.rstrip('/')}/play/{video_id}/{path}?token={quote(token, safe='')}"


# -- rewriting: every child URI carries the token ------------------------------------------------------------

_ABSOLUTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:|/)")


def with_token(uri: str, token: str, *, amp: str = "&") -> str:
    """``uri`` with ``token=`` added to its query; absolute URIs are left alone (never leak a token off-site)."""
    if not uri or _ABSOLUTE.match(uri):
        return uri
    path, hash_sep, fragment = uri.partition("#")
    sep = amp if "?" in path else "?"
    return f"{path}{sep}token={quote(token, safe='')}{hash_sep}{fragment}"


_URI_ATTR = re.compile(r'(URI=")([^"]*)(")')


def rewrite_hls(text: str, token: str) -> str:
    """Add the token to every URI of an HLS playlist: URI lines (variants, segments) and ``URI="..."`` attributes."""
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            out.append(line)
        elif stripped.startswith("#"):
            if stripped.startswith("#EXT"):
                line = _URI_ATTR.sub(lambda m: m.group(1) + with_token(m.group(2), token) + m.group(3), line)
            out.append(line)
        else:
            out.append(with_token(stripped, token))
    return "\n".join(out) + "\n"


_DASH_ATTR = re.compile(r'(\s(?:media|initialization|index|sourceURL)=")([^"]*)(")')


def rewrite_dash(text: str, token: str) -> str:
    """Add the token to every segment URL of a DASH MPD (SegmentTemplate/SegmentURL/Initialization attributes).

    ``BaseURL`` is left alone: the templates are resolved against it, so a query there would break them.
    """
    return _DASH_ATTR.sub(
        lambda m: m.group(1) + with_token(m.group(2), token, amp="&amp;") + m.group(3), text
    )


_IMAGE_CUE = re.compile(r"^([^\s#?]+\.(?:jpe?g|png|webp))(\?[^\s#]*)?(#\S*)?$", re.IGNORECASE)


def rewrite_thumbnails_vtt(text: str, token: str) -> str:
    """Add the token to the image URL of every cue of a thumbnail index (``sprite.jpg#xywh=...``)."""
    out: list[str] = []
    for line in text.splitlines():
        m = _IMAGE_CUE.match(line.strip())
        out.append(with_token(line.strip(), token) if m else line)
    return "\n".join(out) + "\n"


REWRITERS: Mapping[str, Callable[[str, str], str]] = {
    "hls": rewrite_hls,
    "dash": rewrite_dash,
    "thumbs_vtt": rewrite_thumbnails_vtt,
}


# -- byte ranges ---------------------------------------------------------------------------------------------


class RangeNotSatisfiable(Exception):
    """The requested range lies outside the object (→ 416)."""


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(start, end)`` one ``Range: bytes=`` asks for, or None to send the whole object.

    Malformed and multi-range headers are ignored (RFC 9110 allows it); a range starting past the end raises.
    """
    if not header:
        return None
    m = _RANGE.match(header.strip().replace(" ", ""))
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable
        return (max(0, size - n), size - 1) if size else _unsatisfiable()
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


def _unsatisfiable() -> tuple[int, int]:
    raise RangeNotSatisfiable
