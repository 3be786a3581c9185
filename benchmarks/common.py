"""Shared by the benchmark scripts (run as scripts: this directory is on sys.path)."""


def synthesis_step(layer, mode):
    """`layer` as a step function that really draws, in benchmark `mode`.

    `"eager"`: the layer itself. `"graph"` / `"xla"`: a compiled
    `predict_on_batch` (`jit_compile` for `"xla"`) of a `SynthesisModel`,
    which calls the layer with `training=True` (`predict` would not draw).
    """
    from synthlayers.models import SynthesisModel

    if mode == "eager":
        return layer
    model = SynthesisModel(layer)
    model.compile(jit_compile=mode == "xla")
    return model.predict_on_batch


def write_section(path, name, text):
    """Replace the section `name` of the markdown file `path` (keep the rest).

    A section lies between `<!-- {name}: begin -->` and `<!-- {name}: end -->`;
    a new one is appended (the file is created with a title if missing).
    """
    import os

    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    section = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" if old.strip() else "# Benchmark results\n\n"
        new += section + "\n"
    with open(path, "w") as f:
        f.write(new)


def find_data_dir(path):
    """`--data-dir`, else $SYNTHLAYERS_DATA_DIR, else the download cache."""
    from synthlayers import datasets

    try:
        return datasets.fetch_data(data_dir=path)
    except (OSError, ValueError) as error:
        raise SystemExit(
            "No SynthSeg data: pass --data-dir (a directory with "
            "synthseg_label_maps/ and synthseg_labels/), set "
            f"SYNTHLAYERS_DATA_DIR, or allow the download ({error})"
        ) from None
