"""Load test of ``fkp serve``: concurrent clients posting real photos to /api/detect.

Starts the server (uvicorn) in a subprocess on a free localhost port, sends
``--requests`` uploads from ``--concurrency`` client threads (photos from
``<data>/photos`` in turn), pings /api/health meanwhile to show the event loop
stays responsive, and prints errors, latency percentiles and throughput.
Traffic goes to 127.0.0.1 only; the run is bounded in count and time.

Usage: python bench/bench_web.py [--requests 200] [--concurrency 8] [--workers N] [--data ../shared/data]
Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def request(port: int, method: str, path: str, body: bytes | None = None, ctype: str | None = None,
            timeout: float = 120.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            if request(port, "GET", "/api/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become healthy")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None, help="server detection threads (fkp serve --workers)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    photos = sorted((Path(args.data) / "photos").glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no photos in {args.data}/photos")
    bodies = [(p.name, *multipart(p.name, p.read_bytes())) for p in photos]
    port = free_port()
    cmd = [sys.executable, "-m", "facekeypoints.cli", "serve", "--port", str(port), "--log-level", "warning"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd)
    try:
        wait_healthy(port, proc)
        workers = json.loads(request(port, "GET", "/api/health")[1])["workers"]
        for _name, body, ctype in bodies[:2]:  # warm-up, not counted
            request(port, "POST", "/api/detect", body, ctype)

        jobs = itertools.count()
        lock = threading.Lock()
        latencies: list[float] = []
        errors: list[str] = []
        faces = [0]
        done = threading.Event()
        health: list[float] = []

        def client() -> None:
            while True:
                i = next(jobs)
                if i >= args.requests:
                    return
                name, body, ctype = bodies[i % len(bodies)]
                t0 = time.perf_counter()
                try:
                    status, payload = request(port, "POST", "/api/detect", body, ctype)
                    dt = time.perf_counter() - t0
                    rec = json.loads(payload) if status == 200 else None
                    ok = rec is not None and rec.get("image") == name and rec.get("error") is None
                except (OSError, ValueError) as e:
                    dt, ok, status, payload = time.perf_counter() - t0, False, -1, str(e).encode()
                with lock:
                    latencies.append(dt)
                    if ok:
                        faces[0] += len(rec["faces"])
                    else:
                        errors.append(f"{name}: {status} {payload[:200]!r}")

        def pinger() -> None:
            while not done.wait(0.25):
                t0 = time.perf_counter()
                try:
                    if request(port, "GET", "/api/health", timeout=30)[0] == 200:
                        health.append(time.perf_counter() - t0)
                except OSError:
                    pass

        ping = threading.Thread(target=pinger, daemon=True)
        ping.start()
        threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        done.set()
        ping.join()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    lat = np.array(latencies) * 1000
    hl = np.array(health) * 1000 if health else np.array([np.nan])
    figures = {
        "requests": len(latencies), "concurrency": args.concurrency, "server_workers": workers,
        "photos": len(photos), "errors": len(errors), "faces": faces[0], "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2),
        "latency_ms": {q: round(float(np.percentile(lat, p)), 1) for q, p in
                       [("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)]},
        "health_during_load_ms": {"n": len(health), "p50": round(float(np.nanmedian(hl)), 1),
                                  "max": round(float(np.nanmax(hl)), 1)},
    }
    print(json.dumps(figures, indent=2))
    for e in errors[:10]:
        print("error:", e, file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
