"""The package layout: rooms by concern, imports pointing down only, small modules, and every
public name the README lists importable from ``geometry`` / ``geometry.torch``."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("geometry", "pose", "learn")
# rank of each layer / room: a module may import only from modules of lower or equal rank
LAYER = {"geometry": 0, "pose": 1, "learn": 2, "benchmarks": 3, "examples": 3}
ROOM = {"common": 0, "camera": 1, "alignment": 1, "synthetic": 2, "robust": 3, "epipolar": 4,
        "triangulation": 5, "rig": 6, "priors": 6, "people": 7, "torch": 7}
TOP_LEVEL_ALLOWED = {"__init__.py", "camera.py", "alignment.py", "synthetic.py"}


def _modules(pkg: str):
    for path in sorted((ROOT / pkg).rglob("*.py")):
        yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imports(path: Path, modname: str) -> set[str]:
    """Absolute dotted names imported by a module (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = modname.split(".") if path.name == "__init__.py" else modname.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _room(dotted: str) -> int | None:
    parts = dotted.split(".")
    if parts[0] != "geometry" or len(parts) < 2 or parts[1] not in ROOM:
        return None
    return ROOM[parts[1]]


def test_imports_point_down_only():
    bad = []
    for pkg in PACKAGES:
        for path, mod in _modules(pkg):
            for imp in _imports(path, mod):
                top = imp.split(".")[0]
                if top in LAYER and LAYER[top] > LAYER[pkg]:
                    bad.append(f"{mod} imports {imp}")
    assert not bad, "imports pointing up a layer:\n" + "\n".join(bad)


def test_geometry_rooms_import_only_lower_rooms():
    bad = []
    for path, mod in _modules("geometry"):
        mine = _room(mod)
        if mine is None:
            continue
        for imp in _imports(path, mod):
            theirs = _room(imp)
            if theirs is not None and theirs > mine:
                bad.append(f"{mod} imports {imp}")
    assert not bad, "geometry rooms importing higher rooms:\n" + "\n".join(bad)


def test_geometry_top_level_holds_only_public_helpers():
    loose = sorted(p.name for p in (ROOT / "geometry").glob("*.py")
                   if p.name not in TOP_LEVEL_ALLOWED)
    assert not loose, f"modules directly in geometry/ (move them into a room): {loose}"
    for sub in (ROOT / "geometry").iterdir():
        if sub.is_dir() and sub.name != "__pycache__":
            init = sub / "__init__.py"
            assert init.is_file(), f"{sub} is not a package"
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and len(doc) > 80, f"{init} must say what the room holds"


@pytest.mark.parametrize("pkg", PACKAGES + ("benchmarks", "examples"))
def test_no_module_over_400_lines(pkg):
    long = [(str(p.relative_to(ROOT)), n) for p, _ in _modules(pkg)
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long, f"modules over 400 lines: {long}"


def _readme_names(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- api:{re.escape(section)} -->(.*?)<!-- /api -->", text, re.S)
    assert m, f"README.md has no <!-- api:{section} --> list"
    return re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", m.group(1))


@pytest.mark.parametrize("module", ["geometry", "geometry.torch"])
def test_every_readme_name_imports(module):
    names = _readme_names(module)
    assert len(names) >= (60 if module == "geometry" else 20)
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lacks README names {missing}"
    # and the public function name wins over any submodule of the same name
    if module == "geometry":
        assert callable(mod.relative_pose) and not hasattr(mod.relative_pose, "__path__")
