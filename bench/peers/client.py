"""Benchmark side of protocol.py: start a peer runner in its own venv and ask it for one photo at a time."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNERS = {"dlib": HERE / "dlib_runner.py", "mediapipe": HERE / "mediapipe_runner.py",
           "mediapipe-detection": HERE / "mediapipe_detection_runner.py", "centerface": HERE / "centerface_runner.py",
           "facekeypoints": HERE / "fk_runner.py"}
#: Where bench/setup_peers.sh puts the peers' venvs (override with FKP_PEER_VENVS).
PEER_VENVS = Path(os.environ.get("FKP_PEER_VENVS", "/work/venvs"))
#: Interpreter of the peers' venv (bench/README.md); override with FKP_PEER_PYTHON (one venv for all peers).
DEFAULT_PEER_PYTHON = os.environ.get("FKP_PEER_PYTHON", str(PEER_VENVS / "mediapipe" / "bin" / "python"))


def peer_python(name: str) -> str:
    """The interpreter for one peer: FKP_PEER_PYTHON if set, else its venv from bench/setup_peers.sh
    (dlib in ``dlib/``, MediaPipe and CenterFace in ``mediapipe/``)."""
    if "FKP_PEER_PYTHON" in os.environ:
        return os.environ["FKP_PEER_PYTHON"]
    return str(PEER_VENVS / ("dlib" if name == "dlib" else "mediapipe") / "bin" / "python")


class PeerError(RuntimeError):
    pass


class PeerClient:
    """A long-lived peer runner subprocess (one thread, its stderr kept in a log file)."""

    def __init__(self, name: str, python: str | None = None, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, label: str | None = None) -> None:
        python = python or peer_python(name)
        if not Path(python).exists():
            raise PeerError(f"peer python {python} not found: run bench/setup_peers.sh (bench/README.md) "
                            "or set FKP_PEER_PYTHON")
        self.name = label or name
        full_env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2", **(env or {})}
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"fkp-peer-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([python, str(RUNNERS[name]), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1, env=full_env)
        hello = self._read()
        self.versions: dict = hello.get("versions", {})

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            tail = Path(self.log.name).read_text()[-2000:]
            raise PeerError(f"{self.name} runner exited (rc={self.proc.poll()}); its log ends:\n{tail}")
        return json.loads(line)

    def run(self, path: str | os.PathLike) -> dict:
        """``{"ms", "size", "faces": [{"box", "score", "points"}]}`` (+ ``det_ms``) for one photo."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"path": str(Path(path).resolve())}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise PeerError(f"{self.name}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"quit": true}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.log.close()
        os.unlink(self.log.name)

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
