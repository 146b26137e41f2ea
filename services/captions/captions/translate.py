"""Cue translation with Gemini (``google-genai``): structured output keyed by cue id, then re-flowed.

One request per batch of cues asks for a JSON object whose properties are exactly the batch's cue ids (a JSON schema
with every id required and nothing else allowed), so a translation can never shift to another cue. The answer is
checked (JSON, the same ids, non-empty texts); retries are ours, not the SDK's: 429, 408 and 5xx answers, transport
errors and unusable answers are tried again with exponential back-off, or after the server's ``RetryInfo`` delay.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from common.logging import get_logger
from common.settings import section

from .config import CaptionsSettings
from .cues import Cue, reflow
from .errors import CaptionsError, Code
from .profiles import DEFAULT_FPS, profile_for

log = get_logger(__name__)
#: the target's reading speed, said to the model: a translation that is longer than its cue can show in time is
#: condensed by the translator, as a subtitler would, rather than crammed in by the re-flow
_BUDGET = (
    " Each cue is on screen for a fixed time, so its translation may hold at most this many characters"
    " (condense rather than exceed it): "
)

_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")
_SYSTEM = (
    "You translate video subtitles from the language with code {source} to the language with code {target}. "
    "The user message is a JSON object that maps cue ids to the text of consecutive subtitle cues. Answer with a "
    "JSON object with exactly the same keys, each mapped to the translation of that cue's text. Translate every "
    "cue; never merge, split, reorder or drop cues; a sentence that continues across cues stays split at the same "
    "place. Write natural, concise subtitle language. Answer with the JSON object only."
)


@dataclass(frozen=True, kw_only=True)
class GeminiConfig:
    """Where and how to call Gemini (the ``gemini_*`` and ``translate_*`` settings, defaults included)."""

    api_key: str
    base_url: str
    model: str
    timeout_s: float
    batch_cues: int
    attempts: int
    retry_initial_s: float
    retry_max_s: float

    @classmethod
    def from_settings(cls, settings: CaptionsSettings) -> GeminiConfig:
        """The configuration in ``settings``; ``captions.translation_unavailable`` when no key is set."""
        ensure_available(settings)
        return section(cls, settings, "gemini_", "translate_")


def ensure_available(settings: CaptionsSettings) -> None:
    """Refuse translation at once (``captions.translation_unavailable``) when no Gemini key is configured."""
    if not settings.gemini_api_key:
        raise CaptionsError(
            Code.TRANSLATION_UNAVAILABLE, "translation needs a Gemini API key, and none is configured"
        )


class GeminiTranslator:
    """Translates cue texts; one client for its lifetime (``await aclose()``)."""

    def __init__(
        self, config: GeminiConfig, *, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    ) -> None:
        self.config, self._sleep = config, sleep
        self._client = genai.Client(
            api_key=config.api_key,
            http_options=types.HttpOptions(
                base_url=config.base_url or None,
                api_version="v1beta",
                timeout=int(config.timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),  # retries are ours (and honour RetryInfo)
            ),
        )

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aio.aclose()

    async def translate(self, cues: Sequence[Cue], *, source: str, target: str) -> dict[str, str]:
        """Each cue id mapped to its text in ``target``."""
        out: dict[str, str] = {}
        size = max(1, self.config.batch_cues)
        for k in range(0, len(cues), size):
            part = cues[k : k + size]
            batch = {c.id: c.text for c in part}
            out.update(
                await self._batch(batch, source=source, target=target, budgets=char_budgets(part, target))
            )
        return out

    async def _batch(
        self, batch: dict[str, str], *, source: str, target: str, budgets: dict[str, int]
    ) -> dict[str, str]:
        ids = list(batch)
        config = types.GenerateContentConfig(
            system_instruction=_SYSTEM.format(source=source, target=target) + _BUDGET + json.dumps(budgets),
            response_mime_type="application/json",
            response_json_schema={
                "type": "object",
                "properties": {i: {"type": "string"} for i in ids},
                "required": ids,
                "additionalProperties": False,
                "propertyOrdering": ids,
            },
            temperature=0.2,
        )
        contents = json.dumps(batch, ensure_ascii=False)
        failure = CaptionsError(Code.TRANSLATION_FAILED, "no attempt was made")
        for attempt in range(1, max(1, self.config.attempts) + 1):
            delay = self._backoff(attempt)
            try:
                response = await self._client.aio.models.generate_content(
                    model=self.config.model, contents=contents, config=config
                )
                return parse_answer(response.text, ids)
            except genai_errors.APIError as e:
                if e.code not in _RETRYABLE:
                    raise CaptionsError(
                        Code.TRANSLATION_FAILED,
                        f"Gemini refused the request: {e.code} {e.status}: {e.message}",
                    ) from e
                failure = CaptionsError(
                    Code.TRANSLATION_FAILED, f"Gemini answered {e.code} {e.status}: {e.message}"
                )
                delay = retry_delay(e.details) or delay
            except CaptionsError as e:
                failure = e
            except Exception as e:  # the SDK's transport raises its HTTP library's own errors
                failure = CaptionsError(Code.TRANSLATION_FAILED, f"Gemini could not be reached: {e!r}")
            log.warning(
                "translation attempt failed", attempt=attempt, code=failure.code, reason=failure.message
            )
            if attempt < self.config.attempts:
                await self._sleep(delay)
        raise failure

    def _backoff(self, attempt: int) -> float:
        base = min(self.config.retry_max_s, self.config.retry_initial_s * 2.0 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)


def retry_delay(details: Any) -> float | None:
    """The delay a Google API error's ``RetryInfo`` asks for, in seconds (None when it has none)."""
    error = details.get("error", details) if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def parse_answer(text: str | None, ids: Sequence[str]) -> dict[str, str]:
    """The model's answer as id → translation, or ``captions.translation_invalid`` saying what is wrong."""

    def invalid(why: str) -> CaptionsError:
        return CaptionsError(Code.TRANSLATION_INVALID, f"the translation answer {why}")

    if not text:
        raise invalid("is empty")
    try:
        answer = json.loads(text)
    except ValueError as e:
        raise invalid(f"is not JSON: {text[:80]!r}") from e
    if not isinstance(answer, dict):
        raise invalid(f"is not a JSON object but {type(answer).__name__}")
    missing, extra = [i for i in ids if i not in answer], sorted(set(answer) - set(ids))
    if missing or extra:
        raise invalid(f"does not match the cues: missing {missing[:5]}, unknown {extra[:5]}")
    empty = [i for i in ids if not isinstance(answer[i], str) or not answer[i].strip()]
    if empty:
        raise invalid(f"has no text for {empty[:5]}")
    return {i: " ".join(str(answer[i]).split()) for i in ids}


def char_budgets(cues: Sequence[Cue], target: str) -> dict[str, int]:
    """What each cue's translation may hold to be read in time in ``target`` (its lines, its reading speed)."""
    p = profile_for(target)
    lines = int(p.max_lines * p.max_chars_per_line)
    return {c.id: max(1, min(lines, int(p.max_cps * (c.end_ms - c.start_ms) / 1000))) for c in cues}


async def translate_track(
    translator: GeminiTranslator,
    cues: Sequence[Cue],
    *,
    source: str,
    target: str,
    media_end_ms: int,
    fps: float = DEFAULT_FPS,
) -> list[Cue]:
    """A translated track: the cues translated by id, then re-flowed to ``target``'s profile."""
    texts = await translator.translate(cues, source=source, target=target)
    return reflow(cues, texts, profile_for(target), media_end_ms=media_end_ms, fps=fps)
