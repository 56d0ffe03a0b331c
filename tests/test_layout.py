"""The package's layout rules, read from the source (AST, nothing imported).

* only ``training/`` imports torch;
* nothing outside ``training/`` imports it, except the CLI's training commands, inside the command;
* no two modules import each other, directly or round a longer circle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "facekeypoints"
TRAINING_COMMANDS = {"cli.train", "cli.train_detector", "cli.evaluate", "cli.export", "cli.visualize", "cli.kaggle_submit"}
TORCH = ("torch",)


@dataclass(frozen=True)
class Import:
    module: str  # importing module, relative to the package ("" = the package itself)
    target: str  # imported module: package-relative for the package's own, else absolute with a "!" prefix
    in_function: bool
    line: int


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(root: Path, top: str = "facekeypoints") -> list[Import]:
    """Every import statement of every module under ``root``, resolved to module names."""
    mods = _modules(root)
    found: list[Import] = []
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]

        def own(absolute: str) -> str | None:
            if absolute == top:
                return ""
            if absolute.startswith(top + "."):
                return absolute[len(top) + 1:]
            return None

        def visit(node: ast.AST, in_function: bool, mod: str = name, package: str = package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    continue  # annotations only, never executed
                fn = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, ast.Import):
                    for a in child.names:
                        rel = own(a.name)
                        found.append(Import(mod, rel if rel is not None else "!" + a.name, fn, child.lineno))
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package.split(".") if package else []
                        base = base[: len(base) - (child.level - 1)] if child.level > 1 else base
                        target = ".".join(base + ([child.module] if child.module else []))
                    else:
                        rel = own(child.module or "")
                        if rel is None:
                            found.append(Import(mod, "!" + (child.module or ""), fn, child.lineno))
                            continue
                        target = rel
                    for a in child.names:
                        sub = f"{target}.{a.name}" if target else a.name
                        found.append(Import(mod, sub if sub in mods else target, fn, child.lineno))
                visit(child, fn, mod, package)

        visit(ast.parse(path.read_text(), str(path)), False)
    return found


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(root: Path) -> list[str]:
    """Every broken layout rule under ``root``, one line each (empty = clean)."""
    found = imports(root)
    out = []
    for imp in found:
        if _inside(imp.module, "training"):
            continue
        if imp.target.startswith("!") and imp.target[1:].split(".")[0] in TORCH:
            out.append(f"{imp.module}:{imp.line} imports {imp.target[1:]} outside training/")
        if not imp.target.startswith("!") and _inside(imp.target, "training"):
            if imp.module not in TRAINING_COMMANDS:
                out.append(f"{imp.module}:{imp.line} imports {imp.target}: only the CLI's training commands may")
            elif not imp.in_function:
                out.append(f"{imp.module}:{imp.line} imports {imp.target} at module level: do it inside the command")
    out += [f"import circle: {' -> '.join(c)}" for c in cycles(found)]
    return out


def cycles(found: list[Import]) -> list[list[str]]:
    """The package's import circles (strongly connected components of size > 1, or self-imports)."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if not imp.target.startswith("!") and imp.target != imp.module:
            graph.setdefault(imp.module, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                result.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return result


def test_package_layout_rules_hold():
    assert PACKAGE.is_dir()
    assert violations(PACKAGE) == []


def test_the_layout_has_its_rooms():
    mods = _modules(PACKAGE)
    for name in ("training", "training.train", "training.evaluate", "training.model", "detection", "detection.haar",
                 "video.tracker", "cli.main", "schema", "runtime", "pipeline"):
        assert name in mods, name
    # the training loop may call evaluation; evaluation never needs the loop
    found = imports(PACKAGE)
    assert any(i.module == "training.train" and i.target == "training.evaluate" for i in found)
    assert not any(i.module == "training.evaluate" and i.target == "training.train" for i in found)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_checker_finds_each_kind_of_violation(tmp_path):
    _write(tmp_path, {
        "__init__.py": "",
        "pipeline.py": "import torch\nfrom .training import model\n",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .a import x\n",
        "cli/__init__.py": "",
        "cli/train.py": "from ..training.train import train\n",
        "cli/evaluate.py": "def run():\n    from ..training import evaluate\n",
        "cli/detect.py": "def run():\n    from facekeypoints.training.model import build\n",
        "training/__init__.py": "",
        "training/model.py": "import torch\n",
        "training/train.py": "from .model import build\n",
        "training/evaluate.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .train import x\n",
    })
    v = violations(tmp_path)
    assert any(s.startswith("pipeline:1 imports torch") for s in v), v
    assert any(s.startswith("pipeline:2 imports training.model: only") for s in v), v
    assert any(s.startswith("cli.train:1 imports training.train at module level") for s in v), v
    assert any(s.startswith("cli.detect:2 imports training.model: only") for s in v), v
    assert "import circle: a -> b -> a" in v, v
    assert not any(s.startswith(("cli.evaluate", "training")) for s in v), v  # allowed; TYPE_CHECKING skipped
    assert len(v) == 5, v


@pytest.mark.parametrize("command", sorted(TRAINING_COMMANDS))
def test_training_commands_exist(command):
    assert (PACKAGE / (command.replace(".", "/") + ".py")).is_file()


def test_detection_side_runs_where_torch_cannot_be_imported(tmp_path):
    """As in a venv without torch: ``import torch`` fails, yet the package, the pipeline, the
    web app and ``fkp demo`` work."""
    import subprocess
    import sys

    out = tmp_path / "demo.jpg"
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
            "import facekeypoints, facekeypoints.pipeline, facekeypoints.web, facekeypoints.video.tracker\n"
            "from facekeypoints.cli import main\n"
            f"rc = main(['demo', '-o', {str(out)!r}])\n"
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10_000 and "face" in r.stdout
    # and the training commands say what is missing in one line instead of a traceback
    code = ("import sys; sys.modules['torch'] = None\nfrom facekeypoints.cli import main\n"
            "sys.exit(main(['train', '--data', 'nowhere', '--epochs', '1']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "torch" in r.stderr, r.stderr
