"""Local web app (``fkp serve``): photos and the browser's webcam, keypoints drawn in the page.

Needs the ``web`` extra (FastAPI, uvicorn, python-multipart, websockets). The
page is plain HTML/CSS/JS served from the package: nothing loads from the internet.
"""

from __future__ import annotations

from .app import create_app
from .engine import Engine, WebSettings

__all__ = ["Engine", "WebSettings", "create_app"]
