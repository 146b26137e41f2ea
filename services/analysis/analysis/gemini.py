"""The Gemini engine: one ``generate_content`` request per video returns the whole analysis as JSON against a
schema; the answer is checked against the chapter and highlight rules, retried once with the errors, then
repaired. Every request goes through the quota governor, which owns retries (the SDK's are turned off)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from common.jobs import JobFailure

from .models import Analysis, AnalysisErrorCode, AnalysisOptions, AnalysisResult, Detail, Engine
from .quota import QuotaGovernor, transport_errors
from .rules import (
    MAX_TITLE_CHARS,
    MIN_CHAPTER_S,
    MIN_CHAPTERS,
    chapter_violations,
    clock,
    highlight_violations,
    normalize,
    repair_chapters,
    repair_highlights,
    sentence_starts,
    snap_chapters,
)
from .transcript import Sentence, Transcript, split_sentences

PROMPT_VERSION = "analysis-v1"
# How long each part is, by detail: summary sentences, key points, highlights.
DETAIL_SIZES = {Detail.BRIEF: (3, 3, 3), Detail.STANDARD: (6, 5, 5), Detail.DETAILED: (12, 10, 8)}
# At most this much of a bad answer is sent back when asking for a corrected one.
ECHO_CHARS = 4000

_STRING_LIST = {"type": "array", "items": {"type": "string"}}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "key_points": _STRING_LIST,
        "chapters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start_s": {"type": "number", "minimum": 0},
                    "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
                },
                "required": ["start_s", "title"],
            },
        },
        "highlights": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start_s": {"type": "number", "minimum": 0},
                    "end_s": {"type": "number", "minimum": 0},
                    "quote": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["start_s", "end_s", "quote", "reason"],
            },
        },
        "keywords": _STRING_LIST,
    },
    "required": ["title", "summary", "key_points", "chapters", "highlights", "keywords"],
}


def make_client(*, api_key: str, base_url: str | None = None, timeout_s: float = 120.0) -> genai.Client:
    """A google-genai client for the Gemini API (``v1beta``) that never retries by itself (the governor does)."""
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=base_url,
            api_version="v1beta",
            timeout=int(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )


def estimate_tokens(text: str) -> int:
    """A cautious token estimate: four Latin characters or one Hangul/CJK character per token."""
    wide = sum(1 for ch in text if ord(ch) >= 0x1100)
    return wide + (len(text) - wide) // 4 + 1


def transcript_block(sentences: list[Sentence], *, language: str) -> str:
    """The transcript as the prompt's first part: one sentence a line, each with its start time."""
    lines = [f"[{clock(s.start_s)}] {s.text}" for s in sentences]
    return f"TRANSCRIPT (language: {language}; each line begins at the time shown)\n" + "\n".join(lines)


def instructions(*, detail: Detail, output_language: str, duration_s: float, prompt_version: str) -> str:
    """What to do with the transcript (after it, so that the transcript is the shared prefix)."""
    summary, key_points, highlights = DETAIL_SIZES[detail]
    return (
        f"[{prompt_version}] Analyse the video whose transcript is above. The video lasts {duration_s:.0f} s "
        f"({clock(duration_s)}). Write in the language {output_language!r}, except quotes. Return JSON only:\n"
        f"- title: a short title for the video;\n"
        f"- summary: about {summary} sentences;\n"
        f"- key_points: about {key_points} short points;\n"
        f"- chapters: YouTube chapters: the first at 0, at least {MIN_CHAPTERS}, in ascending order, each at least "
        f"{MIN_CHAPTER_S:.0f} s long, every start_s (seconds) the start time of a transcript line and before "
        f"{duration_s:.0f}, titles of at most {MAX_TITLE_CHARS} characters;\n"
        f"- highlights: about {highlights} moments worth watching: start_s and end_s in seconds inside the video, "
        f"quote copied word for word from the transcript, reason in one sentence;\n"
        f"- keywords: up to 10."
    )


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def _model(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text[:ECHO_CHARS])])


@dataclass(frozen=True, kw_only=True)
class GeminiEngine:
    """Analyses transcripts with one Gemini model; ``model`` and ``prompt_version`` are stored with each result."""

    client: genai.Client
    governor: QuotaGovernor
    model: str
    prompt_version: str = PROMPT_VERSION
    temperature: float = 0.2
    max_output_tokens: int = 8192
    # Reserved per request on top of the prompt until usage_metadata tells the real total.
    expected_output_tokens: int = 1024
    count_tokens: bool = True
    engine: Engine = Engine.GEMINI

    async def _prompt_tokens(self, contents: list[types.Content]) -> int:
        if self.count_tokens:
            # countTokens has its own, separate quota; if it fails, the estimate will do.
            failures: tuple[type[BaseException], ...] = (genai_errors.APIError, *transport_errors())
            try:
                counted = await self.client.aio.models.count_tokens(model=self.model, contents=contents)
            except failures:
                counted = None
            if counted is not None and counted.total_tokens is not None:
                return counted.total_tokens
        return estimate_tokens("".join(p.text or "" for c in contents for p in c.parts or []))

    async def _generate(self, contents: list[types.Content]) -> str | None:
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=RESPONSE_SCHEMA,
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
        )
        tokens = await self._prompt_tokens(contents) + self.expected_output_tokens
        response = await self.governor.call(
            lambda: self.client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            ),
            tokens=tokens,
            used_tokens=lambda r: r.usage_metadata.total_token_count if r.usage_metadata else None,
        )
        return response.text

    async def analyze(
        self,
        transcript: Transcript,
        options: AnalysisOptions,
        *,
        duration_s: float | None = None,
    ) -> AnalysisResult:
        """The analysis of ``transcript``; rule violations are retried once, then the valid part is kept and
        ``warnings`` says what was dropped. Raises ``JobFailure`` (``model.*``) or ``QuotaParked``."""
        sentences = split_sentences(transcript)
        if not sentences:
            raise JobFailure(AnalysisErrorCode.TRANSCRIPT_EMPTY, "the transcript has no text to analyse")
        duration = max(duration_s or 0.0, transcript.duration_s)
        starts = sentence_starts(sentences)
        spoken = normalize(" ".join(s.text for s in sentences))
        prompt = [
            _user(transcript_block(sentences, language=transcript.language)),
            _user(
                instructions(
                    detail=options.detail,
                    output_language=options.output_language or transcript.language,
                    duration_s=duration,
                    prompt_version=self.prompt_version,
                )
            ),
        ]
        follow_up: list[types.Content] = []
        best: Analysis | None = None
        errors: list[str] = []
        malformed_retried = rules_retried = False
        while True:
            text = await self._generate(prompt + follow_up)
            try:
                answer = msgspec.json.decode(text or "", type=Analysis)
            except msgspec.DecodeError as exc:
                if malformed_retried:
                    if best is not None:
                        break
                    raise JobFailure(
                        AnalysisErrorCode.MODEL_MALFORMED_OUTPUT,
                        f"the model's answer was not the expected JSON twice: {exc}",
                    ) from exc
                malformed_retried = True
                follow_up += [
                    _model(text or ""),
                    _user(
                        f"That answer is not valid JSON for the schema ({exc}). "
                        "Answer again with the whole JSON object only."
                    ),
                ]
                continue
            best = msgspec.structs.replace(
                answer, chapters=snap_chapters(answer.chapters, starts, duration_s=duration)
            )
            errors = chapter_violations(best.chapters, duration_s=duration) + highlight_violations(
                best.highlights, duration_s=duration, transcript_text=spoken
            )
            if not errors or rules_retried:
                break
            rules_retried = True
            follow_up += [
                _model(json.dumps(msgspec.to_builtins(answer), ensure_ascii=False)),
                _user(
                    "That answer breaks these rules:\n- "
                    + "\n- ".join(errors)
                    + "\nAnswer again with the whole corrected JSON object."
                ),
            ]
        chapters, chapter_warnings = repair_chapters(best.chapters, duration_s=duration)
        highlights, highlight_warnings = repair_highlights(
            best.highlights, duration_s=duration, transcript_text=spoken
        )
        warnings = [f"the model's answer still broke a rule after a retry: {e}" for e in errors]
        return AnalysisResult(
            **msgspec.structs.asdict(msgspec.structs.replace(best, chapters=chapters, highlights=highlights)),
            engine=Engine.GEMINI,
            model=self.model,
            prompt_version=self.prompt_version,
            warnings=warnings + chapter_warnings + highlight_warnings,
        )
