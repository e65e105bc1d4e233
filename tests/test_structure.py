"""The shape of the package: no import cycles, small modules, runtime/ never imports export/, families
reached only through the registry, and configs without `model_type` still load as DocuNet."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from docunet.models import DEFAULT_MODEL_TYPE, config_from_dict, get_family, load_config
from docunet.models.docunet import DocuNetConfig

PACKAGE = Path(__file__).resolve().parents[1] / "docunet"
MAX_LINES = 400
# our modules that wrap an optional heavy dependency (importing them imports it): lazy on purpose
OPTIONAL = {"docunet.scale.ray_engine"}
# modules the generic layers may not name: a family is reached through the registry (docunet.models)
FAMILY_PACKAGES = ("docunet.models.docunet",)
GENERIC = ("docunet.export", "docunet.engines", "docunet.runtime", "docunet.inference", "docunet.training",
           "docunet.checkpoint", "docunet.artifacts", "docunet.metrics", "docunet.bench")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULE_NAMES = set(MODULES)


def internal_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported docunet module, line, at module level) for every import of the package's own modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t in MODULE_NAMES:
                found.append((t, node.lineno, id(node) in top_level or _under_type_checking(tree, node)))
    return found


def _under_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    for top in tree.body:
        if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test) and node in list(ast.walk(top)):
            return True
    return False


GRAPH = {name: sorted({t for t, _, _ in internal_imports(p)} - {name}) for name, p in MODULES.items()}


def test_no_import_cycles():
    edges = GRAPH
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for t in edges.get(m, []):
            if seen.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in seen:
                visit(t)
        stack.pop()
        seen[m] = 2

    for m in edges:
        if m not in seen:
            visit(m)


def _lazy_reexports(path: Path) -> set[int]:
    """Lines of imports inside a package's module-level `__getattr__` (PEP 562 lazy re-exports, which keep
    `import docunet` from importing torch); the only place a package may import its own modules late."""
    if path.name != "__init__.py":
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.lineno for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}


def test_package_imports_sit_at_the_top_of_each_module():
    lazy = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t}"
            for m, p in MODULES.items() for t, line, top in internal_imports(p)
            if not top and line not in _lazy_reexports(p) and t not in OPTIONAL]
    assert not lazy, lazy


def test_no_module_is_over_the_size_limit():
    big = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, big


def test_runtime_never_imports_export():
    bad = [(m, t) for m, ts in GRAPH.items() if m.startswith("docunet.runtime") for t in ts if t.startswith("docunet.export")]
    assert not bad, bad


def test_generic_layers_reach_families_only_through_the_registry():
    bad = [(m, t) for m, ts in GRAPH.items() if m.startswith(GENERIC) for t in ts if t.startswith(FAMILY_PACKAGES)]
    assert not bad, bad


def test_config_without_model_type_loads_as_docunet(tmp_path):
    """Every checkpoint written before families existed has a config.json without `model_type`."""
    legacy = {"format": "docunet-config/1", **DocuNetConfig(encoder_config={"hidden_size": 32}).to_dict()}
    assert "model_type" not in legacy
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    cfg = load_config(tmp_path / "config.json")
    assert isinstance(cfg, DocuNetConfig) and DEFAULT_MODEL_TYPE == "docunet"
    cfg.save(tmp_path / "new.json")  # new configs name their family
    assert json.loads((tmp_path / "new.json").read_text())["model_type"] == "docunet"
    assert load_config(tmp_path / "new.json") == cfg
    with pytest.raises(ValueError, match="unknown model_type 'nope'"):
        config_from_dict({**legacy, "model_type": "nope"})
    assert get_family("docunet").config_class is DocuNetConfig


def test_only_the_ray_engine_imports_ray():
    users = sorted(str(p.relative_to(PACKAGE.parent)) for p in MODULES.values()
                   if any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                          any((a.name if isinstance(n, ast.Import) else (n.module or "")).split(".")[0] == "ray" for a in n.names)
                          for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))))
    assert users == ["docunet/scale/ray_engine.py"], users
