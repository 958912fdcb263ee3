"""The layering the design documents (issue 17 item 5), asserted over every module's imports.

Each library module is parsed with `ast` (imports inside functions count too) and its project
imports resolved to absolute module names:
- `jitflow.ir` imports nothing of the project outside itself, and no `importlib` (the parser gets
  its op table passed in: `known_ops`, or the table `jitflow.ops.registry` registers);
- `jitflow.runtime` imports only the layers below it (ir, ops, passes, codegen, errors, envvars,
  version), never the top-level `jitflow` package nor framework / api / session;
- `jitflow.codegen` imports only ir, ops, errors, envvars and the runtime's object layout;
- the numpy-object layout constants live in the runtime, and the dead code the issue names is gone.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"jitflow": ROOT / "jitflow", "jitflow.codegen": ROOT / "codegen", "jitflow.runtime": ROOT / "runtime"}


def _modules():
    """{dotted module name: path} of every library module (the three package roots of pyproject)."""
    out = {}
    for package, directory in PACKAGE_DIRS.items():
        for path in sorted(directory.rglob("*.py")):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            out[".".join([package] + parts)] = (path, is_package)
    return out


MODULES = _modules()


def _imports(name: str) -> list:
    """[(line, absolute imported name)] for `name`; `from X import a` gives X.a (a module or a name in X)."""
    path, is_package = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _project(imported: str) -> bool:
    return imported == "jitflow" or imported.startswith("jitflow.")


def _violations(prefix: str, allowed: tuple) -> list:
    bad = []
    for name in MODULES:
        if name != prefix and not name.startswith(prefix + "."):
            continue
        for line, imported in _imports(name):
            if _project(imported) and not any(imported == a or imported.startswith(a + ".") for a in allowed):
                bad.append(f"{MODULES[name][0]}:{line} imports {imported}")
    return bad


def test_the_walk_sees_the_packages():
    assert {"jitflow.ir.parser", "jitflow.runtime.build", "jitflow.codegen.cpu", "jitflow.train.saver"} <= set(MODULES)
    assert ("jitflow.runtime.blas" in MODULES and
            any(i == "jitflow.runtime.blas.blas_symbols" for _, i in _imports("jitflow.runtime.build")))


def test_ir_imports_nothing_of_the_project():
    assert _violations("jitflow.ir", ("jitflow.ir",)) == []
    tricks = [f"{name}:{line}" for name in MODULES if name.startswith("jitflow.ir")
              for line, imported in _imports(name) if imported.split(".")[0] == "importlib"]
    assert tricks == [], "jitflow.ir gets the op table passed in, it does not import it by name"


def test_runtime_imports_only_the_layers_below_it():
    allowed = ("jitflow.runtime", "jitflow.codegen", "jitflow.ir", "jitflow.passes", "jitflow.ops",
               "jitflow.errors", "jitflow.envvars", "jitflow.version")
    assert _violations("jitflow.runtime", allowed) == []


def test_codegen_imports_only_ir_ops_and_the_runtime_layout():
    allowed = ("jitflow.codegen", "jitflow.ir", "jitflow.ops", "jitflow.errors", "jitflow.envvars",
               "jitflow.runtime.object_layout")
    assert _violations("jitflow.codegen", allowed) == []


def test_the_rule_checker_catches_a_violation(tmp_path, monkeypatch):
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    import jitflow\n    from ..framework import graph\n    from . import build\n")
    monkeypatch.setitem(MODULES, "jitflow.runtime.fake", (fake, False))
    bad = _violations("jitflow.runtime", ("jitflow.runtime",))
    assert [b.split(" imports ")[1] for b in bad if "fake.py" in b] == ["jitflow", "jitflow.framework.graph"]


def test_object_layout_belongs_to_the_runtime():
    from jitflow.codegen import cpu
    from jitflow.runtime import executable, object_layout
    assert cpu.NDARRAY_DATA_OFFSET is object_layout.NDARRAY_DATA_OFFSET == executable.NDARRAY_DATA_OFFSET
    assert cpu.BOXED_KINDS is object_layout.BOXED_KINDS
    for name in ("jitflow.codegen.cpu", "jitflow.runtime.executable"):
        tree = ast.parse(MODULES[name][0].read_text(encoding="utf-8"))
        assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
        assert not assigned & {"BOXED_KINDS", "NDARRAY_DATA_OFFSET"}, name


def test_parser_gets_the_op_table_passed_in(monkeypatch):
    from jitflow.ir import parser
    from jitflow.ops import all_ops
    from jitflow.ops.registry import _REGISTRY
    assert parser._default_op_table == [_REGISTRY] and "matmul" in all_ops()
    text = "func @g(%a: f32[]) -> (f32[]) {\n  %0 = frobnicate %a : f32[]\n  return %0\n}\n"
    with pytest.raises(parser.IRParseError, match="unknown op 'frobnicate'"):
        parser.parse_function(text)                                   # the registry's table by default
    assert parser.parse_function(text, known_ops={"frobnicate"}).nodes[0].op == "frobnicate"
    monkeypatch.setattr(parser, "_default_op_table", [])
    with pytest.raises(TypeError, match="known_ops"):
        parser.parse_function(text)
    assert parser.parse_function(text, known_ops=("frobnicate",)).nodes[0].op == "frobnicate"


@pytest.mark.parametrize("module, name", [
    ("jitflow.pytree", "tree_map"), ("jitflow.placement", "gpu_count"),
    ("jitflow.api.convert", "is_python_scalar"), ("jitflow.api.convert", "default_graph_of"),
    ("jitflow.ir.types", "python_scalar_dtype"), ("jitflow.distribute.ray_backend", "WorkerLost"),
])
def test_dead_code_is_gone(module, name):
    import importlib
    assert not hasattr(importlib.import_module(module), name)


def test_runtime_does_not_import_llvmlite_it_does_not_use():
    for name in MODULES:
        if name.startswith("jitflow.runtime"):
            source = MODULES[name][0].read_text(encoding="utf-8")
            if any(i.split(".")[0] == "llvmlite" for _, i in _imports(name)):
                uses = source.count("llvmlite.") + source.count("llvm.")
                assert uses, f"{name} imports llvmlite and never uses it"
