"""The web app over HTTP (FastAPI's TestClient): real photos and 300-W faces, the JSON
record of ``fkp detect --json``, the webcam WebSocket, and hostile uploads."""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'facekeypoints[web]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402
from images import exif_jpeg, png_claiming  # noqa: E402

from facekeypoints.photos import record  # noqa: E402
from facekeypoints.schema import KEYPOINT_NAMES  # noqa: E402
from facekeypoints.web import WebSettings, create_app  # noqa: E402
from facekeypoints.web.engine import filters_available, tracker_available  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "facekeypoints" / "web" / "static"
PEOPLE = ["2008_001009.jpg", "2008_002506.jpg", "2009_004587.jpg", "Tom_Cruise_avp_2014_4.jpg"]


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(WebSettings(workers=2))) as c:
        yield c


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def post_file(client, data: bytes, name: str = "photo.jpg", ctype: str = "image/jpeg", **params):
    return client.post("/api/detect", files={"file": (name, data, ctype)}, params=params)


def inside_box(face: dict, margin: float = 0.1) -> bool:
    """All keypoints inside the face box grown by ``margin`` of its width."""
    x0, y0, x1, y1 = face["box"]
    m = margin * (x1 - x0)
    pts = np.array(list(face["keypoints"].values()))
    return bool(((pts[:, 0] >= x0 - m) & (pts[:, 0] <= x1 + m) & (pts[:, 1] >= y0 - m) & (pts[:, 1] <= y1 + m)).all())


def check_record_schema(rec: dict) -> None:
    assert list(rec) == ["image", "width", "height", "faces", "error"]
    assert isinstance(rec["image"], str) and rec["error"] is None
    assert isinstance(rec["width"], int) and isinstance(rec["height"], int)
    for face in rec["faces"]:
        assert set(face) <= {"box", "score", "keypoints", "id", "pose", "openness"}
        assert {"box", "score", "keypoints"} <= set(face)
        assert len(face["box"]) == 4 and all(isinstance(v, float) for v in face["box"])
        assert face["score"] is None or isinstance(face["score"], float)
        assert list(face["keypoints"]) == list(KEYPOINT_NAMES)
        for x, y in face["keypoints"].values():
            assert 0 <= x < rec["width"] and 0 <= y < rec["height"]


def decode_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/jpeg;base64,")
    img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


# ---------------------------------------------------------------- basics

def test_health_and_filters(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["model"].endswith(".onnx")
    assert h["max_upload_bytes"] == 10 * 1024 * 1024 and h["max_pixels"] == 40_000_000
    filters = client.get("/api/filters").json()
    if filters_available():
        from facekeypoints.filters import FILTERS

        assert [f["name"] for f in filters] == list(FILTERS)
        assert all(isinstance(f["description"], str) and f["description"] for f in filters)
    else:
        assert filters == []


def test_page_and_docs_are_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    for f in STATIC.iterdir():
        text = f.read_text()
        assert not re.search(r"https?://", text), f"{f.name} references an outside address"
        assert client.get(f"/static/{f.name}").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and not re.search(r"https?://", docs.text)
    spec = client.get("/openapi.json").json()
    assert {"/api/detect", "/api/health", "/api/filters"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/api/detect"]["post"]["requestBody"]["content"]


# ---------------------------------------------------------------- real faces

@pytest.mark.parametrize("name", PEOPLE)
def test_real_photos_match_the_detector(client, data_dir, detector, name):
    """Each photo's response is exactly the record ``fkp detect`` builds, with keypoints inside the face boxes."""
    path = data_dir / "photos" / name
    r = post_file(client, path.read_bytes(), name)
    assert r.status_code == 200, r.text
    rec = r.json()
    check_record_schema(rec)
    image = cv2.imread(str(path))
    assert rec == json.loads(json.dumps(record(name, image, detector.detect(image), None)))
    assert (rec["width"], rec["height"]) == (image.shape[1], image.shape[0])
    assert len(rec["faces"]) >= 1
    assert all(inside_box(f) for f in rec["faces"])


def test_no_people_gives_a_valid_record(client, data_dir):
    rec = post_file(client, (data_dir / "photos" / "dogs.jpg").read_bytes(), "dogs.jpg").json()
    check_record_schema(rec)
    assert rec["image"] == "dogs.jpg" and (rec["width"], rec["height"]) == (900, 916)


def test_300w_faces_over_http(client, val_300w):
    """Validation faces of 300-W sent as uploads: found, keypoints near the human labels, inside the box."""
    errors = []
    for s in val_300w[:64:8]:
        rec = post_file(client, s.image.read_bytes(), s.image.name).json()
        centre = s.keypoints.mean(0)
        hits = [f for f in rec["faces"] if f["box"][0] < centre[0] < f["box"][2] and f["box"][1] < centre[1] < f["box"][3]]
        if not hits:
            continue
        face = hits[0]
        assert inside_box(face, margin=0.4)  # the learned detector's square box can sit below the brows
        pred = np.array(list(face["keypoints"].values()))
        ocular = np.linalg.norm(s.keypoints[3] - s.keypoints[5])
        errors.append(float(np.linalg.norm(pred - s.keypoints, axis=1).mean() / ocular))
    assert len(errors) >= 7, f"only {len(errors)} of 8 faces found"
    assert np.median(errors) < 0.2 and max(errors) < 0.4, errors


def test_same_json_as_fkp_detect(client, data_dir, tmp_path):
    """The response equals the entry ``fkp detect --json`` writes for the same file (but for the name)."""
    from facekeypoints.cli import main

    path = data_dir / "photos" / "2008_002506.jpg"
    assert main(["detect", str(path), "--json", str(tmp_path / "out.json")]) == 0
    cli_rec = json.loads((tmp_path / "out.json").read_text())[0]
    web_rec = post_file(client, path.read_bytes(), path.name).json()
    assert cli_rec.pop("image") == str(path) and web_rec.pop("image") == path.name
    assert web_rec == cli_rec and len(web_rec["faces"]) >= 2


def test_raw_body_and_annotated_image(client, data_dir):
    path = data_dir / "photos" / "Tom_Cruise_avp_2014_4.jpg"
    r = client.post("/api/detect", content=path.read_bytes(), headers={"Content-Type": "image/jpeg"},
                    params={"annotated": 1, "name": "../../etc/tom.jpg"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["image"] == "tom.jpg"  # client names are reduced to a base name
    drawn = decode_data_url(rec["annotated"])
    original = cv2.imread(str(path))
    assert drawn.shape == original.shape
    # the keypoints are painted: pixels at each keypoint changed towards the overlay colours
    pts = np.array(list(rec["faces"][0]["keypoints"].values())).round().astype(int)
    diff = np.abs(drawn.astype(int) - original.astype(int)).sum(2)
    assert (diff[pts[:, 1], pts[:, 0]] > 60).mean() > 0.8


def test_filters_over_http(client, data_dir):
    path = data_dir / "photos" / "2008_001009.jpg"
    bad = post_file(client, path.read_bytes(), filter="no-such-filter")
    assert bad.status_code == 400 and "filter" in bad.json()["detail"]
    if not filters_available():
        assert "not available" in bad.json()["detail"]
        return
    from facekeypoints.filters import FILTERS, apply_filter

    assert "no-such-filter" in bad.json()["detail"] and next(iter(FILTERS)) in bad.json()["detail"]
    image = cv2.imread(str(path))
    for name in FILTERS:
        rec = post_file(client, path.read_bytes(), filter=name).json()
        import facekeypoints as fk

        faces = [fk.Face(tuple(f["box"]), f["score"], np.array(list(f["keypoints"].values()), np.float32))
                 for f in rec["faces"]]
        expected = apply_filter(image, faces, [name])
        got = decode_data_url(rec["annotated"])
        assert np.abs(got.astype(float) - expected.astype(float)).mean() < 4.0, name  # JPEG round trip only


def test_concurrent_requests_match_sequential(client, data_dir):
    """Per-thread cascades + shared ONNX session: parallel answers equal sequential ones."""
    paths = [data_dir / "photos" / n for n in PEOPLE]
    sequential = [post_file(client, p.read_bytes(), p.name).json() for p in paths]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda p: post_file(client, p.read_bytes(), p.name).json(), paths * 2))
    assert parallel == sequential * 2


def test_uploads_never_touch_disk(client, data_dir, monkeypatch):
    """A 5 MB upload is parsed in memory: any temporary file would raise here."""
    import tempfile

    import starlette.formparsers

    def no_disk(*a, **k):
        raise AssertionError("the upload was spooled to disk")

    for mod, attr in [(tempfile, "SpooledTemporaryFile"), (tempfile, "NamedTemporaryFile"), (tempfile, "mkstemp"),
                      (tempfile, "TemporaryFile"), (starlette.formparsers, "SpooledTemporaryFile")]:
        monkeypatch.setattr(mod, attr, no_disk)
    big = cv2.imencode(".png", cv2.imread(str(data_dir / "photos" / "bald_guys.jpg")))[1].tobytes()
    assert len(big) > 4_000_000
    r = post_file(client, big, "bald_guys.png", "image/png")
    assert r.status_code == 200 and len(r.json()["faces"]) >= 10




@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    """Decoded uploads are turned upright exactly as Pillow (and browsers) do."""
    import PIL.Image
    import PIL.ImageOps

    from facekeypoints.web.engine import decode_upload

    rng = np.random.default_rng(orientation)
    img = cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (160, 96), interpolation=cv2.INTER_NEAREST)
    data = exif_jpeg(img, orientation)
    expected = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(io.BytesIO(data))).convert("RGB"))[:, :, ::-1]
    got = decode_upload(data, "x.jpg", 40_000_000)
    assert got.shape == expected.shape and np.abs(got.astype(int) - expected.astype(int)).max() <= 2


def test_sideways_phone_photo_is_turned_upright(client, data_dir):
    """A photo stored rotated with EXIF orientation 6 gives the upright photo's faces and size."""
    upright = cv2.imread(str(data_dir / "photos" / "Tom_Cruise_avp_2014_4.jpg"))
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # orientation 6: turn 90 deg clockwise to view
    ref = post_file(client, jpeg(upright)).json()
    rec = post_file(client, exif_jpeg(stored, 6)).json()
    assert (rec["width"], rec["height"]) == (upright.shape[1], upright.shape[0])
    assert len(rec["faces"]) == len(ref["faces"]) == 1
    a = np.array(list(rec["faces"][0]["keypoints"].values()))
    b = np.array(list(ref["faces"][0]["keypoints"].values()))
    assert np.abs(a - b).max() < 8.0


# ---------------------------------------------------------------- webcam socket

def test_websocket_stream(client, val_300w):
    s = val_300w[0]
    frame = cv2.imread(str(s.image))
    centre = s.keypoints.mean(0)
    with client.websocket_connect("/api/stream") as ws:
        ids = []
        for i in range(4):
            ws.send_bytes(jpeg(frame))
            msg = ws.receive_json()
            assert msg["type"] == "frame" and msg["error"] is None and msg["frame"] == i + 1
            assert (msg["width"], msg["height"]) == (frame.shape[1], frame.shape[0]) and msg["ms"] > 0
            face = next(f for f in msg["faces"] if f["box"][0] < centre[0] < f["box"][2])
            assert inside_box(face)
            pred = np.array(list(face["keypoints"].values()))
            assert np.linalg.norm(pred - s.keypoints, axis=1).mean() < 0.3 * np.linalg.norm(s.keypoints[3] - s.keypoints[5])
            ids.append(face.get("id"))
        if tracker_available():
            assert ids[0] is not None and len(set(ids)) == 1  # one tracked identity
        # a broken frame is answered with an error and the stream goes on
        ws.send_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        msg = ws.receive_json()
        assert msg["type"] == "frame" and msg["status"] == 400 and msg["error"]
        ws.send_text(json.dumps({"filter": "no-such-filter"}))
        assert ws.receive_json()["type"] == "error"
        ws.send_text("not json")
        assert "bad settings" in ws.receive_json()["error"]
        if filters_available():
            from facekeypoints.filters import FILTERS

            name = next(iter(FILTERS))
            ws.send_text(json.dumps({"filter": name}))
            assert ws.receive_json() == {"type": "settings", "filter": [name]}
            ws.send_bytes(jpeg(frame))
            msg = ws.receive_json()
            assert decode_data_url(msg["image"]).shape == frame.shape
        ws.send_bytes(jpeg(frame))
        assert len(ws.receive_json()["faces"]) >= 1


# ---------------------------------------------------------------- hostile input





def zip_bomb_png(side: int = 8000) -> bytes:
    """A valid all-black PNG of side x side pixels (64 MP) that is only tens of kilobytes."""
    z = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return png_claiming(side, side, data)


@functools.lru_cache(maxsize=1)
def hostile_cases(data_dir: Path) -> dict:
    photo = (data_dir / "photos" / "2008_001009.jpg").read_bytes()
    png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR))[1].tobytes()
    text = b"name,x,y\nleft_eye_center,1,2\n" * 20
    big = np.random.default_rng(0).integers(0, 256, 11 * 1024 * 1024, dtype=np.uint8).tobytes()
    return {
        "empty body": (dict(content=b""), 400, "empty"),
        "empty multipart file": (dict(files={"file": ("a.jpg", b"", "image/jpeg")}), 400, "empty"),
        "form without file": (dict(data={"filter": ""}, files={"other": ("a.jpg", photo, "image/jpeg")}), 400, "'file'"),
        "multipart without boundary": (dict(content=b"xx", headers={"Content-Type": "multipart/form-data"}), 400,
                                       "boundary"),
        "json body": (dict(content=b'{"a": 1}', headers={"Content-Type": "application/json"}), 415, "content type"),
        "text file as text/plain": (dict(files={"file": ("notes.txt", text, "text/plain")}), 415, "text/plain"),
        "text file as octet-stream": (dict(files={"file": ("notes.jpg", text, "application/octet-stream")}), 400,
                                      "not a readable image"),
        "truncated jpeg": (dict(files={"file": ("cut.jpg", photo[: len(photo) // 2], "image/jpeg")}), 400, "truncated"),
        "truncated png": (dict(files={"file": ("cut.png", png[: len(png) // 2], "image/png")}), 400, "not a readable"),
        "jpeg header only": (dict(files={"file": ("cut.jpg", photo[:700], "image/jpeg")}), 400, "truncated"),
        "png claiming 100000x100000": (dict(files={"file": ("huge.png", png_claiming(100_000, 100_000), "image/png")}),
                                       413, "100000x100000"),
        "zip-bomb png 8000x8000": (dict(files={"file": ("bomb.png", zip_bomb_png(), "image/png")}), 413, "limit"),
        "11 MB multipart": (dict(files={"file": ("big.jpg", big, "image/jpeg")}), 413, "too large"),
        "11 MB raw body": (dict(content=big, headers={"Content-Type": "image/jpeg"}), 413, "too large"),
    }


CASES = ["empty body", "empty multipart file", "form without file", "multipart without boundary", "json body",
         "text file as text/plain", "text file as octet-stream", "truncated jpeg", "truncated png", "jpeg header only",
         "png claiming 100000x100000", "zip-bomb png 8000x8000", "11 MB multipart", "11 MB raw body"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_uploads(client, data_dir, case):
    kwargs, status, words = hostile_cases(data_dir)[case]
    r = client.post("/api/detect", **kwargs)
    assert r.status_code == status, (case, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail and "\n" not in detail and "Traceback" not in detail
    assert client.get("/api/health").json()["status"] == "ok"


@pytest.mark.parametrize("case", ["11 MB multipart", "11 MB raw body"])
def test_size_refusal_names_the_limit_health_reports(client, data_dir, case):
    """The 413 names the same byte limit as /api/health (it once said "10.0625 MB": the multipart slack)."""
    limit = client.get("/api/health").json()["max_upload_bytes"]
    kwargs, _, _ = hostile_cases(data_dir)[case]
    detail = client.post("/api/detect", **kwargs).json()["detail"]
    assert f"limit {limit} bytes = 10 MB" in detail and "10.06" not in detail, detail


def test_bad_query_parameter_is_a_one_line_422(client, data_dir):
    photo = (data_dir / "photos" / "2008_001009.jpg").read_bytes()
    r = post_file(client, photo, annotated="maybe")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail, detail
    assert "annotated" in detail and "'maybe' is not a boolean" in detail
    assert post_file(client, photo, annotated="yes").status_code == 200


def test_zip_bomb_is_refused_before_decoding(client):
    """The 64 MP bomb is tiny on the wire and refused from its header, quickly, without decoding."""
    import time

    bomb = zip_bomb_png()
    assert len(bomb) < 200_000
    t0 = time.perf_counter()
    r = client.post("/api/detect", files={"file": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 413 and time.perf_counter() - t0 < 1.0


def test_limits_are_configurable(data_dir):
    photo = (data_dir / "photos" / "2008_001009.jpg").read_bytes()  # 360x480, ~30 kB
    with TestClient(create_app(WebSettings(max_upload_bytes=len(photo) - 1, workers=1))) as c:
        r = post_file(c, photo)
        assert r.status_code == 413 and "too large" in r.json()["detail"]
    with TestClient(create_app(WebSettings(max_pixels=360 * 480 - 1, workers=1))) as c:
        r = post_file(c, photo)
        assert r.status_code == 413 and "360x480" in r.json()["detail"]
    with TestClient(create_app(WebSettings(max_pixels=360 * 480, workers=1))) as c:
        assert post_file(c, photo).status_code == 200


# ---------------------------------------------------------------- command line

def test_serve_cli_errors_are_one_line():
    from facekeypoints.cli import main

    assert main(["serve", "--port", "70000"]) == 1
    assert main(["serve", "--workers", "0"]) == 1
    r = subprocess.run([sys.executable, "-m", "facekeypoints.cli", "serve", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--max-upload-mb" in r.stdout


def test_serve_without_the_web_extra_names_both_installs():
    """Without uvicorn/fastapi the hint must work from a source checkout too (the package is not on PyPI)."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('uvicorn', 'fastapi'):\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from facekeypoints.cli.main import main\n"
            "sys.exit(main(['serve']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and 'pip install ".[web]"' in r.stderr and "facekeypoints[web]" in r.stderr


def test_web_app_does_not_import_torch():
    code = ("import sys; from facekeypoints.web import create_app; create_app(); "
            "import facekeypoints.cli.serve; print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
