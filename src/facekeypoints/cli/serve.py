"""fkp serve: a local web app for photos and the browser's webcam (keypoints drawn in the page)."""

from __future__ import annotations

import argparse
import sys

from .options import non_negative_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="local web app: photos and webcam in the browser", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: localhost only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--model68", default=None, metavar="MODEL",
                   help="68-landmark ONNX model for points=68 requests (default: the shipped points68.onnx)")
    p.add_argument("--refine", type=non_negative_int, default=1, help="re-centred passes per face (0 = one pass)")
    p.add_argument("--workers", type=int, default=None, help="detection threads (default: CPU cores, at most 4)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload (default 10 MB)")
    p.add_argument("--max-megapixels", type=float, default=40.0, help="largest accepted image (default 40 MP)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import FkpError

    try:
        import uvicorn

        from ..web import WebSettings, create_app
    except ModuleNotFoundError as e:
        raise FkpError(f"serve needs the web extra ({e.name} is missing): pip install \".[web]\" in a source checkout, "
                       "or pip install \"facekeypoints[web]\"") from None
    if not 0 <= args.port <= 65535:
        raise FkpError(f"--port {args.port}: not a port number")
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise FkpError("--max-upload-mb and --max-megapixels must be positive")
    settings = WebSettings(model=args.model, model68=args.model68, refine=args.refine,
                           max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                           max_pixels=int(args.max_megapixels * 1_000_000))
    if args.workers is not None:
        if args.workers < 1:
            raise FkpError("--workers must be at least 1")
        settings.workers = args.workers
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"fkp serve: listening on {args.host}: anyone who can reach this address can use the app "
              "(no authentication)", file=sys.stderr)
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                ws_max_size=settings.max_upload_bytes + 1024)
    return 0
