"""The page in a real headless Chromium: a photo upload and the webcam mode on a fake camera.

Chromium's fake capture device plays a y4m clip made here from a real 300-W face;
the checks read the screenshot's pixels for the keypoint colours inside the face.
Skips (with the reason) only where Chromium, chromedriver or selenium is missing:
``bash .ci/setup-browser.sh`` installs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'facekeypoints[web]'")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'facekeypoints[web]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from facekeypoints.schema import KEYPOINT_NAMES  # noqa: E402
from facekeypoints.web import WebSettings, create_app  # noqa: E402

#: RGB of the page's keypoint colours (app.js): subject's left, subject's right, centre line.
KP_RGB = {"left": (255, 60, 60), "right": (40, 160, 255), "center": (60, 220, 60)}
FRAME_W, FRAME_H = 640, 480


def _find(*names: str) -> str | None:
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


@pytest.fixture(scope="module")
def server():
    """The app under uvicorn on a free localhost port, in a thread of this process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(WebSettings(workers=2)), log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


def write_y4m(path: Path, frame_bgr: np.ndarray, n_frames: int = 15) -> None:
    """A still clip in the YUV4MPEG2 4:2:0 format Chromium's fake camera reads."""
    h, w = frame_bgr.shape[:2]
    i420 = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420).tobytes()  # Y plane, then U, then V
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F15:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(n_frames):
            f.write(b"FRAME\n" + i420)


@pytest.fixture(scope="module")
def camera_clip(val_300w, detector, tmp_path_factory):
    """A 640x480 clip of a real 300-W face and its labelled keypoints in clip pixels."""
    for s in val_300w[:20]:
        img = cv2.imread(str(s.image))
        scale = FRAME_H / img.shape[0]
        if img.shape[1] * scale > FRAME_W:
            continue
        resized = cv2.resize(img, (round(img.shape[1] * scale), FRAME_H), interpolation=cv2.INTER_AREA)
        x_off = (FRAME_W - resized.shape[1]) // 2
        frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        frame[:, x_off:x_off + resized.shape[1]] = resized
        gt = s.keypoints * scale + np.array([x_off, 0], np.float32)
        if any(f.box[0] < gt[:, 0].mean() < f.box[2] for f in detector.detect(frame)):
            path = tmp_path_factory.mktemp("camera") / "face.y4m"
            write_y4m(path, frame)
            return path, frame, gt
    pytest.fail("no 300-W validation face fits a 640x480 frame and is detected")


@pytest.fixture(scope="module")
def browser(camera_clip, tmp_path_factory):
    chromium = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("Chromium or chromedriver not found (install: bash .ci/setup-browser.sh)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    downloads = tmp_path_factory.mktemp("downloads")
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1800", "--force-device-scale-factor=1",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera_clip[0]}"]:
        opts.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(60)
    driver.downloads = downloads
    yield driver
    driver.quit()


def canvas_pixels(driver, canvas_id: str) -> tuple[np.ndarray, float]:
    """Screenshot of a canvas (RGB) and its displayed-to-intrinsic scale."""
    el = driver.find_element(By.ID, canvas_id)
    png = el.screenshot_as_png
    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    intrinsic_w = driver.execute_script(f"return document.getElementById('{canvas_id}').width")
    return img, img.shape[1] / intrinsic_w


def colour_counts(rgb: np.ndarray, box: tuple[float, float, float, float], tol: int = 30) -> dict[str, int]:
    """Pixels within ``tol`` of each keypoint colour inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (max(0, int(round(v))) for v in box)
    region = rgb[y0:y1, x0:x1].astype(int)
    return {k: int((np.abs(region - np.array(c)).max(axis=2) <= tol).sum()) for k, c in KP_RGB.items()}


def assert_keypoints_drawn(browser, path: Path, rec: dict) -> tuple[np.ndarray, float]:
    """The photo canvas shows each side's keypoint colour inside every face box of ``rec``, far more
    of it than the photo itself has there; returns the canvas pixels (RGB) and their scale (canvas_pixels)."""
    shot, k = canvas_pixels(browser, "photo-canvas")
    original = cv2.resize(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), (shot.shape[1], shot.shape[0]),
                          interpolation=cv2.INTER_AREA)
    for face in rec["faces"]:
        box = [v * k for v in face["box"]]
        drawn, before = colour_counts(shot, box), colour_counts(original, box)
        for side in KP_RGB:
            assert drawn[side] >= 8 and drawn[side] > 3 * before[side] + 5, (side, drawn, before)
    return shot, k


def test_page_loads(browser, server):
    browser.get(server + "/")
    assert browser.title == "facekeypoints"
    WebDriverWait(browser, 30).until(lambda d: "model" in d.find_element(By.ID, "health").text)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] if hasattr(browser, "get_log") else []
    assert not errors, errors


def test_photo_upload_shows_keypoints(browser, server, data_dir, tmp_path):
    path = data_dir / "photos" / "2008_001009.jpg"
    browser.get(server + "/")
    file_input = browser.find_element(By.ID, "file")
    browser.execute_script("arguments[0].hidden = false;", file_input)
    file_input.send_keys(str(path))
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return window.fkp.photo !== null"))
    rec = browser.execute_script("return window.fkp.photo")
    assert rec["image"] == path.name and len(rec["faces"]) >= 1
    rows = browser.find_elements(By.CSS_SELECTOR, "#kp-table tbody tr")
    assert len(rows) == 15 * len(rec["faces"])
    assert rows[0].find_elements(By.TAG_NAME, "td")[1].text == "left_eye_center"
    assert "face(s)" in browser.find_element(By.ID, "photo-status").text
    assert browser.find_element(By.ID, "download").is_enabled()
    shot, k = assert_keypoints_drawn(browser, path, rec)
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(shot, cv2.COLOR_RGB2BGR))

    # "Download JSON" saves the record the page shows
    browser.find_element(By.ID, "download").click()
    saved = browser.downloads / "2008_001009.json"
    WebDriverWait(browser, 20).until(lambda d: saved.is_file() and saved.stat().st_size > 0)
    assert json.loads(saved.read_text()) == {k: v for k, v in rec.items() if k != "annotated"}

    # a filter replaces the photo with the server's filtered image, inside the faces
    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#filter option")]
    if len(options) < 2:
        return  # no filters module in this installation
    Select(browser.find_element(By.ID, "filter")).select_by_value(options[1])
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return !!(window.fkp.photo && window.fkp.photo.annotated)"))
    filtered, _ = canvas_pixels(browser, "photo-canvas")
    cv2.imwrite(str(tmp_path / "photo_filtered.png"), cv2.cvtColor(filtered, cv2.COLOR_RGB2BGR))
    x0, y0, x1, y1 = (int(v * k) for v in rec["faces"][0]["box"])
    change = np.abs(filtered[y0:y1, x0:x1].astype(int) - shot[y0:y1, x0:x1].astype(int)).mean()
    assert change > 3, f"filter {options[1]!r} left the face unchanged ({change:.1f})"


def test_webcam_draws_keypoints_on_the_face(browser, server, camera_clip, tmp_path):
    _, frame, gt = camera_clip
    browser.get(server + "/")
    browser.find_element(By.ID, "tab-cam").click()
    browser.find_element(By.ID, "cam-start").click()
    WebDriverWait(browser, 120).until(lambda d: d.execute_script("return window.fkp.frames") >= 3,
                                      message="fewer than 3 webcam frames came back")
    msg = browser.execute_script("return window.fkp.frame")
    shot, k = canvas_pixels(browser, "cam-canvas")
    cv2.imwrite(str(tmp_path / "webcam.png"), cv2.cvtColor(shot, cv2.COLOR_RGB2BGR))
    assert (msg["width"], msg["height"]) == (FRAME_W, FRAME_H)
    face = next(f for f in msg["faces"] if f["box"][0] < gt[:, 0].mean() < f["box"][2])
    pred = np.array([face["keypoints"][n] for n in KEYPOINT_NAMES])  # WebDriver does not keep key order
    ocular = np.linalg.norm(gt[3] - gt[5])
    assert np.linalg.norm(pred - gt, axis=1).mean() < 0.3 * ocular
    pad = 0.25 * (gt[:, 0].max() - gt[:, 0].min())
    region = (np.array([gt[:, 0].min() - pad, gt[:, 1].min() - pad, gt[:, 0].max() + pad, gt[:, 1].max() + pad]) * k)
    drawn = colour_counts(shot, tuple(region))
    before = colour_counts(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (shot.shape[1], shot.shape[0])),
                           tuple(region))
    for side in KP_RGB:
        assert drawn[side] >= 15 and drawn[side] > 3 * before[side] + 5, (side, drawn, before)
    fps = float(browser.find_element(By.ID, "fps").text)
    assert fps > 0
    browser.find_element(By.ID, "cam-stop").click()


def test_68_points_toggle(browser, server, data_dir):
    """The "68 points" box: the photo comes back with 68 landmarks per face, listed after the 15 and
    drawn as contours in the side colours; the webcam stream switches too."""
    from facekeypoints.runtime import default_model_path

    if not default_model_path(68).is_file():
        pytest.skip("68-point model not shipped")
    path = data_dir / "photos" / "2008_001009.jpg"
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda d: not d.find_element(By.ID, "points68").get_attribute("disabled"))
    browser.find_element(By.ID, "points68").click()
    file_input = browser.find_element(By.ID, "file")
    browser.execute_script("arguments[0].hidden = false;", file_input)
    file_input.send_keys(str(path))
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return window.fkp.photo !== null"))
    rec = browser.execute_script("return window.fkp.photo")
    assert rec["faces"] and all(len(f["landmarks"]) == 68 for f in rec["faces"])
    rows = browser.find_elements(By.CSS_SELECTOR, "#kp-table tbody tr")
    assert len(rows) == (15 + 68) * len(rec["faces"])
    assert rows[15].find_elements(By.TAG_NAME, "td")[1].text == "p0"
    assert_keypoints_drawn(browser, path, rec)
    browser.find_element(By.ID, "tab-cam").click()
    browser.find_element(By.ID, "cam-start").click()
    WebDriverWait(browser, 120).until(
        lambda d: (d.execute_script("return window.fkp.frame") or {}).get("faces")
        and all("landmarks" in f for f in d.execute_script("return window.fkp.frame.faces")),
        message="no webcam frame came back with 68 landmarks")
    browser.find_element(By.ID, "cam-stop").click()
