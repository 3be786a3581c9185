"""The tutorials in notebooks/: committed with their outputs, and they run.

The fast checks read the committed notebooks (plain JSON): every code cell
has outputs from one top-to-bottom run, none is an error, and each notebook
shows at least one figure (an image/png output). The slow test executes each
notebook with nbclient, under the suite's backend (`KERAS_BACKEND`, which
the kernel inherits, as it inherits `SYNTHLAYERS_DATA_DIR` from
tests/conftest.py), and fails on any error. Rebuild the outputs with the
same call (see `_execute`) after changing a notebook.
"""

import json
import os
import shutil
import time

import pytest

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "notebooks")
NOTEBOOKS = (
    "01_synthesis.ipynb",
    "02_segmentation.ipynb",
    "03_registration.ipynb",
    "04_backends_and_export.ipynb",
)
CELL_TIMEOUT = 600  # seconds per cell; each notebook takes under 3 minutes


def _read(name):
    with open(os.path.join(NOTEBOOK_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def _code_cells(notebook):
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_the_tutorials_are_all_there():
    found = sorted(n for n in os.listdir(NOTEBOOK_DIR) if n.endswith(".ipynb"))
    assert found == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_complete(name):
    cells = _code_cells(_read(name))
    assert cells, f"{name} has no code cells"
    missing = [i for i, c in enumerate(cells) if not c.get("outputs")]
    assert not missing, f"{name}: code cells {missing} have no outputs (re-execute it)"
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{name} was not executed top to bottom in one run: execution counts {counts}"
    )
    errors = [
        i
        for i, c in enumerate(cells)
        for o in c["outputs"]
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{name}: code cells {errors} hold errors"
    images = [
        o for c in cells for o in c["outputs"] if "image/png" in o.get("data", {})
    ]
    assert images, f"{name} shows no figure (no image/png output)"


def _execute(path, cwd):
    """Run a notebook top to bottom in a fresh kernel; return it and seconds."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": cwd}},
    )
    start = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path):
    # A copy in a temporary directory: the run writes nothing into the checkout.
    path = tmp_path / name
    shutil.copy(os.path.join(NOTEBOOK_DIR, name), path)
    notebook, seconds = _execute(str(path), str(tmp_path))
    cells = _code_cells(notebook)
    assert all(c.get("outputs") for c in cells), "a code cell gave no output"
    images = [
        o for c in cells for o in c["outputs"] if "image/png" in o.get("data", {})
    ]
    assert images, f"{name} made no figure"
    print(f"{name}: {seconds:.0f} s")
