"""The docstring examples of every module of `synthlayers` run as doctests.

One test per module, under whatever backend the suite runs with
(`KERAS_BACKEND`), so examples must print backend-neutral values: no
`TensorShape`, no `.numpy()`; print `tuple(x.shape)` or NumPy values.
"""

import doctest
import importlib
import pkgutil

import pytest

import synthlayers

OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

# Modules whose examples need real data or a download: {module: reason}.
SKIPPED = {}


def module_names():
    names = [synthlayers.__name__]
    for info in pkgutil.walk_packages(synthlayers.__path__, prefix="synthlayers."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", module_names())
def test_docstring_examples(name):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    module = importlib.import_module(name)
    # Only the module's own objects, not those it imports.
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    failures = []
    for test in sorted(tests, key=lambda t: t.name):
        output = []
        result = runner.run(test, out=output.append, clear_globs=True)
        if result.failed:
            failures.append("".join(output))
    assert not failures, "\n".join(failures)
