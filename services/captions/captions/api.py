"""HTTP handlers of the captions service and its one route table (the OpenAPI document is built from it)."""

from __future__ import annotations

import math
import uuid

from aiohttp import web

from common import credits, db
from common.auth import Principal, owned, require_user
from common.credits import PRICES
from common.errors import CodedError, NotFound
from common.events.jobs import JobSubject
from common.http import json_response, parse_uuid, read_json
from common.openapi import Api, Route
from common.service import POOL, STORE, settings_of
from common.storage import ObjectNotFound
from common.views import view_of

from . import store, tracks
from .config import CaptionsSettings
from .errors import Code
from .jobs import PRODUCER, JobParams, publish_files, tracks_changed
from .models import (
    CaptionsJobView,
    CaptionsRequest,
    CuesEdit,
    JobKind,
    QualityReportView,
    Track,
    TrackList,
    TrackView,
    VideoRef,
)
from .profiles import profile_for
from .stt import spoken_language
from .translate import ensure_available

FORMATS = {
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json",
}
HOLD_TTL_S = 6 * 3600  # a queue of long videos may wait this long for a worker before its hold lapses


async def _own_video(request: web.Request, video_id: uuid.UUID, owner: Principal) -> VideoRef:
    async with request.app[POOL].acquire() as conn:
        return owned(await store.get_video(conn, video_id=video_id), owner, "video")


async def _own_track(request: web.Request, *, for_update: bool = False) -> tuple[uuid.UUID, Track]:
    user = await require_user(request)
    track_id = parse_uuid(request.match_info["track_id"], what="track")
    async with request.app[POOL].acquire() as conn:
        track = owned(await store.get_track(conn, track_id=track_id), user, "track")
    return user.user_id, track


async def request_captions(request: web.Request) -> web.Response:
    """Transcribe a video (and translate it): a paid job, priced per started minute and per output language."""
    user = await require_user(request)
    video = await _own_video(request, parse_uuid(request.match_info["video_id"], what="video"), user)
    body = await read_json(request, CaptionsRequest)
    settings = settings_of(request, CaptionsSettings)
    language = spoken_language(body.language) or "auto"  # a language the model lacks: 422 before any hold
    targets = sorted(set(body.translate_to) - {language})
    if targets:
        ensure_available(settings)  # no Gemini key: refused before anything is held
    if not video.audio_codec:
        raise CodedError(Code.NO_AUDIO, "the video has no audio track to transcribe")
    prices = request.app[PRICES]
    minutes = max(1, math.ceil(video.duration_s / 60))
    transcript_credits = await prices.cost("captions_per_minute", minutes)
    per_translation = await prices.cost("translation_per_minute", minutes) if targets else 0
    params = view_of(
        JobParams,
        video,
        language=language,
        translate_to=targets,
        transcript_credits=transcript_credits,
        credits_per_translation=per_translation,
    )
    async with db.transaction(request.app[POOL]) as conn:
        job = await credits.request_paid_job(
            conn,
            kind=JobKind.CAPTIONS,
            owner_id=user.user_id,
            params=params.to_params(),
            amount=transcript_credits + per_translation * len(targets),
            reason=f"captions for video {video.video_id}",
            producer=PRODUCER,
            ttl_s=HOLD_TTL_S,
            subject=JobSubject(kind="video", id=str(video.video_id)),  # names its video in the job list
        )
    return json_response(CaptionsJobView(job=job.public()), status=202)


async def list_tracks(request: web.Request) -> web.Response:
    """A video's caption tracks with their quality reports."""
    user = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    await _own_video(request, video_id, user)
    async with request.app[POOL].acquire() as conn:
        live = await store.list_tracks(conn, video_id=video_id)
    return json_response(TrackList(items=[TrackView.of(t) for t in live]))


async def get_file(request: web.Request) -> web.StreamResponse:
    """A track as WebVTT, SRT or JSON (cues with word times)."""
    ext = request.match_info["ext"]
    if ext not in FORMATS:
        raise NotFound("track", "tracks are served as .vtt, .srt or .json")
    _, track = await _own_track(request)
    key = {"vtt": track.vtt_key, "srt": track.srt_key, "json": track.json_key}[ext]
    try:
        body = await request.app[STORE].read_bytes(key)
    except ObjectNotFound as e:
        raise NotFound("track", "the track's file is gone") from e
    return web.Response(
        body=body,
        headers={
            "Content-Type": FORMATS[ext],
            "Content-Disposition": f'inline; filename="{track.video_id}.{track.language}.{ext}"',
            "Cache-Control": "private, no-cache",
            "ETag": f'"{track.id}-v{track.version}-{ext}"',
        },
    )


async def quality_report(request: web.Request) -> web.Response:
    """A track's current version checked by its language's rules: the rules, and every cue that breaks one."""
    _, track = await _own_track(request)
    async with request.app[POOL].acquire() as conn:
        video = await store.get_video(conn, video_id=track.video_id)
        records = await store.get_cues(conn, track_id=track.id, version=track.version)
    if video is None:
        raise NotFound("video")
    cues = tracks.cues_of(records)
    counts, problems = tracks.problems(
        cues, language=track.language, duration_s=video.duration_s, fps=video.fps
    )
    report = QualityReportView(
        track_id=track.id,
        version=track.version,
        language=track.language,
        cue_count=len(cues),
        limits=tracks.limits_of(profile_for(track.language), fps=video.fps),
        counts=counts,
        problems=problems,
    )
    return json_response(report)


async def edit_cues(request: web.Request) -> web.Response:
    """A user's edit: the whole cue list, checked by the language's rules, stored as the next version."""
    user_id, track = await _own_track(request)
    body = await read_json(request, CuesEdit)
    async with request.app[POOL].acquire() as conn:
        video = await store.get_video(conn, video_id=track.video_id)
    if video is None:
        raise NotFound("video")
    cues = [tracks.EditedCue(id=c.id, start=c.start, end=c.end, text=c.text) for c in body.cues]
    built, violations = tracks.edited(
        cues, language=track.language, duration_s=video.duration_s, fps=video.fps
    )
    if violations:
        raise CodedError(
            Code.INVALID_CUES,
            f"{len(violations)} cue(s) break the {track.language} subtitle rules",
            status=422,
            violations=[
                {"cue_id": v.cue_id, "rule": v.rule.value, "detail": v.detail} for v in violations[:200]
            ],
        )
    _check_version(body.base_version, track.version)  # a stale edit writes no file
    prefix = f"captions/{track.video_id}/edits/{track.id}/v{track.version + 1}"
    keys = await publish_files(request.app[STORE], prefix, built)
    try:
        async with db.transaction(request.app[POOL]) as conn:
            locked = await store.get_track(conn, track_id=track.id, for_update=True)
            if locked is None:
                raise NotFound("track")
            _check_version(body.base_version, locked.version)
            if locked.version != track.version:  # another edit won the race: its files, not ours, are v+1
                raise CodedError(
                    Code.VERSION_CONFLICT,
                    f"the track moved on to version {locked.version} during this edit: reload and edit again",
                    status=409,
                )
            updated = await store.add_version(
                conn, track=locked, cues=built.records(), quality=built.quality, keys=keys, author_id=user_id
            )
            await tracks_changed(conn, video_id=track.video_id, owner_id=track.owner_id)
    except BaseException:
        for key in keys:  # nothing stays stored for an edit that did not land
            await request.app[STORE].delete(key)
        raise
    return json_response(TrackView.of(updated))


def _check_version(base_version: int | None, version: int) -> None:
    if base_version is not None and base_version != version:
        raise CodedError(
            Code.VERSION_CONFLICT,
            f"the track is at version {version}, not {base_version}: reload and edit again",
            status=409,
        )


async def delete_track(request: web.Request) -> web.Response:
    """Remove a track (from the player too)."""
    _, track = await _own_track(request)
    async with db.transaction(request.app[POOL]) as conn:
        deleted = await store.delete_track(conn, track_id=track.id)
        if deleted is not None:
            await tracks_changed(conn, video_id=track.video_id, owner_id=track.owner_id)
    return web.Response(status=204)


_CAPTIONS = "/api/v1/videos/{video_id}/captions"
_TRACK = "/api/v1/captions/{track_id}"
_NO_VIDEO = {404: ["video.not_found"]}
_NO_TRACK = {404: ["track.not_found"]}
ROUTES = (
    Route(
        "POST",
        _CAPTIONS,
        request_captions,
        body=CaptionsRequest,
        response=CaptionsJobView,
        status=202,
        errors={
            404: ["video.not_found"],
            422: [Code.TRANSLATION_UNAVAILABLE, Code.NO_AUDIO],
            503: [credits.CreditCode.PRICES_UNAVAILABLE],
        },
        idempotent=True,
        description=(
            "A paid job (credits: captions_per_minute per started minute, plus translation_per_minute per started"
            " minute and target language). `language`: a code or `auto`. Follow the job at /api/v1/jobs/{id}."
        ),
    ),
    Route("GET", _CAPTIONS, list_tracks, response=TrackList, errors=_NO_VIDEO),
    Route(
        "GET",
        _TRACK + ".{ext}",
        get_file,
        raw={200: "the track as WebVTT (`.vtt`), SubRip (`.srt`) or JSON with word times (`.json`)"},
        path_types={"ext": str},
        errors=_NO_TRACK,
    ),
    Route(
        "GET",
        _TRACK + "/quality",
        quality_report,
        response=QualityReportView,
        errors={404: ["track.not_found", "video.not_found"]},
        description="The track's current version against its language's subtitle rules (docs/captions.md): the"
        " rules' numbers, violations per rule, and each cue that breaks one with its number and times.",
    ),
    Route(
        "PUT",
        _TRACK + "/cues",
        edit_cues,
        body=CuesEdit,
        response=TrackView,
        errors={
            404: ["track.not_found", "video.not_found"],
            409: [Code.VERSION_CONFLICT],
            422: [Code.INVALID_CUES],
        },
    ),
    Route("DELETE", _TRACK, delete_track, status=204, errors=_NO_TRACK),
)
API = Api(
    title="Reelforge captions",
    description="Speech-to-text, translation and subtitle files (WebVTT, SRT, JSON) for a user's videos.",
    routes=ROUTES,
)

__all__ = ["API"]
