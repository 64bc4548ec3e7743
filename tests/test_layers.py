"""The package's layers point one way (WORKSPACE.md):

    config (plain data) -> models, diffusion, parallel -> data -> train -> sampling -> eval -> cli

Every `lumiere_jax` import in the source (module level or inside a function, read with `ast`) must
point to the same or a lower layer, and the module graph must have no cycle."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "lumiere_jax")

# top-level module or package of lumiere_jax -> layer (lower = more basic)
LAYERS = {
    "axes": 0,
    "config": 0,
    "presets": 0,
    "runtime": 0,
    "models": 1,
    "diffusion": 1,
    "parallel": 1,
    "flops": 1,
    "data": 2,
    "train": 3,
    "sampling": 4,
    "eval": 5,
    "cli": 6,
    "demo": 6,
    "app": 6,
}


def _modules() -> dict[str, str]:
    """dotted module name (without the package) -> file."""
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                name = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                out[name.removesuffix(".__init__").removesuffix("__init__")] = path
    return out


def _imports(path: str, modules: dict[str, str]) -> set[str]:
    """The lumiere_jax modules that the file at `path` imports (the most specific module named)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        targets = []
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and (node.module == "lumiere_jax" or node.module.startswith("lumiere_jax."))
        ):
            base = node.module[len("lumiere_jax") :].lstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                targets.append(sub if sub in modules else base)
        elif isinstance(node, ast.Import):
            targets += [a.name[len("lumiere_jax.") :] for a in node.names if a.name.startswith("lumiere_jax.")]
        found.update(t for t in targets if t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_every_module_has_a_layer():
    unknown = sorted({m.split(".")[0] for m in _modules() if m} - set(LAYERS))
    assert not unknown, f"give these a layer in tests/test_layers.py: {unknown}"


def test_imports_point_down():
    upward = [
        f"{a} -> {b}"
        for a, targets in sorted(_graph().items())
        if a
        for b in sorted(targets)
        if LAYERS[b.split(".")[0]] > LAYERS[a.split(".")[0]]
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_module_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", ["lumiere_jax.config", "lumiere_jax.axes"])
def test_reading_a_config_loads_no_jax(module):
    code = (
        f"import sys, {module}; bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', "
        "'optax', 'orbax', 'tensorflow')); print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f"importing {module} loads {run.stdout.strip()}"


def test_loading_every_config_file_loads_no_jax(tmp_path):
    """From another working directory, as a notebook would: configs/ is a package with ordinary imports."""
    code = (
        "import glob, os, sys; from lumiere_jax import config; "
        f"files = sorted(glob.glob(os.path.join({ROOT!r}, 'configs', '[!_]*.py'))); "
        "[config.load_config_file(f) for f in files]; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax', 'orbax')); "
        "print(len(files), bad); sys.exit(1 if bad or len(files) < 8 else 0)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert run.returncode == 0, run.stdout + run.stderr
