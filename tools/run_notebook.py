"""Execute a notebook top to bottom (what CI does with notebooks/sampling.ipynb: `make notebook`).

  python tools/run_notebook.py notebooks/sampling.ipynb --set INSTALL=False --set NUM_STEPS=2 \
      --timeout 900 [--output out.ipynb]

`--set NAME=VALUE` lines are appended to the cell tagged "parameters" (Python literals). The run
fails on the first cell that raises, or when the whole run exceeds --timeout seconds; the executed
notebook (with outputs) can be written for inspection. The committed notebook has no outputs.
"""

import argparse
import ast
import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebook")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--timeout", type=int, default=900, help="seconds for the whole notebook")
    p.add_argument("--output", default="")
    args = p.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if args.set and len(params) != 1:
        raise SystemExit(f"{args.notebook}: expected one cell tagged 'parameters', found {len(params)}")
    for item in args.set:
        name, _, value = item.partition("=")
        if not name.isidentifier():
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE")
        ast.literal_eval(value)  # a Python literal, or fail here
        params[0].source += f"\n{name} = {value}"
    for cell in nb.cells:  # no stale outputs in what we run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.time()
    client = NotebookClient(
        nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}
    )
    try:
        client.execute()
    finally:
        if args.output:
            nbformat.write(nb, args.output)
    took = time.time() - start
    print(f"{args.notebook}: {len(nb.cells)} cells ran in {took:.0f} s")
    if took > args.timeout:
        raise SystemExit(f"took {took:.0f} s, over the {args.timeout} s budget")


if __name__ == "__main__":
    sys.exit(main())
