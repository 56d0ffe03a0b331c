"""int8 variant of an exported model (onnxruntime static quantisation), timed and scored
against the float model in the same run.

    python -m facekeypoints.training.quantize --model src/facekeypoints/models/points68.onnx \\
        --out runs/points68.int8.onnx --data ../shared/data --cache-dir ~/.cache/fkp

The convolutions' weights (per channel) and inputs are quantised to int8 (QDQ) except the
heatmap layer's, calibrated on real training crops (the validation faces are never seen). Both models are then run on the same
crops, interleaved call by call, with one onnxruntime thread: median ms per face at batch 1
and per face at batch 16, and the validation metrics of ``fkp evaluate`` for each.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ..fileio import write_json_atomic
from .data.augment import AugmentConfig, make_batch
from .data.dataset import load, split
from .evaluate import evaluate, load_predictor, model_framing


def quantize(model: str | os.PathLike, out: str | os.PathLike, calib: np.ndarray) -> Path:
    """Write an int8 (QDQ, per-channel) copy of ``model`` calibrated on (N, 96, 96) uint8 crops,
    with a sidecar like the float model's (sha256 of the new file)."""
    import hashlib

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": calib[i:i + 16].astype(np.float32)[:, None] / 255.0}
                                 for i in range(0, len(calib), 16)])

        def get_next(self):
            return next(self.batches, None)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pre = out.with_name(f".{out.stem}.pre.onnx")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
        import onnx

        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        # the convolutions only, and not the heatmap layer: the soft-argmax turns the logits'
        # rounding into position error (quantising everything cost a quarter more NME)
        quantize_static(str(pre), str(tmp), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=convs[-1:])
        os.replace(tmp, out)
    finally:
        pre.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    meta_in = Path(model).with_suffix(".json")
    meta = json.loads(meta_in.read_text()) if meta_in.is_file() else {}
    meta.update(quantized="int8 (onnxruntime static, QDQ, per-channel weights)", source_sha256=meta.get("sha256"),
                sha256=hashlib.sha256(out.read_bytes()).hexdigest())
    write_json_atomic(out.with_suffix(".json"), meta)
    return out


def time_models(paths: dict[str, str], crops: np.ndarray, repeats: int = 1000) -> dict:
    """Median ms per face, batch 1 and batch 16, one onnxruntime thread, interleaved."""
    preds = {k: load_predictor(p, threads=1, native=True) for k, p in paths.items()}
    for f in preds.values():
        for _ in range(30):
            f(crops[:1])
    one = {k: [] for k in preds}
    many = {k: [] for k in preds}
    for i in range(repeats):
        for k, f in preds.items():
            t = time.perf_counter()
            f(crops[i % 16:i % 16 + 1])
            one[k].append(time.perf_counter() - t)
            if i % 10 == 0:
                t = time.perf_counter()
                f(crops[:16])
                many[k].append((time.perf_counter() - t) / 16)
    return {k: {"ms_batch1_median": 1000 * float(np.median(one[k])),
                "ms_batch1_p90": 1000 * float(np.percentile(one[k], 90)),
                "ms_per_face_batch16_median": 1000 * float(np.median(many[k])),
                "mb": os.path.getsize(paths[k]) / 1e6} for k in preds} | {"load_average": list(os.getloadavg())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="float ONNX model (fkp export)")
    ap.add_argument("--out", required=True, help="int8 ONNX model to write")
    ap.add_argument("--data", nargs="+", default=["../shared/data"], help="calibration and validation data")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--calib", type=int, default=512, help="training crops for calibration")
    ap.add_argument("--repeats", type=int, default=1000, help="timed calls per model")
    ap.add_argument("--peer", default=None, help="another ONNX model timed in the same run (e.g. default.onnx)")
    ap.add_argument("--report", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    faces = load(args.data, args.cache_dir)
    tr, _ = split(faces, 0.15, 0)
    idx = np.random.default_rng(0).permutation(tr)[:args.calib]
    crops = make_batch(faces.contexts[idx], faces.keypoints[idx], faces.mask[idx], np.random.default_rng(0),
                       AugmentConfig(), framing=model_framing(args.model))[0]  # calibrated on the model's own crops
    q = quantize(args.model, args.out, crops)
    paths = {"float": args.model, "int8": str(q)}
    timed = paths | ({"peer": args.peer} if args.peer else {})
    report = {"timing": time_models(timed, crops[:16], args.repeats), "validation": {}}
    for k, p in paths.items():
        res = evaluate(p, args.data, cache_dir=args.cache_dir)
        report["validation"][k] = {s: {m: v[m] for m in ("faces", "rmse", "nme", "nme68", "nme_eye_centres") if m in v}
                                   for s, v in res["sets"].items()}
    print(json.dumps(report, indent=2))
    if args.report:
        write_json_atomic(args.report, report)


if __name__ == "__main__":
    main()
