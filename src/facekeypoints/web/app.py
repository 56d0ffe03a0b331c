"""FastAPI app: one offline page, a JSON API and a WebSocket for webcam frames.

Routes: ``GET /`` (the page), ``POST /api/detect`` (a photo -> one ``fkp detect
--json`` record), ``GET /api/health``, ``GET /api/filters``, ``WS /api/stream``
(JPEG frames in, keypoints out), ``GET /docs`` (API reference rendered from
``/openapi.json`` by a local script: FastAPI's default Swagger UI loads from a CDN).
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .engine import Engine, WebSettings, filter_list, filters_available, parse_filters, parse_points, tracker_available
from .upload import (
    MULTIPART_SLACK,
    NEUTRAL_TYPES,
    UploadError,
    check_image_type,
    media_type,
    parse_multipart,
    safe_name,
)

log = logging.getLogger(__name__)

#: The request body as documented in /openapi.json (the handler parses it itself, in memory).
_DETECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the photo"},
                        "filter": {"type": "string", "description": "filter names, comma-separated"},
                        "points": {"type": "string", "description": "15 (default) or 68: also the 68 iBUG landmarks"},
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "400": {"description": "empty, undecodable or truncated image; unknown filter; points not 15 or 68"},
        "413": {"description": "upload over the byte limit (/api/health max_upload_bytes) or image over the pixel limit"},
        "415": {"description": "not an image content type"},
        "422": {"description": "a bad query parameter, e.g. annotated=maybe (one-line detail)"},
        "503": {"description": "points=68 asked for but the 68-landmark model is not installed"},
    },
}


def static_dir() -> Path:
    return Path(str(resources.files("facekeypoints") / "web" / "static"))


def _limit(n: int) -> str:
    """A byte limit as /api/health reports it (``max_upload_bytes``), with its size in MB."""
    return f"{n} bytes = {n / (1024 * 1024):.4g} MB"


async def read_body(request: Request, limit: int, what: str, shown: int | None = None) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (never buffered past it).
    ``shown``: the limit the message names (the upload limit, when ``limit`` adds multipart slack)."""
    shown = limit if shown is None else shown
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"{what} too large ({int(declared)} bytes; limit {_limit(shown)})")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise UploadError(413, f"{what} too large (over the limit of {_limit(shown)})")
    return bytes(buf)


def _one_line(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as the one line every refusal carries, e.g.
    ``query parameter 'annotated': 'maybe' is not a boolean (use 1/0, true/false, yes/no, on/off)``."""
    parts = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ())]
        where = f"{loc[0]} parameter {loc[-1]!r}" if len(loc) >= 2 else "request"
        got = e.get("input")
        if e.get("type") == "bool_parsing":
            msg = f"{got!r} is not a boolean (use 1/0, true/false, yes/no, on/off)"
        else:
            msg = str(e.get("msg", "invalid")).replace("\n", " ") + ("" if got is None else f" (got {str(got)[:40]!r})")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request"


def create_app(settings: WebSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """The app; loads the model now, so a bad model path fails at start-up rather than per request."""
    engine = engine or Engine(settings)
    settings = engine.settings
    app = FastAPI(title="facekeypoints", version=__version__, docs_url=None, redoc_url=None,
                  description="Facial keypoints for photos and webcam frames. Nothing uploaded is stored.")
    app.state.engine = engine
    static = static_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.exception_handler(UploadError)
    async def upload_error(_: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(static / "docs.html", media_type="text/html")

    @app.get("/api/health", summary="Liveness and configuration")
    async def health() -> dict:
        return {"status": "ok", "version": __version__, "model": engine.model.path.name,
                "filters": filters_available(), "tracker": tracker_available(),
                "max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                "workers": settings.workers, "points": engine.points_available()}

    @app.get("/api/filters", summary="Filters that /api/detect and the webcam stream can apply")
    async def filters() -> list[dict]:
        return filter_list()

    @app.post("/api/detect", summary="Faces and 15 keypoints (or 68 landmarks) in one photo", openapi_extra=_DETECT_BODY)
    async def detect(request: Request,
                     annotated: bool = Query(False, description="also return the drawn image as a JPEG data URL"),
                     filter_: str | None = Query(None, alias="filter", description="filter names, comma-separated"),
                     name: str | None = Query(None, description="image name for a raw (non-multipart) body"),
                     points: str | None = Query(None, description="15 (default) or 68: add each face's 68 iBUG "
                                                                  "landmarks as \"landmarks\""),
                     ) -> dict:
        """Send the photo as multipart field ``file`` (or as the raw body with an image content type).
        Returns the same object as one entry of ``fkp detect --json``; with ``annotated=1`` or a
        filter, also ``"annotated"``: the drawn (or filtered) image as a JPEG data URL. ``points=68`` adds
        ``"landmarks"`` (68 ``[x, y]`` in iBUG order) to each face, as ``fkp detect --points 68``."""
        content_type = request.headers.get("content-type", "")
        mt = media_type(content_type)
        limit = settings.max_upload_bytes
        if mt == "multipart/form-data":
            body = await read_body(request, limit + MULTIPART_SLACK, "upload", shown=limit)
            if not body:
                raise UploadError(400, "empty request body; send the photo as multipart field 'file'")
            parts = parse_multipart(body, content_type)
            part = parts.get("file")
            if part is None:
                raise UploadError(400, "no 'file' field in the form; send the photo as multipart field 'file'")
            check_image_type(part.content_type, f"file {safe_name(part.filename)!r}")
            if len(part.data) > limit:
                raise UploadError(413, f"upload too large ({len(part.data)} bytes; limit {_limit(limit)})")
            data, source = part.data, safe_name(part.filename)
            if filter_ is None and "filter" in parts:
                filter_ = parts["filter"].data.decode("utf-8", "replace")
            if points is None and "points" in parts:
                points = parts["points"].data.decode("utf-8", "replace")
        elif mt.startswith("image/") or mt in NEUTRAL_TYPES:
            data, source = await read_body(request, limit, "upload"), safe_name(name)
        else:
            raise UploadError(415, f"content type {mt!r} not supported; send multipart/form-data with field "
                                   "'file', or the image itself with an image/* content type")
        if not data:
            raise UploadError(400, "empty upload (0 bytes)")
        names = parse_filters(filter_)
        n_points = parse_points(points)
        if n_points != 15:
            await engine.call(engine.model_for, n_points)  # 503 before any decoding when it is absent
        return await engine.call(engine.detect_photo, data, source, names, annotated, n_points)

    @app.websocket("/api/stream")
    async def stream(ws: WebSocket) -> None:
        """Webcam frames: binary messages are JPEG frames, each answered by one JSON ``{"type": "frame"}``
        message; a text message ``{"filter": "a,b", "points": 68}`` sets the filters and the point count
        (answered ``{"type": "settings"}``; query parameters ``filter`` and ``points`` set them at the start)."""
        await ws.accept()
        s = await engine.call(engine.new_stream)
        try:
            if ws.query_params.get("filter"):
                s.filters = parse_filters(ws.query_params["filter"])
            if ws.query_params.get("points"):
                await engine.call(s.set_points, parse_points(ws.query_params["points"]))
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    await ws.send_json(await _frame(engine, s, msg["bytes"]))
                elif msg.get("text") is not None:
                    await ws.send_json(await engine.call(_settings, s, msg["text"]))
        except WebSocketDisconnect:
            pass
        except UploadError as e:
            await ws.send_json({"type": "error", "error": e.message})
            await ws.close(code=1008)

    return app


async def _frame(engine: Engine, s, data: bytes) -> dict:
    limit = engine.settings.max_upload_bytes
    if len(data) > limit:
        return {"type": "frame", "error": f"frame too large ({len(data)} bytes; limit {_limit(limit)})", "status": 413}
    try:
        return await engine.call(s.process, data)
    except UploadError as e:
        return {"type": "frame", "error": e.message, "status": e.status}
    except Exception as e:  # noqa: BLE001 - one bad frame must not end the stream
        log.exception("frame failed")
        return {"type": "frame", "error": f"internal error ({type(e).__name__})", "status": 500}


def _settings(s, text: str) -> dict:
    try:
        req = json.loads(text)
        if not isinstance(req, dict):
            raise ValueError("expected a JSON object")
        if "filter" in req:
            s.filters = parse_filters(req["filter"] or None)
        if "points" in req:
            s.set_points(parse_points(req["points"]))
    except (ValueError, TypeError) as e:
        return {"type": "error", "error": f"bad settings message ({e})"}
    except UploadError as e:
        return {"type": "error", "error": e.message}
    return {"type": "settings", "filter": s.filters, **({"points": s.points} if "points" in req else {})}
