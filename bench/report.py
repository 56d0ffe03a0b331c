"""docs/benchmarks.md from the JSON report of bench/suite.py (and the last --haar-sweep)."""

from __future__ import annotations

from suite import DETECTOR_VARIANTS, DLIB, MP, REGIONS68

from facekeypoints.schema import KEYPOINT_NAMES

SET_TITLES = {"300w": "300-W val", "lfpw": "LFPW val", "300w+lfpw": "300-W + LFPW val", "udacity": "Udacity val",
              "mtfl": "MTFL val", "multi": "dlib's multi-face photos", "dogs": "dogs.jpg"}


def ordinal(n: int) -> str:
    return f"{n}{'nd' if n == 2 else 'rd' if n == 3 else 'th'}"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def nme(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x" if v >= 0.1 else f"{v:.3f}x"


def _found(d: dict | None) -> str:
    return "-" if d is None else f"{d['found']}/{d['labels']} ({pct(d['rate'])})"


def _trees(rep: dict) -> list[str]:
    out = []
    for tree, c in rep["trees"].items():
        if tree == "skipped":
            out += [f"row **{x['row']}** skipped: its runner did not start (`{x['error'].splitlines()[-1]}`)" for x in c]
            continue
        out.append(f"`{tree}` at commit `{c.get('git', '?')}` (uncommitted in src/: {c.get('src_uncommitted', '?')}; "
                   f"15-point model {c['model_sha256']}, detectors {', '.join(c['detectors'])}, default "
                   f"{c['default_detector']}, 68-point model {c['points68_sha256'] if c['points68'] else 'none'})")
    return out


def targets(rep: dict) -> list[tuple[str, bool, str]]:
    """Issue 3's targets for the default facekeypoints row (300-W val, 640x480 timing on 300-W + LFPW)."""
    s, t = rep["summary"]["sets"].get("300w", {}), rep["summary"]["timing"]
    fk = next((x["name"] for x in rep["systems"] if x["key"] == "fk"), None)
    out: list[tuple[str, bool, str]] = []
    if fk is None or fk not in s:
        return out
    if MP in s and s[fk].get("nme_common") is not None and s[MP].get("nme_common") is not None:
        a, b = s[fk]["nme_common"], s[MP]["nme_common"]
        out.append(("NME on the 300-W faces all keypoint systems found lower than MediaPipe's", a < b,
                    f"{nme(a)} vs {nme(b)}"))
    if DLIB in s:
        a, b = s[fk]["rate"], s[DLIB]["rate"]
        out.append(("300-W detection rate within 3 points of dlib's", a >= b - 0.03, f"{pct(a)} vs {pct(b)}"))
        a, b = t[fk]["ms_median"], t[DLIB]["ms_median"]
        if a and b:
            out.append(("median time per 640x480 photo lower than dlib's (HOG upsample 1 + 68 points)", a < b,
                        f"{ms(a)} ms vs {ms(b)} ms ({a / b:.2f}x)"))
    return out


def facts(rep: dict) -> list[str]:
    """Plain sentences computed from the numbers."""
    out = []
    sets, t = rep["summary"]["sets"], rep["summary"]["timing"]
    for x in rep["systems"]:
        n = x["name"]
        if x["kind"] == "pipeline" and t[n].get("det_ms_median") and t[n].get("ms_median"):
            out.append(f"- {n}: the face detector takes {ms(t[n]['det_ms_median'])} of its {ms(t[n]['ms_median'])} ms "
                       "per 640x480 photo (medians).")
    default = next((x["name"] for x in rep["systems"] if x["key"] == "fk"), None)
    both = sets.get("300w+lfpw", {})
    for x in rep["systems"]:
        n = x["name"]
        if x["key"] in DETECTOR_VARIANTS and default in both and n in both and t[n].get("det_ms_median"):
            a, b = both[n], both[default]
            out.append(f"- {n} finds {a['found']}/{a['labels']} of the 300-W + LFPW faces against the default row's "
                       f"{b['found']}; its detector takes {ms(t[n]['det_ms_median'])} ms per 640x480 photo against "
                       f"{ms(t[default]['det_ms_median'])} ms ({ratio(t[n]['det_ms_median'] / t[default]['det_ms_median'])}"
                       " the default's).")
    multi = sets.get("multi", {})
    if multi:
        best = max(multi, key=lambda n: (multi[n]["found"], -multi[n]["unmatched"]))
        out.append(f"- Most faces found on dlib's multi-face photos: {best} ({multi[best]['found']}/"
                   f"{multi[best]['labels']}, {multi[best]['unmatched']} detections matching no labelled face). Those "
                   "labels are dlib's own detections, so dlib finds all of them by construction and a real but "
                   "unlabelled face counts as a false alarm for everyone else.")
    return out


def markdown(rep: dict, sweep: dict | None = None) -> str:
    meta, summ = rep["meta"], rep["summary"]
    names = [x["name"] for x in rep["systems"]]
    pipes = [x["name"] for x in rep["systems"] if x["kind"] == "pipeline"]
    sets, timing = summ["sets"], summ["timing"]
    m = meta["machine"]
    L = [
        "# Benchmarks: face detection and landmarks, facekeypoints vs dlib, MediaPipe and CenterFace",
        "",
        f"Generated by `{meta['command']}` (started {rep['started']}, {rep['seconds']} s) — this file is written by "
        "`bench/bench_photos.py`; do not edit it by hand.",
        "",
        *([f"The images were shared among {rep['jobs']} chains running at the same time, each with its own copy of "
           "every system and taking every "
           f"{ordinal(rep['jobs'])} image; within a chain the systems take turns image by image.", ""]
          if rep.get("jobs", 1) > 1 else []),
        "Code measured:",
        "",
        *[f"- {x}" for x in _trees(rep)],
        f"- the benchmark itself at commit `{meta.get('bench_git', '?')}`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, load average "
        f"{', '.join(f'{v:.1f}' for v in m['load_average_at_start'] or [])} at the start: **noisy** — it is shared "
        "with training runs and other jobs, so absolute milliseconds vary from run to run; every system is fed the "
        "same image in turn (rotating order), so the ratios to dlib measured in this run are the figures to "
        "compare. One thread each (`OMP_NUM_THREADS=1`, `cv2.setNumThreads(1)`, onnxruntime 1 thread); only the "
        "library's work on an already-decoded image is timed (colour conversion included, file decoding not), "
        "after one warm-up call.",
        "",
        "## Data",
        "",
        "| set | images | labelled faces | split |",
        "|---|---|---|---|",
    ]
    for k, v in rep["set_sizes"].items():
        L.append(f"| {SET_TITLES.get(k, k)} | {v['images']} | {v['faces']} | {rep['split_rules'].get(k, '-')} |")
    if rep.get("cut_by_time_budget"):
        L += ["", "**The run's time budget (`--minutes`) ran out**: these sets are reported on their first images only: "
              + ", ".join(f"{SET_TITLES.get(k, k)} {v['measured']} of {v['of']}" for k, v in rep["cut_by_time_budget"].items())
              + " (the images are in a fixed order, so this is the same subset in any run that stops there)."]
    L += [
        "",
        "A system *finds* a labelled face when one of its faces has its eye midpoint within one outer-eye-corner "
        "distance of the labelled eye midpoint (MTFL labels only eye centres: 1.40 eye-centre distances, the "
        "median ratio of the two on 300-W train), each detection matched to at most one face, nearest pairs first. "
        "Detector-only systems use their own eye points (CenterFace's 5 landmarks, MediaPipe face detection's 6 "
        "keypoints). Detections that match no labelled face count as false alarms on dlib's photos (every face "
        "dlib found there is labelled) and on dogs.jpg.",
        "",
        "## Detect",
        "",
        "| system | 300-W val | LFPW val | Udacity val | MTFL val "
        f"| dlib's photos ({rep['set_sizes'].get('multi', {}).get('faces', '-')} faces) | false alarms there "
        "| detections on dogs.jpg | ms / 640x480 photo, whole pipeline (vs dlib) | detector ms / 640x480 photo "
        "(vs dlib) | 15-point NME, 300-W + LFPW faces all keypoint rows found |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        t = timing[n]

        def g(k: str, n: str = n) -> dict | None:
            return sets.get(k, {}).get(n)

        whole = "-" if n not in pipes else f"{ms(t['ms_median'])} ({ratio(t['ms_vs_dlib'])})"
        L.append(f"| {n} | {_found(g('300w'))} | {_found(g('lfpw'))} | {_found(g('udacity'))} | {_found(g('mtfl'))} "
                 f"| {_found(g('multi'))} | {g('multi')['unmatched'] if g('multi') else '-'} "
                 f"| {g('dogs')['unmatched'] if g('dogs') else '-'} | {whole} "
                 f"| {ms(t['det_ms_median'])} ({ratio(t['det_ms_vs_dlib'])}) "
                 f"| {nme(g('300w+lfpw').get('nme_all_common')) if g('300w+lfpw') else '-'} |")
    tp = next(iter(timing.values()))["photos"] if timing else 0
    allc = next((v.get("all_common") for v in sets.get("300w+lfpw", {}).values() if v.get("all_common") is not None),
                None)
    L += [
        "",
        f"The NME column scores the {allc} 300-W + LFPW faces that every keypoint row above found (detector variants "
        "included, so it compares the whole pipelines on the same faces); the landmark tables below leave the "
        "detector variants out.",
        "",
        f"Times: medians over {tp} of the 300-W + LFPW validation photos "
        + (f"(every {ordinal(rep['timing_every'])}) " if rep.get("timing_every", 1) > 1 else "")
        + "letterboxed to 640x480 (aspect kept, black "
        "borders; PNG, so every system reads the same pixels). *Whole pipeline* = detection + keypoints; "
        "*detector* = the face detector's share of that same call, timed inside it (facekeypoints: the detector "
        "callable on the grey image, the face verifier excluded; dlib: colour conversion + HOG), or the whole call "
        "for the detector-only systems. MediaPipe FaceMesh runs its own detector inside one graph call, so it has no "
        "separate detector time: its detector is the short-range BlazeFace row. At 640x480 the systems found "
        + ", ".join(f"{n} {timing[n]['found']}/{timing[n]['labels']}" for n in names) + ".",
        "",
        *facts(rep),
        "",
        "## Landmarks: 15 keypoints end to end",
        "",
        "NME = mean point error / outer-eye-corner distance (300-W's normalisation), over the 15 keypoints, on the "
        "faces **every row of this table** found (so each row scores the same faces; the rows that only swap the "
        "face detector are in the Detect table); MTFL: its 5 labelled points / "
        "eye-centre distance. dlib's 68 points -> 15 with `facekeypoints.schema.from_ibug68` (as the labels); "
        "MediaPipe's 478 with `bench/peers/mediapipe_map.py` (chosen on 300-W train faces, frozen).",
        "",
        "| system | 300-W + LFPW: faces | NME | median NME | NME > 10% | NME, own found | 300-W NME | LFPW NME "
        "| Udacity: faces | NME | MTFL: faces | NME (eye centres, 5 points) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    variants = {x["name"] for x in rep["systems"] if x["key"] in DETECTOR_VARIANTS}
    for n in [n for n in pipes if n not in variants]:
        a, b, c = sets.get("300w+lfpw", {}).get(n, {}), sets.get("udacity", {}).get(n, {}), sets.get("mtfl", {}).get(n, {})
        L.append(f"| {n} | {a.get('common', '-')} | {nme(a.get('nme_common'))} | {nme(a.get('nme_common_median'))} "
                 f"| {pct(a.get('fail10_common'))} | {nme(a.get('nme_own'))} "
                 f"| {nme(sets.get('300w', {}).get(n, {}).get('nme_common'))} "
                 f"| {nme(sets.get('lfpw', {}).get(n, {}).get('nme_common'))} "
                 f"| {b.get('common', '-')} | {nme(b.get('nme_common'))} | {c.get('common', '-')} "
                 f"| {nme(c.get('nme_common'))} |")
    l15 = summ.get("landmarks15", {})
    if l15:
        cols = [n for n in pipes if n in l15]
        L += ["", "Per keypoint, 300-W + LFPW validation, the same faces:", "",
              "| keypoint | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for k in KEYPOINT_NAMES:
            L.append(f"| {k} | " + " | ".join(nme(l15[n][k]) for n in cols) + " |")
    l68 = summ.get("landmarks68", {})
    ours68 = any(n != DLIB for res in l68.values() for n in res)
    L += ["", "## Landmarks: 68 points (iBUG order)", ""]
    if not ours68:
        L += ["No facekeypoints tree measured here offers `points=68` with a 68-point model, so there is no 68-point "
              "comparison in this run" + (" (dlib's own figures below)." if l68 else "."), ""]
    if l68:
        L += ["300-W's standard: NME over the 68 points (or one region) / outer-eye-corner distance (points 36 and 45), "
              "on the faces every 68-point system found.", "",
              "| set | system | faces | NME | median | " + " | ".join(REGIONS68) + " |",
              "|---|---|---|---|---|" + "---|" * len(REGIONS68)]
        for g, res in l68.items():
            for n, r in res.items():
                L.append(f"| {SET_TITLES.get(g, g)} | {n} | {r['faces']} | {nme(r['nme'])} | {nme(r['nme_median'])} | "
                         + " | ".join(nme(r[k]) for k in REGIONS68) + " |")
        L += ["", "Regions: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67."]
    r = l68.get("300w+lfpw", {})
    for n in (n for n in r if n != DLIB and DLIB in r):
        L += ["", f"On the {r[n]['faces']} 300-W + LFPW faces both found, {n} has a 68-point NME of {nme(r[n]['nme'])} "
              f"against dlib's {nme(r[DLIB]['nme'])} ({r[n]['nme'] / r[DLIB]['nme']:.2f}x; dlib was trained on these "
              "photos)."]
    tg = targets(rep)
    if tg:
        L += ["", "## Targets (issue 3)", ""]
        L += [f"- {'met' if ok else '**not met**'}: {text}: {detail}" for text, ok, detail in tg]
    L += ["", "## How the systems run", ""]
    L += [f"- **{x['name']}**: {x['note']}" for x in rep["systems"]]
    L += [
        "",
        "Caveats: dlib's 68-point model was trained on iBUG 300-W, whose training set includes these AFW, HELEN and "
        "LFPW photos, so its landmark NME here is optimistic; dlib's multi-face labels are dlib's own output. "
        "MediaPipe was never trained on the 300-W landmark definition, so its NME includes that definition gap. "
        "MTFL's eye points are pupil-like, not the mean of the six eye-contour points. Udacity's labels look "
        "model-made.",
    ]
    if sweep and sweep.get("rows"):
        L += _sweep_md(sweep)
    L += ["", "Raw numbers (per image ms and found/missed for every system and set): `docs/benchmarks.json`. "
          "How to install the peers and rerun: `bench/README.md`.", ""]
    return "\n".join(L)


def _sweep_md(sweep: dict) -> list[str]:
    rows, sm = sweep["rows"], sweep.get("meta", {})
    sets = [k for k, v in rows[0].items() if isinstance(v, dict)]
    L = ["", "## Haar detector experiments (`--haar-sweep`)", "",
         "facekeypoints with other Haar settings passed as `fk.KeypointDetector(detector=...)`, on 300-W train and "
         "validation photos (choose on train; validation only confirms). ms = median per native photo; every variant "
         "runs on each photo in turn, so the ratio to the default (same sweep) is the figure to trust. "
         f"From `{sm.get('command', '?')}` on {sm.get('date', '?')} (model {sm.get('versions', {}).get('model_sha256', '?')}).",
         "",
         "| detector | " + " | ".join(f"{k}: found | {k}: faces/photo | {k}: NME own | {k}: ms (vs default)"
                                      for k in sets) + " | detections on dogs.jpg |",
         "|---|" + "---|---|---|---|" * len(sets) + "---|"]
    for row in rows:
        L.append(f"| {row['detector']} | " + " | ".join(
            f"{pct(row[k]['detection_rate'])} ({row[k]['found']}/{row[k]['faces']}) | {row[k]['faces_per_photo']:.2f} "
            f"| {nme(row[k]['nme_own'])} "
            f"| {ms(row[k]['ms_median'])} ({ratio(row[k].get('ms_vs_default'))})" for k in sets)
            + f" | {row.get('no_face_detections', '-')} |")
    return L


def readme_rows(rep: dict) -> list[str]:
    """The README's benchmark rows (its Speed table), from the same report."""
    summ = rep["summary"]
    t, sets = summ["timing"], summ["sets"]
    cmd = "`bash bench/run_all.sh` ([docs/benchmarks.md](docs/benchmarks.md))"
    short = {"fk": "ours, default detector", "haar": "ours, haar", "learned": "ours, learned detector",
             "model15": "ours, --model15", "points68": "ours, points=68", "dlib": "dlib HOG + 68",
             "mediapipe": "MediaPipe FaceMesh", "centerface": "CenterFace", "mpfd-short": "MediaPipe detector (short)",
             "mpfd-full": "MediaPipe detector (full)"}
    ours = [x for x in rep["systems"] if x["name"].startswith("facekeypoints")]
    peers = [x for x in rep["systems"] if not x["name"].startswith("facekeypoints")]

    def label(x: dict) -> str:  # the --model15 row names its model (the system name ends "model= 15-point SHA")
        return f"ours, 15-point model {x['name'].rsplit(' ', 1)[-1]}" if x["key"] == "model15" else short[x["key"]]

    def speed(x: dict) -> str:
        v = t[x["name"]]
        whole = f"{ms(v['ms_median'])} ms ({ratio(v['ms_vs_dlib'])})" if x["kind"] == "pipeline" else ""
        det = f"detector {ms(v['det_ms_median'])} ms ({ratio(v['det_ms_vs_dlib'])})" if v.get("det_ms_median") else ""
        return f"{label(x)} " + ", ".join(p for p in (whole, det) if p)

    def found(x: dict) -> str:
        n = x["name"]
        parts = [f"{sets[g][n]['found']}/{sets[g][n]['labels']}" for g in ("300w+lfpw", "udacity", "mtfl", "multi")
                 if g in sets and n in sets[g]]
        fa = sets.get("multi", {}).get(n, {}).get("unmatched", "-")
        dogs = sets.get("dogs", {}).get(n, {}).get("unmatched", "-")
        return f"{label(x)} {' / '.join(parts)} (+{fa}, dogs {dogs})"

    lm, mt = sets.get("300w+lfpw", {}), sets.get("mtfl", {})

    def acc(x: dict) -> str:
        n = x["name"]
        return f"{label(x)} {nme(lm[n].get('nme_common'))} (MTFL {nme(mt.get(n, {}).get('nme_common'))})"

    pipes = [x for x in rep["systems"] if x["kind"] == "pipeline" and x["name"] in lm and x["key"] not in DETECTOR_VARIANTS]
    common = next((lm[x["name"]]["common"] for x in pipes), "-")
    out = [
        "| whole 640×480 photo, detection + keypoints (300-W + LFPW val, letterboxed), one thread, median; "
        "(× dlib's time in the same run) | " + "; ".join(speed(x) for x in ours) + " | "
        + "; ".join(speed(x) for x in peers) + f" | {cmd} |",
        "| faces found: 300-W + LFPW val / Udacity val / MTFL val / dlib's photos "
        f"({rep['set_sizes'].get('multi', {}).get('faces', '-')} faces; + false alarms there; on dogs.jpg) | " + "; ".join(found(x) for x in ours) + " | " + "; ".join(found(x) for x in peers) + f" | {cmd} |",
        f"| 15-point NME on the {common} 300-W + LFPW val faces every keypoint system found (MTFL: its 5 points, "
        "eye-centre normalised) | " + "; ".join(acc(x) for x in pipes if x in ours) + " | "
        + "; ".join(acc(x) for x in pipes if x not in ours) + " (dlib was trained on these photos) | " + cmd + " |",
    ]
    l68 = summ.get("landmarks68", {}).get("300w+lfpw", {})
    if any(x["name"] in l68 for x in ours):
        def r68(x: dict) -> str:
            v = l68[x["name"]]
            return f"{label(x)} {nme(v['nme'])} (jaw {nme(v['jaw'])}, eyes {nme(v['eyes'])}, mouth {nme(v['mouth'])})"

        f68 = next(iter(l68.values()))["faces"]
        out.append(f"| 68-point NME (300-W standard) on the {f68} 300-W + LFPW val faces both found | "
                   + "; ".join(r68(x) for x in ours if x["name"] in l68) + " | "
                   + "; ".join(r68(x) for x in peers if x["name"] in l68) + f" | {cmd} |")
    return out


#: First cells of the README rows this report owns (replaced in place by ``--update-readme``).
README_ROW_PREFIXES = ("| whole 640×480 photo", "| faces found:", "| 15-point NME", "| 68-point NME")


def update_readme(text: str, rows: list[str]) -> str:
    """README.md with this benchmark's rows replaced (at the place of the first old one)."""
    lines = text.splitlines()
    at = next((i for i, ln in enumerate(lines) if ln.startswith(README_ROW_PREFIXES)), None)
    if at is None:
        raise SystemExit("bench: README.md has no benchmark row to replace (| whole 640×480 photo ...)")
    kept = [ln for i, ln in enumerate(lines) if i < at or not ln.startswith(README_ROW_PREFIXES)]
    return "\n".join(kept[:at] + rows + kept[at:]) + ("\n" if text.endswith("\n") else "")
