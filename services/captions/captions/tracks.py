"""From a transcript (or a translation, or a user's edit) to a track: cues, their quality report and its files.

Pure: no I/O. The job function and the edit handler both build tracks here, so every track passes the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from .cues import Cue, build_cues, layout_text
from .formats import to_json, to_srt, to_vtt
from .models import CueProblem, QualityLimits, TrackKind
from .profiles import DEFAULT_FPS, Profile, profile_for
from .quality import Violation, check, summary
from .transcript import Transcript, Word

# What the player's menu says: the language's own name (an unknown code shows as itself).
LABELS: dict[str, str] = {
    "en": "English",
    "ko": "한국어",
    "ja": "日本語",
    "zh": "中文",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "it": "Italiano",
    "pt": "Português",
    "ru": "Русский",
    "vi": "Tiếng Việt",
    "th": "ไทย",
    "id": "Bahasa Indonesia",
    "hi": "हिन्दी",
    "ar": "العربية",
}


def label_for(language: str, kind: TrackKind) -> str:
    """The track's menu label, e.g. ``English`` or ``한국어 (translated)``."""
    name = LABELS.get(language.split("-")[0].lower(), language)
    return f"{name} (translated)" if kind is TrackKind.TRANSLATED else name


@dataclass(frozen=True, kw_only=True)
class BuiltTrack:
    """A track ready to store: its cues, its quality report (violations by rule) and the files players read."""

    language: str
    kind: TrackKind
    cues: tuple[Cue, ...]
    quality: dict[str, int]

    @property
    def label(self) -> str:
        """The menu label."""
        return label_for(self.language, self.kind)

    def files(self) -> dict[str, tuple[bytes, str]]:
        """``{extension: (body, content type)}`` for ``vtt``, ``srt`` and ``json``."""
        return {
            "vtt": (to_vtt(self.cues).encode(), "text/vtt; charset=utf-8"),
            "srt": (to_srt(self.cues).encode(), "application/x-subrip; charset=utf-8"),
            "json": (to_json(self.cues, language=self.language), "application/json"),
        }

    def records(self) -> list[dict[str, Any]]:
        """The cues as JSON-ready records (what the database keeps per version)."""
        return [msgspec.to_builtins(c) for c in self.cues]


def _built(
    language: str, kind: TrackKind, cues: Sequence[Cue], *, media_end_ms: int, fps: float
) -> BuiltTrack:
    report = summary(check(cues, profile_for(language), media_end_ms=media_end_ms, fps=fps))
    return BuiltTrack(language=language, kind=kind, cues=tuple(cues), quality=report)


def transcribed(transcript: Transcript, *, fps: float = 0.0) -> BuiltTrack:
    """The track of a transcript in its own language, cut to that language's profile."""
    media_end_ms = int(transcript.duration_s * 1000)
    rate = fps or DEFAULT_FPS
    cues = build_cues(
        transcript.words(), profile_for(transcript.language), media_end_ms=media_end_ms, fps=rate
    )
    return _built(transcript.language, TrackKind.TRANSCRIBED, cues, media_end_ms=media_end_ms, fps=rate)


def translated(cues: Sequence[Cue], *, language: str, duration_s: float, fps: float = 0.0) -> BuiltTrack:
    """A translated track (cues already re-flowed to ``language``'s profile)."""
    rate = fps or DEFAULT_FPS
    return _built(language, TrackKind.TRANSLATED, cues, media_end_ms=int(duration_s * 1000), fps=rate)


class EditedCue(msgspec.Struct, frozen=True, kw_only=True):
    """One cue of a user's edit, in seconds."""

    start: float
    end: float
    text: str
    id: str | None = None


def edited(
    edit: Sequence[EditedCue], *, language: str, duration_s: float, fps: float = 0.0
) -> tuple[BuiltTrack, list[Violation]]:
    """A user's cues as a track, laid out in lines for the language, and every rule they break (empty: valid).

    Cues keep the ids they were given; a new cue gets ``e<n>``. Word times are not kept: an edit owns its times.
    """
    profile = profile_for(language)
    rate = fps or DEFAULT_FPS
    media_end_ms = int(duration_s * 1000)
    cues = [
        Cue(
            id=c.id or f"e{n}",
            start_ms=round(c.start * 1000),
            end_ms=round(c.end * 1000),
            lines=layout_text(c.text, profile),
        )
        for n, c in enumerate(edit, 1)
    ]
    violations = check(cues, profile, media_end_ms=media_end_ms, fps=rate)
    return _built(language, TrackKind.EDITED, cues, media_end_ms=media_end_ms, fps=rate), violations


def cues_of(records: Sequence[Mapping[str, Any]]) -> list[Cue]:
    """Cues back from their stored records."""
    return [msgspec.convert(r, Cue) for r in records]


def limits_of(profile: Profile, *, fps: float = 0.0) -> QualityLimits:
    """A profile's rules in the units people read them in."""
    return QualityLimits(
        max_chars_per_line=profile.max_chars_per_line,
        max_lines=profile.max_lines,
        max_chars_per_second=profile.max_cps,
        min_duration_s=profile.min_duration_ms / 1000,
        max_duration_s=profile.max_duration_ms / 1000,
        min_gap_ms=profile.min_gap_ms(fps or DEFAULT_FPS),
        half_width_latin=profile.half_width_latin,
    )


def problems(
    cues: Sequence[Cue], *, language: str, duration_s: float, fps: float = 0.0
) -> tuple[dict[str, int], list[CueProblem]]:
    """Stored cues checked again by their language's rules: violations per rule, and each one with its cue."""
    found = check(cues, profile_for(language), media_end_ms=int(duration_s * 1000), fps=fps or DEFAULT_FPS)
    where = {c.id: (n, c) for n, c in reversed(list(enumerate(cues, 1)))}  # a duplicated id: its first cue
    listed = []
    for v in found:
        number, cue = where[v.cue_id]
        listed.append(
            CueProblem(
                cue_id=v.cue_id,
                number=number,
                start_s=cue.start_ms / 1000,
                end_s=cue.end_ms / 1000,
                rule=v.rule.value,
                detail=v.detail,
            )
        )
    return summary(found), listed


__all__ = [
    "LABELS",
    "BuiltTrack",
    "EditedCue",
    "Word",
    "cues_of",
    "edited",
    "label_for",
    "limits_of",
    "problems",
    "transcribed",
    "translated",
]
