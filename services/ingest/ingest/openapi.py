"""The OpenAPI 3.1 document of ingest's public paths (the gateway aggregates it)."""

from __future__ import annotations

from typing import Any

from common import openapi
from common.openapi import json_body, json_content, problem_ref, schema_ref, uuid_path_param

_PROBLEM = problem_ref()
_ERRORS = {"401": _PROBLEM, "404": _PROBLEM, "422": _PROBLEM}

_NULLABLE_INT = {"type": ["integer", "null"]}
_JOB_ERROR = {
    "type": ["object", "null"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}


def spec() -> dict[str, Any]:
    """The document."""
    video = {
        "type": "object",
        "required": ["id", "title", "source", "duration_s", "size_bytes", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "title": {"type": "string"},
            "source": {"type": "string", "enum": ["upload", "import", "render", "migration"]},
            "source_url": {"type": ["string", "null"]},
            "duration_s": {"type": "number"},
            "width": {"type": "integer", "description": "display width (after rotation)"},
            "height": {"type": "integer", "description": "display height (after rotation)"},
            "rotation": {"type": "integer", "enum": [0, 90, 180, 270]},
            "fps": {"type": "number"},
            "video_codec": {"type": "string"},
            "audio_codec": {"type": "string"},
            "audio_only": {"type": "boolean"},
            "container": {"type": "string", "examples": ["mp4", "mov", "webm", "mkv"]},
            "size_bytes": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }
    job_ref = {
        "type": "object",
        "required": ["job_id"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "import_id": {"type": "string", "format": "uuid"},
            "search_id": {"type": "string", "format": "uuid"},
            "deduplicated": {"type": "boolean"},
        },
    }
    imp = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "job_id": {"type": "string", "format": "uuid"},
            "url": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "canceled"]},
            "progress": {"type": "number"},
            "stage": {"type": "string"},
            "error": _JOB_ERROR,
            "video_id": {"type": ["string", "null"], "format": "uuid"},
            "allow_audio_only": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }
    result = {
        "type": "object",
        "properties": {
            "position": {"type": "integer", "description": "rank in the platform's own order"},
            "id": {"type": "string"},
            "url": {"type": "string"},
            "title": {"type": "string"},
            "uploader": {"type": "string"},
            "view_count": _NULLABLE_INT,
            "like_count": _NULLABLE_INT,
            "comment_count": _NULLABLE_INT,
            "duration_s": {"type": ["number", "null"]},
            "thumbnail_url": {"type": ["string", "null"]},
            "published_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    search = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "job_id": {"type": "string", "format": "uuid"},
            "platform": {"type": "string", "enum": ["youtube", "tiktok"]},
            "query": {"type": "string"},
            "limit": {"type": "integer"},
            "status": {"type": "string"},
            "progress": {"type": "number"},
            "error": _JOB_ERROR,
            "sort": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "results": {"type": "array", "items": schema_ref("SearchResult")},
        },
    }
    return openapi.document(
        title="Reelforge ingest",
        version="1.0.0",
        description="Uploads, URL imports and platform searches; the video catalogue.",
        paths={
            "/api/v1/videos": {
                "get": {
                    "operationId": "listVideos",
                    "summary": "The caller's videos, newest first",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": json_content(
                            {
                                "type": "object",
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": schema_ref("Video"),
                                    },
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            },
                            "a page of videos",
                        ),
                        "401": _PROBLEM,
                    },
                },
                "post": {
                    "operationId": "uploadVideo",
                    "summary": "Upload a video (streamed; probed before it is accepted)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {
                                            "type": "string",
                                            "contentMediaType": "application/octet-stream",
                                        },
                                        "title": {"type": "string"},
                                        "allow_audio_only": {"type": "boolean"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": json_content("Video", "the stored, probed video"),
                        "401": _PROBLEM,
                        "413": _PROBLEM,
                        "415": _PROBLEM,
                        "422": _PROBLEM,
                    },
                },
            },
            "/api/v1/videos/{video_id}": {
                "parameters": [uuid_path_param("video_id")],
                "get": {
                    "operationId": "getVideo",
                    "summary": "One of the caller's videos",
                    "responses": {
                        "200": json_content("Video", "the video"),
                        **_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "deleteVideo",
                    "summary": "Delete a video and its original",
                    "responses": {"204": {"description": "deleted"}, **_ERRORS},
                },
            },
            "/api/v1/imports": {
                "post": {
                    "operationId": "createImport",
                    "summary": "Import a video from an http(s) URL with yt-dlp (a job of kind import)",
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "required": ["url"],
                            "properties": {
                                "url": {"type": "string", "format": "uri"},
                                "title": {"type": "string"},
                                "allow_audio_only": {"type": "boolean"},
                            },
                        }
                    ),
                    "responses": {
                        "202": json_content(job_ref, "the import job was queued"),
                        "200": json_content(job_ref, "the same URL is already being imported: that job"),
                        **_ERRORS,
                    },
                },
            },
            "/api/v1/imports/{import_id}": {
                "parameters": [uuid_path_param("import_id")],
                "get": {
                    "operationId": "getImport",
                    "summary": "An import and its job state",
                    "responses": {"200": json_content(imp, "the import"), **_ERRORS},
                },
            },
            "/api/v1/searches": {
                "post": {
                    "operationId": "createSearch",
                    "summary": "Search YouTube (keywords) or TikTok (#tag or @user) without downloading",
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "required": ["platform", "query"],
                            "properties": {
                                "platform": {"type": "string", "enum": ["youtube", "tiktok"]},
                                "query": {"type": "string", "maxLength": 200},
                                "limit": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "maximum": 50,
                                    "default": 20,
                                },
                            },
                        }
                    ),
                    "responses": {"202": json_content(job_ref, "the search job was queued"), **_ERRORS},
                },
            },
            "/api/v1/searches/{search_id}": {
                "parameters": [uuid_path_param("search_id")],
                "get": {
                    "operationId": "getSearch",
                    "summary": "A search and its results, sorted",
                    "parameters": [
                        {
                            "name": "sort",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["relevance", "views", "likes", "comments", "recent"],
                            },
                        }
                    ],
                    "responses": {"200": json_content(search, "the search"), **_ERRORS},
                },
            },
        },
        schemas={"Video": video, "SearchResult": result},
    )
