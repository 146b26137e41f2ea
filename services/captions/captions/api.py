"""HTTP handlers of the captions service and its one route table (the OpenAPI document is built from it)."""

from __future__ import annotations

import math
import uuid

from aiohttp import web

from common import credits, db
from common.auth import require_user
from common.credits import PriceList
from common.errors import CodedError, NotFound
from common.http import json_response, parse_uuid, read_json
from common.openapi import Api, Route
from common.service import POOL, STORE, settings_of
from common.storage import ObjectNotFound

from . import store, tracks
from .config import CaptionsSettings
from .errors import Code
from .jobs import PRODUCER, JobParams, publish_files, tracks_changed
from .models import CaptionsJobView, CaptionsRequest, CuesEdit, JobKind, Track, TrackList, TrackView, VideoRef
from .translate import ensure_available

PRICES: web.AppKey[PriceList] = web.AppKey("prices", PriceList)
FORMATS = {
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json",
}
HOLD_TTL_S = 6 * 3600  # a queue of long videos may wait this long for a worker before its hold lapses


async def _own_video(request: web.Request, video_id: uuid.UUID, owner_id: uuid.UUID) -> VideoRef:
    async with request.app[POOL].acquire() as conn:
        video = await store.get_video(conn, video_id=video_id)
    if video is None or video.owner_id != owner_id:
        raise NotFound("video")
    return video


async def _own_track(request: web.Request, *, for_update: bool = False) -> tuple[uuid.UUID, Track]:
    user = await require_user(request)
    track_id = parse_uuid(request.match_info["track_id"], what="track id")
    async with request.app[POOL].acquire() as conn:
        track = await store.get_track(conn, track_id=track_id)
    if track is None or track.owner_id != user.user_id:
        raise NotFound("track")
    return user.user_id, track


async def request_captions(request: web.Request) -> web.Response:
    """Transcribe a video (and translate it): a paid job, priced per started minute and per output language."""
    user = await require_user(request)
    video = await _own_video(
        request, parse_uuid(request.match_info["video_id"], what="video id"), user.user_id
    )
    body = await read_json(request, CaptionsRequest)
    settings = settings_of(request, CaptionsSettings)
    targets = sorted(set(body.translate_to) - {body.language})
    if targets:
        ensure_available(settings)  # no Gemini key: refused before anything is held
    if not video.audio_codec:
        raise CodedError(Code.NO_AUDIO, "the video has no audio track to transcribe")
    prices = request.app[PRICES]
    minutes = max(1, math.ceil(video.duration_s / 60))
    transcript_credits = await prices.cost("captions_per_minute", minutes)
    per_translation = await prices.cost("translation_per_minute", minutes) if targets else 0
    params = JobParams(
        video_id=video.video_id,
        storage_key=video.storage_key,
        duration_s=video.duration_s,
        fps=video.fps,
        language=body.language,
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
        )
    return json_response(CaptionsJobView(job=job.public()), status=202)


async def list_tracks(request: web.Request) -> web.Response:
    """A video's caption tracks with their quality reports."""
    user = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video id")
    await _own_video(request, video_id, user.user_id)
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
    keys = await publish_files(
        request.app[STORE], f"captions/{track.video_id}/edits/{track.id}/v{track.version + 1}", built
    )
    async with db.transaction(request.app[POOL]) as conn:
        locked = await store.get_track(conn, track_id=track.id, for_update=True)
        if locked is None:
            raise NotFound("track")
        if body.base_version is not None and body.base_version != locked.version:
            raise CodedError(
                Code.VERSION_CONFLICT,
                f"the track is at version {locked.version}, not {body.base_version}: reload and edit again",
                status=409,
            )
        updated = await store.add_version(
            conn, track=locked, cues=built.records(), quality=built.quality, keys=keys, author_id=user_id
        )
        await tracks_changed(conn, video_id=track.video_id, owner_id=track.owner_id)
    return json_response(TrackView.of(updated))


async def delete_track(request: web.Request) -> web.Response:
    """Remove a track (from the player too)."""
    _, track = await _own_track(request)
    async with db.transaction(request.app[POOL]) as conn:
        deleted = await store.delete_track(conn, track_id=track.id)
        if deleted is not None:
            await tracks_changed(conn, video_id=track.video_id, owner_id=track.owner_id)
    return web.Response(status=204)


ROUTES = (
    Route(
        "POST",
        "/api/v1/videos/{video_id}/captions",
        request_captions,
        body=CaptionsRequest,
        response=CaptionsJobView,
        status=202,
        errors={
            404: ["video.not_found"],
            422: [Code.TRANSLATION_UNAVAILABLE, Code.NO_AUDIO],
            503: [credits.CreditCode.PRICES_UNAVAILABLE],
        },
        description=(
            "A paid job (credits: captions_per_minute per started minute, plus translation_per_minute per started"
            " minute and target language). `language`: a code or `auto`. Follow the job at /api/v1/jobs/{id}."
        ),
    ),
    Route(
        "GET",
        "/api/v1/videos/{video_id}/captions",
        list_tracks,
        response=TrackList,
        errors={404: ["video.not_found"]},
    ),
    Route(
        "GET",
        "/api/v1/captions/{track_id}.{ext}",
        get_file,
        raw={200: "the track as WebVTT (`.vtt`), SubRip (`.srt`) or JSON with word times (`.json`)"},
        path_types={"ext": str},
        errors={404: ["track.not_found"]},
    ),
    Route(
        "PUT",
        "/api/v1/captions/{track_id}/cues",
        edit_cues,
        body=CuesEdit,
        response=TrackView,
        errors={
            404: ["track.not_found", "video.not_found"],
            409: [Code.VERSION_CONFLICT],
            422: [Code.INVALID_CUES],
        },
    ),
    Route(
        "DELETE", "/api/v1/captions/{track_id}", delete_track, status=204, errors={404: ["track.not_found"]}
    ),
)
API = Api(
    title="Reelforge captions",
    description="Speech-to-text, translation and subtitle files (WebVTT, SRT, JSON) for a user's videos.",
    routes=ROUTES,
)

__all__ = ["API", "PRICES"]
