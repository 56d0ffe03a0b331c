"""Issue 14's corpus: well over 100 bad inputs and bad output destinations, generated at test time,
through every entry point (``fkp detect/demo/video/webcam/train/evaluate/export/kaggle-submit/
visualize/serve``, ``face_keypoints.py``, the Python API, the HTTP API).

For every case: no traceback; a refusal is one line naming the file; the exit status is the
documented one (1 a bad input, 2 a bad option or destination found before any work); no
temporary or half-written file is left; a batch still writes what succeeded. Commands run
in-process (``main(argv)``) to keep the corpus fast, plus a few real subprocesses.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from images import exif_jpeg, png_claiming

from facekeypoints.cli.demo import demo_photo
from facekeypoints.cli.main import build_parser, main
from facekeypoints.errors import FkpError, InputError, OutputError, UsageError

ROOT = Path(__file__).resolve().parents[1]
TEMP_LIKE = re.compile(r"(\.tmp$|\.partial|^\.fkp-)")

# ---------------------------------------------------------------- the corpus, generated








# name -> (bytes or a callable making the path, expected: "error" (a named refusal) or "ok" or "any")
def _image_specs(photo: bytes, face: np.ndarray) -> dict:
    small = cv2.resize(face, (96, 112))
    rng = np.random.default_rng(0)
    return {
        "empty.jpg": (b"", "error"),
        "text.jpg": (b"this is not an image\n" * 10, "error"),
        "header_only.jpg": (photo[:600], "error"),
        "truncated.jpg": (photo[: len(photo) // 2], "any"),  # decoders may grey-fill the rest
        "random.png": (rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "error"),
        "png_magic_then_garbage.png": (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, "error"),
        "claims_30000x30000.png": (png_claiming(30_000, 30_000), "error"),
        "svg.jpg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "error"),
        "landmarks.pts": (b"version: 1\nn_points: 68\n{\n1 2\n}\n", "error"),
        "zeros.bmp": (b"BM" + b"\0" * 60, "error"),
        "png_named.jpg": (cv2.imencode(".png", small)[1].tobytes(), "ok"),
        "one_pixel.png": (cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), "ok"),
        "sixteen_bit.png": (cv2.imencode(".png", (small.astype(np.uint16) * 257))[1].tobytes(), "ok"),
        "rgba.png": (cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_BGR2BGRA))[1].tobytes(), "ok"),
        "grey.png": (cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))[1].tobytes(), "ok"),
        "exif_orientation_99.jpg": (exif_jpeg(small, 99, quality=90), "ok"),
        "nan_float.tiff": (cv2.imencode(".tiff", np.full((8, 8), np.nan, np.float32))[1].tobytes(), "ok"),
        "spaces and ünïcode.jpg": (b"\xff\xd8\xff not really", "error"),
        "tall_1x4000.png": (cv2.imencode(".png", np.zeros((4000, 1), np.uint8))[1].tobytes(), "ok"),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Bad files of every kind, in one folder of their own (which no case may leave anything in)."""
    d = tmp_path_factory.mktemp("corpus")
    photo = Path(demo_photo()).read_bytes()
    face = cv2.imread(demo_photo())
    images = {}
    for name, (data, expect) in _image_specs(photo, face).items():
        (d / name).write_bytes(data)
        images[name] = expect
    (d / "folder.jpg").mkdir()
    images["folder.jpg"] = "error"
    (d / "dangling.jpg").symlink_to(d / "nowhere.jpg")
    images["dangling.jpg"] = "error"
    images["missing.jpg"] = "error"
    images["nomatch_*.jpg"] = "error"
    (d / "good.jpg").write_bytes(photo)
    # videos
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_bytes(b"not a video at all\n" * 200)
    (d / "video_folder.mp4").mkdir()
    vw = cv2.VideoWriter(str(d / "tiny.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(4):
        vw.write(cv2.resize(face, (160, 120)))
    vw.release()
    # Kaggle files
    pixels = " ".join(["128"] * 96 * 96)
    (d / "test_empty.csv").write_text("")
    (d / "test_header_only.csv").write_text("ImageId,Image\n")
    (d / "test_short_image.csv").write_text("ImageId,Image\n1,1 2 3\n")
    (d / "test_text_pixels.csv").write_text("ImageId,Image\n1," + " ".join(["x"] * 96 * 96) + "\n")
    (d / "test_wrong_columns.csv").write_text("Id,Pixels\n1," + pixels + "\n")
    (d / "test_ok.csv").write_text("ImageId,Image\n1," + pixels + "\n")
    (d / "lookup_bad_header.csv").write_text("a,b,c\n1,1,left_eye_center_x\n")
    (d / "lookup_unknown_image.csv").write_text("RowId,ImageId,FeatureName\n1,7,left_eye_center_x\n")
    (d / "lookup_ok.csv").write_text("RowId,ImageId,FeatureName\n1,1,left_eye_center_x\n")
    # labelled-data forms for train / evaluate / visualize
    (d / "empty_data").mkdir()
    bad300 = d / "bad_300w"
    bad300.mkdir()
    (bad300 / "a.jpg").write_bytes(photo)
    (bad300 / "a.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    (d / "udacity_bad_frames_keypoints.csv").write_text("name,0,1\nx.jpg,a,b\n")
    (d / "training_bad.csv").write_text("left_eye_center_x,Image\n1,2 3\n")
    # models
    (d / "garbage.onnx").write_bytes(b"not an onnx model" * 10)
    (d / "garbage.pt").write_bytes(b"not a checkpoint" * 10)
    # destinations that must be refused
    (d / "a_file.jpg").write_bytes(photo)
    (d / "taken.json").mkdir()
    (d / "taken.csv").mkdir()
    (d / "taken.jpg").mkdir()
    (d / "taken.mp4").mkdir()
    (d / "taken.onnx").mkdir()
    (d / "taken.png").mkdir()
    return d, images


def listing(*folders: Path) -> set[str]:
    return {str(p) for f in folders if f.exists() for p in f.rglob("*")}


def assert_clean(before: set[str], *folders: Path, allowed: tuple[str, ...] = ()) -> None:
    """No temporary file anywhere, and nothing new but what the case was allowed to write."""
    after = listing(*folders)
    temp = [p for p in after if TEMP_LIKE.search(Path(p).name)]
    assert not temp, f"temporary files left: {temp}"
    new = {p for p in after - before if not any(p.endswith(a) or f"/{a}/" in p for a in allowed)}
    assert not new, f"unexpected files written: {sorted(new)}"


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: usage + one error line, status 2
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def error_line(err: str) -> str:
    """The line that says what went wrong (argparse prints its usage first)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines, "no message"
    return lines[-1]


@pytest.fixture(autouse=True)
def _reuse_detector(monkeypatch, detector):
    """fkp detect builds the same real detector per run (0.7 s each); reuse one to keep 100+ cases fast."""
    import facekeypoints.cli.detect as det_cli

    real = det_cli._detector

    def cached(model, refine, fast, threads=None, flip=True, **options):
        if model is None and not fast and refine == 1 and flip and options.get("points", 15) == 15 \
                and options.get("detector") is None:
            return detector
        return real(model, refine, fast, threads, flip, **options)

    monkeypatch.setattr(det_cli, "_detector", cached)


# ---------------------------------------------------------------- bad images, four entry points

EXPECT = {n: e for n, (_, e) in _image_specs(b"\xff" * 2000, np.zeros((120, 100, 3), np.uint8)).items()}
EXPECT.update({n: "error" for n in ("folder.jpg", "dangling.jpg", "missing.jpg", "nomatch_*.jpg")})
IMAGE_NAMES = list(EXPECT)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_fkp_detect_bad_image(corpus, name, tmp_path, capsys):
    d, images = corpus
    before = listing(d, tmp_path)
    code, out, err = run_main(["detect", d / name, "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv",
                               "-o", tmp_path / "img"], capsys)
    if (d / name).is_dir():  # a folder is searched for images: none in it
        assert code == 1 and error_line(err) == "fkp: no input images found"
        return
    rec = json.loads((tmp_path / "r.json").read_text())
    assert len(rec) == 1 and rec[0]["image"] == str(d / name)
    if images[name] == "error" or (images[name] == "any" and rec[0]["error"]):
        assert code == 1 and rec[0]["error"] and "\n" not in rec[0]["error"]
        assert f"{d / name}: {rec[0]['error']}" in err
    else:
        assert code == 0 and rec[0]["error"] is None and rec[0]["width"] > 0
    assert_clean(before, d, tmp_path, allowed=("r.json", "r.csv", "img"))


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_api_detect_bad_image(corpus, name, detector):
    d, images = corpus
    try:
        faces = detector.detect(d / name)
    except FkpError as e:
        assert images[name] in ("error", "any")
        assert isinstance(e, InputError) and str(d / name) in str(e) and "\n" not in str(e)
    else:
        assert images[name] in ("ok", "any") and isinstance(faces, list)


def _one_liner():
    spec = importlib.util.spec_from_file_location("face_keypoints_script", ROOT / "face_keypoints.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", [n for n, e in EXPECT.items() if e == "error"])
def test_one_liner_bad_image(corpus, name, tmp_path, capsys, monkeypatch):
    d, images = corpus
    monkeypatch.chdir(tmp_path)
    before = listing(d, tmp_path)
    code = _one_liner().main([str(d / name), "--no-show"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    line = error_line(err)
    assert len(err.strip().splitlines()) == 1 and line.startswith(f"face_keypoints.py: {d / name}")
    assert_clean(before, d, tmp_path)
    assert not (tmp_path / "ev").exists() and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- bad output destinations

def _dest(d: Path, kind: str, name: str) -> str:
    """A destination that cannot be written, of one kind."""
    return {"folder": str(d / f"taken{Path(name).suffix}"),
            "under_file": str(d / "a_file.jpg" / "sub" / name),
            "sys": f"/sys/fkp-test/{name}",
            "proc": f"/proc/fkp-test-{name}"}[kind]


DEST_CASES = [
    # (command builder, destination kind, words in the message)
    *[(("detect", "{good}", "--json", "{dest}"), k, "r.json") for k in ("folder", "under_file", "sys", "proc")],
    *[(("detect", "{good}", "--csv", "{dest}"), k, "r.csv") for k in ("folder", "under_file", "sys")],
    *[(("detect", "{good}", "-o", "{dest}"), k, "outdir") for k in ("under_file", "sys", "proc")],
    (("detect", "{good}", "-o", "{d}/a_file.jpg"), None, "existing file"),
    *[(("demo", "-o", "{dest}"), k, "demo.jpg") for k in ("folder", "under_file", "sys")],
    (("demo", "-o", "{tmp}/demo.xyz"), None, "unknown image type"),
    (("demo", "-o", "{tmp}/demo"), None, "needs an extension"),
    *[(("demo", "-o", "{tmp}/ok.jpg", "--json", "{dest}"), k, "demo.json") for k in ("folder", "sys")],
    *[(("video", "{d}/tiny.avi", "-o", "{dest}"), k, "out.mp4") for k in ("folder", "under_file", "sys", "proc")],
    (("video", "{d}/tiny.avi", "-o", "{tmp}/out.avi"), None, "must end in .mp4"),
    *[(("video", "{d}/tiny.avi", "--csv", "{dest}"), k, "frames.csv") for k in ("folder", "sys")],
    *[(("video", "{d}/tiny.avi", "--json", "{dest}"), k, "frames.json") for k in ("folder", "under_file")],
    (("video", "{d}/tiny.avi"), None, "nothing to write"),
    (("video", "{d}/tiny.avi", "--json", "-", "--csv", "-"), None, "standard output"),
    (("video", "{d}/tiny.avi", "--csv", "{tmp}/c.csv", "--filter", "dog"), None, "--filter changes only"),
    (("webcam", "-o", "{d}/taken.mp4"), None, "existing folder"),
    *[(("kaggle-submit", "--test", "{d}/test_ok.csv", "--lookup", "{d}/lookup_ok.csv", "-o", "{dest}"), k, "sub.csv")
      for k in ("folder", "under_file", "sys")],
    *[(("export", "{d}/garbage.pt", "-o", "{dest}"), k, "m.onnx") for k in ("folder", "sys")],
    (("export", "{d}/garbage.pt", "-o", "{tmp}/model.txt"), None, "must end in .onnx"),
    *[(("visualize", "--data", "{d}/empty_data", "-o", "{dest}"), k, "grid.png") for k in ("folder", "sys")],
    (("visualize", "--data", "{d}/empty_data", "-o", "{tmp}/grid.xyz"), None, "unknown image type"),
    *[(("train", "--data", "{d}/empty_data", "--out", "{dest}"), k, "run") for k in ("under_file", "sys", "proc")],
    *[(("evaluate", "--data", "{d}/empty_data", "--out", "{dest}"), k, "ev") for k in ("under_file", "sys")],
    (("evaluate", "--data", "{d}/empty_data", "--out", "{d}/a_file.jpg"), None, "existing file"),
    (("train", "--data", "{d}/empty_data", "--out", "{d}/a_file.jpg"), None, "existing file"),
    (("detect", "{good}", "--json", "-", "--csv", "-"), None, "standard output"),
    (("detect", "{good}", "--filter", "sunglasses"), None, "--filter changes only"),
    (("detect", "{good}", "--filter", "nope", "-o", "{tmp}/o"), None, "unknown filter"),
    (("detect", "{d}/good.jpg", "-o", "{d}"), None, "overwrite"),
]


@pytest.mark.parametrize("argv, kind, words", DEST_CASES,
                         ids=[f"{a[0]}-{'-'.join(x for x in a[1:] if x.startswith('-'))}-{k or w}"
                              for a, k, w in DEST_CASES])
def test_bad_destination_is_refused_before_work(corpus, argv, kind, words, tmp_path, capsys):
    d, _ = corpus
    dest = _dest(d, kind, words) if kind else None
    args = [a.format(d=d, tmp=tmp_path, dest=dest, good=d / "good.jpg") for a in argv]
    before = listing(d, tmp_path)
    code, out, err = run_main(args, capsys)
    assert code == 2, (code, err)
    line = error_line(err)
    assert len(err.strip().splitlines()) == 1, err  # one line
    assert line.startswith(f"fkp {argv[0]}: ")
    if dest:
        assert dest in line, line
    else:
        assert words in line, line
    assert_clean(before, d, tmp_path)


# ---------------------------------------------------------------- bad inputs to the other commands

INPUT_CASES = [
    # video / webcam
    (("video", "{d}/empty.mp4", "--csv", "{tmp}/c.csv"), 1, "{d}/empty.mp4"),
    (("video", "{d}/text.mp4", "--csv", "{tmp}/c.csv"), 1, "{d}/text.mp4"),
    (("video", "{d}/video_folder.mp4", "--csv", "{tmp}/c.csv"), 1, "{d}/video_folder.mp4"),
    (("video", "{d}/missing.mp4", "--csv", "{tmp}/c.csv"), 1, "{d}/missing.mp4"),
    (("video", "{d}/landmarks.pts", "--csv", "{tmp}/c.csv"), 1, "{d}/landmarks.pts"),
    (("video", "97", "--csv", "{tmp}/c.csv"), 1, "camera 97"),
    (("video", "{d}/tiny.avi", "--max-faces", "0", "--csv", "{tmp}/c.csv"), 2, "--max-faces"),
    (("video", "{d}/tiny.avi", "--detect-every", "-3", "--csv", "{tmp}/c.csv"), 2, "--detect-every"),
    (("video", "{d}/tiny.avi", "--smooth", "kalman", "--csv", "{tmp}/c.csv"), 2, "--smooth"),
    (("video", "{d}/tiny.avi", "--model", "{d}/garbage.onnx", "--csv", "{tmp}/c.csv"), 1, "{d}/garbage.onnx"),
    (("webcam", "--camera", "-1"), 2, "--camera"),
    (("webcam", "--camera", "x"), 2, "--camera"),
    (("webcam",), 1, "--show"),  # opencv-python-headless or no display: says how to get windows
    # detect options
    (("detect", "{good}", "--refine", "-2"), 2, "--refine"),
    (("detect", "{good}", "--workers", "-1"), 2, "--workers"),
    (("detect", "{good}", "--model", "{d}/missing.onnx"), 1, "{d}/missing.onnx"),
    (("detect", "{good}", "--model", "{d}/garbage.onnx"), 1, "{d}/garbage.onnx"),
    (("detect", "{d}/empty_data"), 1, "no input images"),
    # kaggle-submit
    (("kaggle-submit", "--test", "{d}/missing.csv", "--lookup", "{d}/lookup_ok.csv", "-o", "{tmp}/s.csv"), 1,
     "{d}/missing.csv"),
    (("kaggle-submit", "--test", "{d}/test_empty.csv", "--lookup", "{d}/lookup_ok.csv", "-o", "{tmp}/s.csv"), 1,
     "{d}/test_empty.csv"),
    (("kaggle-submit", "--test", "{d}/test_short_image.csv", "--lookup", "{d}/lookup_ok.csv", "-o", "{tmp}/s.csv"),
     1, "{d}/test_short_image.csv"),
    (("kaggle-submit", "--test", "{d}/test_text_pixels.csv", "--lookup", "{d}/lookup_ok.csv", "-o", "{tmp}/s.csv"),
     1, "{d}/test_text_pixels.csv"),
    (("kaggle-submit", "--test", "{d}/test_wrong_columns.csv", "--lookup", "{d}/lookup_ok.csv", "-o",
      "{tmp}/s.csv"), 1, "{d}/test_wrong_columns.csv"),
    (("kaggle-submit", "--test", "{d}/test_ok.csv", "--lookup", "{d}/missing.csv", "-o", "{tmp}/s.csv"), 1,
     "{d}/missing.csv"),
    (("kaggle-submit", "--test", "{d}/test_ok.csv", "--lookup", "{d}/lookup_bad_header.csv", "-o", "{tmp}/s.csv"),
     1, "{d}/lookup_bad_header.csv"),
    (("kaggle-submit", "--test", "{d}/test_ok.csv", "--lookup", "{d}/lookup_unknown_image.csv", "-o",
      "{tmp}/s.csv"), 1, "ImageId 7"),
    (("kaggle-submit", "--test", "{d}/test_ok.csv", "--lookup", "{d}/lookup_ok.csv", "--model", "{d}/garbage.pt",
      "-o", "{tmp}/s.csv"), 1, "{d}/garbage.pt"),
    # export
    (("export", "{d}/missing.pt", "-o", "{tmp}/m.onnx"), 1, "{d}/missing.pt"),
    (("export", "{d}/empty_data", "-o", "{tmp}/m.onnx"), 1, "{d}/empty_data"),
    (("export", "{d}/garbage.pt", "-o", "{tmp}/m.onnx"), 1, "{d}/garbage.pt"),
    (("export", "{d}/garbage.pt", "--atol", "-1"), 2, "--atol"),
    # visualize / evaluate / train data
    (("visualize", "--data", "{d}/missing_data", "-o", "{tmp}/g.png"), 1, "{d}/missing_data"),
    (("visualize", "--data", "{d}/empty_data", "-o", "{tmp}/g.png"), 1, "{d}/empty_data"),
    (("visualize", "--data", "{d}/training_bad.csv", "-o", "{tmp}/g.png"), 1, "{d}/training_bad.csv"),
    (("visualize", "--data", "{d}/empty_data", "-n", "0"), 2, "-n"),
    (("evaluate", "--data", "{d}/missing_data", "--out", "{tmp}/ev"), 1, "{d}/missing_data"),
    (("evaluate", "--data", "{d}/empty_data", "--out", "{tmp}/ev"), 1, "{d}/empty_data"),
    (("evaluate", "--data", "{d}/udacity_bad_frames_keypoints.csv", "--out", "{tmp}/ev"), 1,
     "{d}/udacity_bad_frames_keypoints.csv"),
    (("train", "--data", "{d}/missing_data", "--out", "{tmp}/run"), 1, "{d}/missing_data"),
    (("train", "--data", "{d}/training_bad.csv", "--out", "{tmp}/run"), 1, "{d}/training_bad.csv"),
    (("train", "--data", "{d}/empty_data", "--out", "{tmp}/run", "--epochs", "x"), 2, "--epochs"),
    # serve: refused before any server starts
    (("serve", "--port", "70000"), 1, "--port 70000"),
    (("serve", "--port", "http"), 2, "--port"),
    (("serve", "--workers", "0"), 1, "--workers"),
    (("serve", "--max-upload-mb", "0"), 1, "--max-upload-mb"),
    (("serve", "--log-level", "loud"), 2, "--log-level"),
    # unknown commands and options
    (("detekt", "x.jpg"), 2, "invalid choice"),
    (("detect",), 2, "required"),
    (("detect", "{good}", "--jsn", "x"), 2, "unrecognized"),
]


@pytest.mark.parametrize("argv, status, words", INPUT_CASES,
                         ids=[f"{i:02d}-{a[0]}" for i, (a, _, _) in enumerate(INPUT_CASES)])
def test_bad_input_other_commands(corpus, argv, status, words, tmp_path, capsys):
    d, _ = corpus
    args = [a.format(d=d, tmp=tmp_path, good=d / "good.jpg") for a in argv]
    before = listing(d, tmp_path)
    code, out, err = run_main(args, capsys)
    assert code == status, (code, err)
    line = error_line(err)
    assert words.format(d=d) in line, err
    if status == 1:
        assert line.startswith("fkp") and len(err.strip().splitlines()) == 1, err
    # evaluate and train make their --out folder only once the data has loaded: nothing is left behind
    assert_clean(before, d, tmp_path)


# ---------------------------------------------------------------- batches keep what succeeded

def test_batch_writes_what_succeeded(corpus, tmp_path, capsys):
    d, images = corpus
    bad = [d / n for n, e in images.items() if e == "error" and n not in ("nomatch_*.jpg",) and not (d / n).is_dir()]
    inputs = [d / "good.jpg", *bad, d / "png_named.jpg"]
    out = tmp_path / "img"
    code, _, err = run_main(["detect", *inputs, "-o", out, "--json", tmp_path / "r.json", "--csv",
                             tmp_path / "r.csv"], capsys)
    assert code == 1
    recs = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"] for r in recs] == [str(p) for p in inputs]
    assert [bool(r["error"]) for r in recs] == [False] + [True] * len(bad) + [False]
    assert sorted(p.name for p in out.iterdir()) == ["good.jpg", "png_named.jpg"]
    assert f"{len(bad)} failed" in err and all(str(p) in err for p in bad)
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 1 + sum(len(r["faces"]) for r in recs)


def test_batch_output_name_taken_by_a_folder_is_reported_and_the_rest_written(corpus, tmp_path, capsys):
    d, _ = corpus
    out = tmp_path / "img"
    (out / "good.jpg").mkdir(parents=True)  # the annotated good.jpg cannot be written
    code, _, err = run_main(["detect", d / "good.jpg", d / "png_named.jpg", "-o", out, "--json",
                             tmp_path / "r.json"], capsys)
    assert code == 1
    assert f"fkp: not written: {out / 'good.jpg'}: is an existing folder" in err
    assert (out / "png_named.jpg").is_file() and len(json.loads((tmp_path / "r.json").read_text())) == 2
    assert not [p for p in out.iterdir() if TEMP_LIKE.search(p.name)]


def test_unwritable_json_is_found_before_the_batch_runs(corpus, tmp_path, capsys):
    d, _ = corpus
    out = tmp_path / "img"
    code, _, err = run_main(["detect", d / "good.jpg", "-o", out, "--json", d / "taken.json"], capsys)
    assert code == 2 and "taken.json" in err and not out.exists()  # nothing was done, nothing lost


def test_workers_pool_with_bad_inputs(corpus, tmp_path, capsys):
    d, _ = corpus
    out = tmp_path / "img"
    inputs = [d / "good.jpg", d / "text.jpg", d / "png_named.jpg", d / "empty.jpg"]
    code, _, err = run_main(["detect", *inputs, "--workers", "2", "-o", out, "--json", tmp_path / "r.json"], capsys)
    assert code == 1 and "text.jpg" in err and "empty.jpg" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.jpg", "png_named.jpg"]  # no part files left


# ---------------------------------------------------------------- stdout outputs, summaries

def test_json_and_csv_to_stdout(corpus, capsys):
    d, _ = corpus
    code, out, err = run_main(["detect", d / "good.jpg", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)[0]["image"] == str(d / "good.jpg") and "1 image(s) processed" in err
    code, out, _ = run_main(["detect", d / "good.jpg", "--csv", "-"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("image,face,box_x0") and len(out.splitlines()) == 2
    assert not Path("-").exists()


def test_demo_prints_a_short_summary(tmp_path, capsys):
    code, out, _ = run_main(["demo", "-o", tmp_path / "d.jpg"], capsys)
    assert code == 0 and len(out.splitlines()) <= 4 and "1 face(s)" in out and "{" not in out
    code, out, err = run_main(["demo", "-o", tmp_path / "d.jpg", "--json", "-"], capsys)
    assert code == 0 and len(json.loads(out)[0]["faces"]) == 1 and "1 face(s)" in err


def test_video_csv_to_stdout(corpus, capsys):
    d, _ = corpus
    code, out, _ = run_main(["video", d / "tiny.avi", "--csv", "-", "--quiet"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("frame,timestamp,face_id")
    assert {ln.split(",")[0] for ln in out.splitlines()[1:]} <= {"0", "1", "2", "3"}


# ---------------------------------------------------------------- Python API

def test_api_bad_arrays_and_settings(detector, corpus, tmp_path):
    import facekeypoints as fk
    from facekeypoints.imageio import write_image_atomic

    d, _ = corpus
    for bad in (np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4, 5), np.uint8), np.zeros((2, 2, 2, 2), np.uint8)):
        with pytest.raises(InputError) as e:
            detector.detect(bad)
        assert "\n" not in str(e.value)
    for model in (d / "missing.onnx", d / "garbage.onnx"):
        with pytest.raises(FkpError, match=re.escape(str(model))):
            fk.KeypointDetector(model=model)
    with pytest.raises(FkpError, match="unknown filter"):
        fk.apply_filter(np.zeros((10, 10, 3), np.uint8), [], "nope")
    img = np.zeros((8, 8, 3), np.uint8)
    for dest, words in ((d / "taken.png", "existing folder"), (tmp_path / "x.xyz", "unknown image type"),
                        (d / "a_file.jpg" / "x.png", "cannot write"), ("/sys/fkp.png", "cannot write")):
        with pytest.raises(OutputError, match=words) as e:
            write_image_atomic(dest, img)
        assert str(dest) in str(e.value)
    assert not [p for p in d.rglob("*") if TEMP_LIKE.search(p.name)]


# ---------------------------------------------------------------- face_keypoints.py destinations

@pytest.mark.parametrize("kind", ["folder", "under_file", "sys", "ext"])
def test_one_liner_bad_destination(corpus, kind, tmp_path, capsys):
    d, _ = corpus
    dest = str(tmp_path / "o.xyz") if kind == "ext" else _dest(d, kind, "o.jpg")
    before = listing(d, tmp_path)
    code = _one_liner().main([str(d / "good.jpg"), "-o", dest, "--no-show"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and dest in err, err
    assert_clean(before, d, tmp_path)


def test_one_liner_refuses_to_overwrite_its_input(corpus, tmp_path, capsys):
    d, _ = corpus
    target = tmp_path / "me.jpg"
    target.write_bytes((d / "good.jpg").read_bytes())
    assert _one_liner().main([str(target), "-o", str(target), "--no-show"]) == 2
    assert target.read_bytes() == (d / "good.jpg").read_bytes()
    assert "is the input photo" in capsys.readouterr().err


# ---------------------------------------------------------------- HTTP API

HTTP_CASES = {
    "empty upload": (dict(files={"file": ("a.jpg", b"", "image/jpeg")}), 400),
    "text upload": (dict(files={"file": ("a.jpg", b"hello" * 50, "application/octet-stream")}), 400),
    "svg upload": (dict(files={"file": ("a.svg", b"<svg/>", "image/svg+xml")}), 400),
    "header-only jpeg": ("header_only", 400),
    "30000x30000 png": (dict(files={"file": ("h.png", png_claiming(30_000, 30_000), "image/png")}), 413),
    "pdf upload": (dict(files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}), 415),
    "no file field": (dict(data={"x": "1"}), 415),
    "unknown filter": ("unknown_filter", 400),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_api_bad_uploads(case):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from facekeypoints.web import WebSettings, create_app

    kwargs, status = HTTP_CASES[case]
    photo = Path(demo_photo()).read_bytes()
    if kwargs == "header_only":
        kwargs = dict(files={"file": ("cut.jpg", photo[:600], "image/jpeg")})
    elif kwargs == "unknown_filter":
        kwargs = dict(files={"file": ("p.jpg", photo, "image/jpeg")}, params={"filter": "nope"})
    with TestClient(create_app(WebSettings(workers=1)), raise_server_exceptions=True) as c:
        r = c.post("/api/detect", **kwargs)
        assert r.status_code == status, (r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
        assert c.get("/api/health").json()["status"] == "ok"


# ---------------------------------------------------------------- real processes: no traceback on stderr

SUBPROCESS_CASES = [
    ["-m", "facekeypoints.cli", "detect", "{d}/good.jpg", "--json", "{d}/taken.json"],
    ["-m", "facekeypoints.cli", "video", "{d}/tiny.avi", "-o", "/sys/fkp-x.mp4"],
    ["-m", "facekeypoints.cli", "detect", "{d}/text.jpg", "{d}/empty.jpg", "--json", "{tmp}/r.json"],
    ["{root}/face_keypoints.py", "{d}/svg.jpg", "--no-show"],
]


@pytest.mark.parametrize("argv", SUBPROCESS_CASES, ids=["detect-dest", "video-sys", "detect-bad", "one-liner"])
def test_subprocess_has_no_traceback(corpus, argv, tmp_path):
    import os

    d, _ = corpus
    args = [a.format(d=d, tmp=tmp_path, root=ROOT) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode in (1, 2) and r.stderr.strip(), r
    assert "Traceback" not in r.stderr and "Error:" not in r.stderr.replace("fkp", "")
    assert not [p for p in (*d.rglob("*"), *tmp_path.rglob("*")) if TEMP_LIKE.search(p.name)]


# ---------------------------------------------------------------- --help

MINE = ("detect", "demo", "video", "webcam", "filters", "export", "kaggle-submit", "visualize")


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


@pytest.mark.parametrize("command", MINE)
def test_help_has_a_line_and_the_default_for_every_option(command):
    p = _subparsers()[command]
    text = p.format_help()
    for a in p._actions:
        if a.option_strings and a.dest != "help":
            assert a.help, f"{command} {a.option_strings[0]} has no help line"
            if a.default not in (None, False, [], "==SUPPRESS=="):
                assert "default" in a.help.lower() or f"(default: {a.default})" in " ".join(text.split()), \
                    f"{command} {a.option_strings[0]}: default {a.default!r} not shown"


def test_every_command_shows_defaults():
    from facekeypoints.cli.main import DefaultsHelpFormatter

    subs = _subparsers()
    assert all(p.formatter_class is DefaultsHelpFormatter for p in subs.values())
    assert "(default: 70)" in " ".join(subs["train"].format_help().split())  # the 50-minute default is visible


def test_corpus_size():
    """Done means: at least 100 bad inputs and destinations."""
    n = (len(IMAGE_NAMES) * 2 + sum(e == "error" for e in EXPECT.values()) + len(DEST_CASES) + len(INPUT_CASES) + len(HTTP_CASES) + len(SUBPROCESS_CASES) + 4
         + 10)  # + the one-liner destinations + the API array/model/filter/destination cases
    assert n >= 100, n


def test_usage_errors_exit_2():
    assert issubclass(OutputError, UsageError) and issubclass(UsageError, FkpError)


def test_video_writer_failure_is_the_error_shown_and_leaves_no_partial(corpus, tmp_path, monkeypatch):
    """Issue 14: when OpenCV cannot open the MP4 writer, that one-line error is what the user sees
    (it used to be buried by a FileNotFoundError from the cleanup), and no partial file stays."""
    import facekeypoints.video.io as vio
    from facekeypoints.video.tracker import VideoTracker

    class Unopened:
        def __init__(self, *a, **k):
            pass

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return False

        def release(self):
            pass

    d, _ = corpus
    monkeypatch.setattr(vio.cv2, "VideoWriter", Unopened)
    with pytest.raises(FkpError, match="cannot write mp4v") as e:
        vio.run_video(str(d / "tiny.avi"), VideoTracker(), out=str(tmp_path / "o.mp4"), progress=False)
    assert str(tmp_path / "o.mp4") in str(e.value)
    assert list(tmp_path.iterdir()) == []
