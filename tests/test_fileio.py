"""Atomic writes between processes, and the destination checks every command runs first."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facekeypoints.errors import OutputError, UsageError
from facekeypoints.fileio import check_output_dir, check_output_file, write_json_atomic, write_text_atomic

SRC = str(Path(__file__).resolve().parents[1] / "src")

WRITER = """
import sys
from facekeypoints.fileio import write_json_atomic
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
failed = 0
for i in range(n):
    try:
        write_json_atomic(path, {"writer": tag, "i": i, "pad": "x" * 20000})
    except Exception as e:  # counted: the test wants none
        failed += 1
        print(type(e).__name__, e, file=sys.stderr)
print(failed)
"""


def test_concurrent_writers_never_collide_nor_expose_half_files(tmp_path):
    """Issue 14, item 6: two processes writing one output used to share `.name.tmp` (29-51 failed
    writes per process of 1500, invalid JSON seen by readers); each write now has its own temp file."""
    target = tmp_path / "faces.json"
    write_json_atomic(target, {"writer": "init", "i": -1})
    n = 600
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), tag, str(n)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    reads = bad = 0
    while any(p.poll() is None for p in procs):
        try:
            obj = json.loads(target.read_text())
            assert obj["writer"] in ("init", "a", "b")
        except (ValueError, KeyError):
            bad += 1
        reads += 1
        time.sleep(0.0005)
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [int(o.strip()) for o, _ in outs] == [0, 0], outs  # no write failed
    assert reads > 20 and bad == 0, (reads, bad)
    assert json.loads(target.read_text())["i"] == n - 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.json"]  # no temp file left


def test_written_files_get_normal_permissions(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "hi")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_write_leaves_nothing_and_says_where(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputError, match="taken"):
        write_text_atomic(tmp_path / "taken", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("make, path, problem", [
    (lambda d: (d / "out.json").mkdir(), "out.json", "existing folder"),
    (lambda d: (d / "f").write_text(""), "f/sub/out.json", "is a file, not a folder"),
    (None, "/sys/fkp-test.json", "cannot write"),
    (None, "/proc/fkp/x.json", "cannot write"),
    (None, "", "needs a file name"),
])
def test_check_output_file(tmp_path, make, path, problem):
    if make is not None:
        make(tmp_path)
    target = path if path.startswith("/") or not path else str(tmp_path / path)
    with pytest.raises(OutputError, match=problem) as e:
        check_output_file(target)
    assert isinstance(e.value, UsageError) and "\n" not in str(e.value)
    if path:
        assert str(e.value).startswith(target)


def test_check_output_file_accepts_what_it_should(tmp_path):
    assert check_output_file(tmp_path / "new" / "deeper" / "x.json") is not None
    assert not (tmp_path / "new").exists()  # a check creates nothing
    assert check_output_file("-", stdout=True) is None
    with pytest.raises(OutputError, match="existing folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="unknown image type"):
        check_output_file(tmp_path / "a.xyz", image=True)
    with pytest.raises(OutputError, match=r"must end in \.mp4"):
        check_output_file(tmp_path / "a.avi", suffixes=(".mp4",))
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_check_output_dir(tmp_path):
    (tmp_path / "photo.jpg").write_text("")
    with pytest.raises(OutputError, match="existing file, not a folder"):
        check_output_dir(tmp_path / "photo.jpg")
    with pytest.raises(OutputError, match="photo.jpg is a file"):
        check_output_dir(tmp_path / "photo.jpg" / "sub")
    with pytest.raises(OutputError, match="cannot write"):
        check_output_dir("/sys/fkp-out")
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]
