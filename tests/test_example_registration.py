"""Smoke test of examples/train_registration.py --quick (slow: trains and registers)."""

import json
import os
import subprocess
import sys

import nibabel  # noqa: F401  (the example writes NIfTI through synthlayers.io)
import pytest

from synthlayers.data.registration_cases import data_available

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "train_registration.py")


@pytest.mark.slow
@pytest.mark.skipif(
    not data_available(os.environ.get("SYNTHLAYERS_DATA_DIR")),
    reason="needs the vxm test scan and SynthSeg's label maps",
)
def test_quick_brains_run_writes_results_figures_and_model(tmp_path):
    pytest.importorskip("dipy")
    out = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, EXAMPLE, "--brains", "--segmenter", "8", "--quick"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["training"]["steps"] == 20
    assert results["model"]["kind"] == "registration"
    assert len(results["cases"]) == 4
    summary = results["summary"]
    assert set(summary) == {"none", "affine", "network"}
    for method in summary.values():
        assert 0 <= method["all"]["mean_dice"] <= 1
        assert 0 <= method["all"]["folding_percent"] <= 100
    # The affine is the network's starting point: both see the same cases.
    assert summary["affine"]["all"]["num_cases"] == 4
    for name in ("figure.png", "deformation.png", "model.keras"):
        assert (out / name).stat().st_size > 0
    from synthlayers.workflows.registration import load_registration_model

    model = load_registration_model(out / "model.keras")
    assert model.metadata["preset"] == "brains"
    assert model.metadata["input_shape"] == [160, 192]
    assert model.metadata["segmenter_features"] == 8
