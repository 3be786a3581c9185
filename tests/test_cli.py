"""Tests for the `synthlayers` command (synthlayers.cli).

Every bad input gives one line on stderr and exit code 1, writes nothing,
and never a traceback. The table of bad inputs runs in-process through
`cli.main` (fast) and, marked slow, as one subprocess per case (each pays
for importing the library). The good paths run on tiny volumes with a tiny
model whose labels are known exactly.
"""

import csv
import inspect
import os
import re
import shutil
import subprocess
import sys

import keras
import matplotlib.image
import nibabel
import numpy as np
import pytest

from synthlayers import cli
from synthlayers.models.model_file import save_model_file
from synthlayers.models.segmenter import Segmenter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# LIA (FreeSurfer's conformed order), 2 mm voxels: outputs must come back in
# this voxel order and affine, not in RAS.
LIA_2MM = np.array([[-2.0, 0, 0, 20], [0, 0, 2.0, -22], [0, -2.0, 0, 24], [0, 0, 0, 1]])
SHAPE = (16, 18, 20)

# Lines TensorFlow's C++ runtime writes to stderr when `import synthlayers`
# loads it (before the command runs); not the command's.
NATIVE_LOG = re.compile(
    r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following)"
)


def _save(path, data, affine=LIA_2MM):
    image = nibabel.Nifti1Image(np.asarray(data), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nibabel.save(image, str(path))
    return str(path)


def _label_map():
    labels = np.zeros(SHAPE, "int32")
    labels[2:8, 3:15, 4:16] = 2
    labels[8:14, 3:15, 4:16] = 41
    labels[6:10, 7:11, 8:12] = 17
    return labels


def _scan():
    scan = np.zeros(SHAPE, "float32")
    scan[4:12, 5:13, 6:14] = 100.0
    return scan


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Input files: label maps, scans and model files, good and bad."""
    d = tmp_path_factory.mktemp("inputs")
    paths = {
        "labels": _save(d / "labels.nii.gz", _label_map()),
        "scan": _save(d / "scan.nii.gz", _scan()),
        "scan_b": _save(d / "scan_b.nii.gz", _scan()[::-1].copy()),
        "float_labels": _save(d / "float_labels.nii.gz", _label_map() + 0.5),
        "labels_4d": _save(d / "labels_4d.nii.gz", np.zeros((*SHAPE, 2), "int32")),
        "scan_2d": _save(d / "scan_2d.nii.gz", np.zeros(SHAPE[:2], "float32")),
        "scan_4d": _save(d / "scan_4d.nii.gz", np.zeros((*SHAPE, 2), "float32")),
        "garbage": str(d / "garbage.nii.gz"),
        "file": str(d / "a_file"),
    }
    nan_scan = _scan()
    nan_scan[1, 2, 3] = np.nan
    nan_scan[4, 5, 6] = np.inf
    paths["scan_nan"] = _save(d / "scan_nan.nii.gz", nan_scan)
    with open(paths["garbage"], "wb") as f:
        f.write(b"not a volume at all" * 10)
    with open(paths["file"], "w") as f:
        f.write("x")
    paths["model"] = str(d / "model.keras")
    _tiny_segmenter().save(paths["model"])
    network = _tiny_segmenter().network
    paths["registration_model"] = save_model_file(
        str(d / "registration.keras"), network, {"kind": "registration"}
    )
    paths["plain_keras"] = str(d / "plain.keras")
    keras.saving.save_model(network, paths["plain_keras"])
    paths["damaged_model"] = str(d / "damaged.keras")
    with open(paths["damaged_model"], "wb") as f:
        f.write(b"PK\x03\x04 truncated")
    return paths


def _tiny_segmenter():
    """A 1x1x1 convolution: normalised intensity n > 0.5 -> 41, else 0.

    Logits (5 - 10 n, 0, 10 n - 5) for the labels (0, 2, 41); the scan's
    voxel size (2 mm) is the model's, percentiles (0, 100): no resampling,
    n is 0 or 1.
    """
    inputs = keras.Input((None, None, None, 1))
    convolution = keras.layers.Conv3D(3, 1)
    outputs = keras.layers.Softmax()(convolution(inputs))
    network = keras.Model(inputs, outputs)
    convolution.set_weights(
        [np.array([-10.0, 0.0, 10.0]).reshape(1, 1, 1, 1, 3), np.array([5.0, 0, -5])]
    )
    return Segmenter(
        network,
        [0, 2, 41],
        voxel_size=2.0,
        percentiles=(0, 100),
        flip=False,
        smoothing_sigma=0.0,
        keep_largest_component=False,
        divisor=1,
    )


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_line(stderr):
    lines = [
        line for line in stderr.splitlines() if line and not NATIVE_LOG.match(line)
    ]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    return lines[0]


# --- Bad input: one case each ------------------------------------------------------

# (case, command line with {placeholders}, words the error line holds)
BAD_INPUTS = [
    (
        "sample_missing_labels",
        "sample {tmp}/nope.nii.gz --num 1 --out {out}",
        "label map not found",
    ),
    (
        "sample_unreadable_labels",
        "sample {garbage} --num 1 --out {out}",
        "cannot be read as NIfTI",
    ),
    (
        "sample_non_integer_labels",
        "sample {float_labels} --num 1 --out {out}",
        "integer labels",
    ),
    ("sample_4d_labels", "sample {labels_4d} --num 1 --out {out}", "4D"),
    ("sample_zero_samples", "sample {labels} --num 0 --out {out}", "--num"),
    (
        "sample_out_is_a_file",
        "sample {labels} --num 1 --out {file}",
        "output directory is a file",
    ),
    (
        "sample_out_cannot_be_created",
        "sample {labels} --num 1 --out {file}/sub",
        "cannot write to the output directory",
    ),
    (
        "segment_missing_model",
        "segment {tmp}/nope.keras {scan} --out {out}",
        "model file not found",
    ),
    (
        "segment_damaged_model",
        "segment {damaged_model} {scan} --out {out}",
        "damaged",
    ),
    (
        "segment_model_of_another_kind",
        "segment {registration_model} {scan} --out {out}",
        "received a registration one",
    ),
    (
        "segment_plain_keras_file",
        "segment {plain_keras} {scan} --out {out}",
        "not a synthlayers model file",
    ),
    (
        "segment_missing_image",
        "segment {model} {scan} {tmp}/nope.nii.gz --out {out}",
        "image not found",
    ),
    (
        "segment_unreadable_image",
        "segment {model} {garbage} --out {out}",
        "cannot be read as NIfTI",
    ),
    ("segment_2d_image", "segment {model} {scan_2d} --out {out}", "3D scan"),
    ("segment_4d_image", "segment {model} {scan_4d} --out {out}", "4D"),
    (
        "segment_nan_voxels",
        "segment {model} {scan} {scan_nan} --out {out}",
        "2 non-finite voxels",
    ),
    (
        "segment_out_cannot_be_created",
        "segment {model} {scan} --out {file}/sub",
        "cannot write to the output directory",
    ),
    (
        "segment_volumes_in_missing_directory",
        "segment {model} {scan} --out {out} --volumes {tmp}/no/such/v.csv",
        "does not exist",
    ),
    (
        "segment_same_output_names",
        "segment {model} {scan} {tmp}/x/scan.nii.gz --out {out}",
        "would write the same outputs",
    ),
    (
        "train_out_not_keras",
        "train-segmentation --steps 1 --out {out}/model.h5",
        "ending in .keras",
    ),
    (
        "train_max_spacing_not_positive",
        "train-segmentation --max-spacing 0 --steps 1 --out {tmp}/m.keras",
        "--max-spacing must be positive",
    ),
    (
        "train_non_integer_label_maps",
        "train-segmentation --label-maps {float_labels} --steps 1 --out {tmp}/m.keras",
        "integer labels",
    ),
    (
        "register_missing_moving",
        "register {tmp}/no.nii.gz {scan} --out {out}",
        "not found",
    ),
    ("register_2d_fixed", "register {scan} {scan_2d} --out {out}", "3D volume"),
    ("register_nan_moving", "register {scan_nan} {scan} --out {out}", "non-finite"),
    (
        "register_model_of_another_kind",
        "register {scan} {scan_b} --model {model} --out {out}",
        "registration",
    ),
    (
        "register_float_segmentation",
        "register {scan} {scan_b} --moving-seg {float_labels} --out {out}",
        "integer labels",
    ),
]


def _argv(template, files, tmp_path):
    values = {**files, "tmp": str(tmp_path), "out": str(tmp_path / "out")}
    return template.format(**values).split()


def _assert_nothing_written(tmp_path):
    out = tmp_path / "out"
    assert not out.exists() or not os.listdir(out)
    leftovers = [p for p in os.listdir(tmp_path) if p != "out"]
    assert not leftovers


@pytest.mark.parametrize(
    "template, words", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_one_line_error(template, words, files, tmp_path, capsys):
    argv = _argv(template, files, tmp_path)
    code, _, err = _run(argv, capsys)
    assert code == 1
    line = _error_line(err)
    assert line.startswith(f"synthlayers {argv[0]}: error: ")
    assert words in line
    _assert_nothing_written(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "template, words", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_subprocess(template, words, files, tmp_path):
    argv = _argv(template, files, tmp_path)
    result = _subprocess(argv)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert line.startswith(f"synthlayers {argv[0]}: error: ") and words in line
    _assert_nothing_written(tmp_path)


def _subprocess(argv, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("SYNTHLAYERS_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "synthlayers.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **kwargs,
    )


def test_nan_voxels_as_a_subprocess(files, tmp_path):
    # One bad input end to end in a fresh process: exit code, one line.
    argv = ["segment", files["model"], files["scan_nan"], "--out", "o"]
    result = _subprocess(argv, cwd=tmp_path)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert line.startswith("synthlayers segment: error: ")
    assert "2 non-finite voxels" in line and "--nan-policy zero" in line


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["segment", "model.keras"])
    assert raised.value.code == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith("synthlayers segment: error: ")
    assert "--out" in line and "--help" in line
    with pytest.raises(SystemExit) as raised:
        cli.main(["train-segmentation", "--steps", "2", "--minutes", "1", "--out", "m"])
    assert raised.value.code == 2


@pytest.mark.parametrize(
    "command", [[], ["sample"], ["segment"], ["train-segmentation"], ["register"]]
)
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main([*command, "--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: synthlayers {' '.join(command)}".rstrip())
    for option in {
        "sample": ["--num", "--out", "--preset", "--shape", "--seed"],
        "segment": ["--out", "--volumes", "--probabilities", "--nan-policy"],
        "train-segmentation": [
            "--label-maps",
            "--contrast",
            "--max-spacing",
            "--minutes",
            "--steps",
            "--ndim",
        ],
        "register": ["--model", "--moving-seg", "--affine", "--out"],
    }.get(" ".join(command), ["sample", "segment", "train-segmentation", "register"]):
        assert option in out


def test_unexpected_errors_are_one_line_too(files, tmp_path, capsys, monkeypatch):
    import synthlayers.inference

    def broken(*args, **kwargs):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(synthlayers.inference, "segment", broken)
    out = tmp_path / "out"
    code, _, err = _run(
        ["segment", files["model"], files["scan"], "--out", str(out)], capsys
    )
    assert code == 1
    line = _error_line(err)
    assert "RuntimeError: something unexpected" in line
    assert "SYNTHLAYERS_TRACEBACK=1" in line
    assert not os.listdir(out)


# --- segment -----------------------------------------------------------------------


def _expected_labels():
    return np.where(_scan() > 50, 41, 0).astype("int32")


def test_segment_labels_header_and_volumes(files, tmp_path, capsys):
    out = tmp_path / "out"
    volumes = tmp_path / "volumes.csv"
    code, stdout, err = _run(
        [
            "segment",
            files["model"],
            files["scan"],
            files["scan_b"],
            "--out",
            str(out),
            "--volumes",
            str(volumes),
        ],
        capsys,
    )
    assert code == 0, err
    assert "scans [" in stdout and "2/2" in stdout  # the progress bar
    assert sorted(os.listdir(out)) == ["scan_b_seg.nii.gz", "scan_seg.nii.gz"]
    written = nibabel.load(str(out / "scan_seg.nii.gz"))
    source = nibabel.load(files["scan"])
    # The input's voxel grid, voxel order and header (sform/qform codes).
    np.testing.assert_array_equal(written.affine, source.affine)
    assert written.header.get_sform(coded=True)[1] == 1
    assert written.header.get_qform(coded=True)[1] == 1
    assert written.get_data_dtype() == np.int32
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), _expected_labels())
    flipped = nibabel.load(str(out / "scan_b_seg.nii.gz"))
    np.testing.assert_array_equal(
        np.asanyarray(flipped.dataobj), _expected_labels()[::-1]
    )
    with open(volumes, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "subject",
        "Left-Cerebral-White-Matter",
        "Right-Cerebral-White-Matter",
    ]
    box_mm3 = (8 * 8 * 8) * 8.0  # 8^3 voxels of 2 mm
    assert rows[1] == ["scan", "0.000", f"{box_mm3:.3f}"]
    assert rows[2] == ["scan_b", "0.000", f"{box_mm3:.3f}"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_segment_nan_policy_zero_repairs_and_warns(files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["segment", files["model"], files["scan_nan"], "--out", str(out)]
    code, _, err = _run([*argv, "--nan-policy", "zero"], capsys)
    assert code == 0, err
    warning_lines = [line for line in err.splitlines() if "warning" in line]
    assert len(warning_lines) == 1
    assert "2 non-finite voxels" in warning_lines[0]
    labels = np.asanyarray(nibabel.load(str(out / "scan_nan_seg.nii.gz")).dataobj)
    expected = _expected_labels()
    expected[4, 5, 6] = 0  # the infinite voxel, inside the box, is now 0
    np.testing.assert_array_equal(labels, expected)


def test_segment_probabilities(files, tmp_path, capsys):
    from synthlayers.inference import segment

    if "return_probabilities" not in inspect.signature(segment).parameters:
        pytest.skip("synthlayers.inference.segment has no return_probabilities yet")
    out = tmp_path / "out"
    code, _, err = _run(
        [
            "segment",
            files["model"],
            files["scan"],
            "--out",
            str(out),
            "--probabilities",
        ],
        capsys,
    )
    assert code == 0, err
    posteriors = nibabel.load(str(out / "scan_posteriors.nii.gz"))
    data = np.asanyarray(posteriors.dataobj)
    assert data.shape == (*SHAPE, 3)
    np.testing.assert_allclose(data.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        np.array([0, 2, 41])[data.argmax(-1)], _expected_labels()
    )


def test_a_failure_midway_leaves_only_complete_files(
    files, tmp_path, capsys, monkeypatch
):
    import synthlayers.inference

    real = synthlayers.inference.segment
    calls = []

    def fails_on_second_scan(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthlayers.inference, "segment", fails_on_second_scan)
    out = tmp_path / "out"
    volumes = out / "volumes.csv"
    argv = [
        "segment",
        files["model"],
        files["scan"],
        files["scan_b"],
        "--out",
        str(out),
    ]
    code, _, err = _run([*argv, "--volumes", str(volumes)], capsys)
    assert code == 130 and "interrupted" in err
    assert os.listdir(out) == ["scan_seg.nii.gz"]  # complete; no volumes table


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def write(temporary):
        with open(temporary, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        cli._atomic(str(tmp_path / "x.nii.gz"), write)
    assert not os.listdir(tmp_path)


# --- sample --------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["synthseg", "synthmorph"])
def test_sample_writes_volumes_in_the_input_space_and_a_montage(
    preset, files, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["sample", files["labels"], "--num", "2", "--out", str(out), "--seed", "3"]
    code, stdout, err = _run([*argv, "--preset", preset], capsys)
    assert code == 0, err
    assert "samples [" in stdout and "2/2" in stdout
    assert sorted(os.listdir(out)) == [
        "montage.png",
        "sample_000_image.nii.gz",
        "sample_000_labels.nii.gz",
        "sample_001_image.nii.gz",
        "sample_001_labels.nii.gz",
    ]
    source = nibabel.load(files["labels"])
    for i in range(2):
        image = nibabel.load(str(out / f"sample_00{i}_image.nii.gz"))
        labels = nibabel.load(str(out / f"sample_00{i}_labels.nii.gz"))
        for volume in (image, labels):
            assert volume.shape == SHAPE  # the input's voxel order
            np.testing.assert_allclose(volume.affine, source.affine)
        values = np.asanyarray(labels.dataobj)
        assert set(np.unique(values)) <= {0, 2, 17, 41}
        assert len(np.unique(values)) >= 3
        assert np.all(np.isfinite(image.get_fdata()))
        assert image.get_fdata().std() > 0
    pixels = matplotlib.image.imread(str(out / "montage.png"))
    assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.05
    # Same seed, same samples.
    again = tmp_path / "again"
    assert cli.main([*argv[:-3], str(again), "--seed", "3", "--preset", preset]) == 0
    capsys.readouterr()
    for name in ("sample_001_image.nii.gz", "sample_001_labels.nii.gz"):
        np.testing.assert_array_equal(
            nibabel.load(str(out / name)).get_fdata(),
            nibabel.load(str(again / name)).get_fdata(),
        )


def test_sample_shape_gives_a_centred_grid(files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sample", files["labels"], "--num", "1", "--out", str(out)]
    code, _, err = _run([*argv, "--shape", "8", "10", "12", "--seed", "0"], capsys)
    assert code == 0, err
    image = nibabel.load(str(out / "sample_000_image.nii.gz"))
    # RAS shape (8, 10, 12) stored in LIA order: (8, 12, 10).
    assert image.shape == (8, 12, 10)
    assert nibabel.aff2axcodes(image.affine) == ("L", "I", "A")
    # The grid centred on the input's (offsets floor((n - m) / 2) voxels).
    source = nibabel.load(files["labels"])
    input_ras = nibabel.as_closest_canonical(source)
    output_ras = nibabel.as_closest_canonical(image)
    offset = np.array([(16 - 8) // 2, (20 - 10) // 2, (18 - 12) // 2, 0])
    np.testing.assert_allclose(
        output_ras.affine[:, 3], input_ras.affine @ (offset + [0, 0, 0, 1])
    )


# --- the installed command ---------------------------------------------------------


@pytest.mark.slow
def test_console_script_is_installed():
    command = shutil.which("synthlayers")
    if command is None:
        pytest.skip("`pip install -e .` not run: no synthlayers command on PATH")
    result = subprocess.run(
        [command, "sample", "--help"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0
    assert "usage: synthlayers sample" in result.stdout


# --- train-segmentation ------------------------------------------------------------


def test_train_segmentation_is_a_thin_call(files, tmp_path, capsys, monkeypatch):
    from synthlayers.workflows import segmentation

    maps = tmp_path / "maps"
    maps.mkdir()
    for name in ("b.nii.gz", "a.nii.gz"):
        shutil.copy(files["labels"], maps / name)
    received = {}

    class Trained:
        def save(self, path):
            with open(path, "w") as f:
                f.write("model")

        def __repr__(self):
            return "Segmenter(test)"

    def train(**kwargs):
        received.update(kwargs)
        for callback in kwargs["callbacks"]:
            callback.on_train_batch_end(0)
        return Trained()

    monkeypatch.setattr(segmentation, "train_segmentation", train)
    model = tmp_path / "model.keras"
    argv = ["train-segmentation", "--label-maps", str(maps), "--steps", "1"]
    code, out, err = _run([*argv, "--ndim", "3", "--out", str(model)], capsys)
    assert code == 0, err
    assert received["label_maps"] == [str(maps / "a.nii.gz"), str(maps / "b.nii.gz")]
    assert received["steps"] == 1 and received["ndim"] == 3
    # The contrast and spacing: the workflow's defaults unless given.
    assert received["contrast"] is None and received["max_spacing"] is None
    assert "training [" in out and "100%" in out
    assert model.read_text() == "model"
    # Without a budget: the workflow's 10 minutes, SynthSeg's maps.
    received.clear()
    code, out, err = _run(["train-segmentation", "--out", str(model)], capsys)
    assert code == 0, err
    assert received["label_maps"] is None and received["minutes"] == 10.0
    assert "steps" not in received
    received.clear()
    argv = ["train-segmentation", "--contrast", "any", "--max-spacing", "4"]
    code, out, err = _run([*argv, "--out", str(model)], capsys)
    assert code == 0, err
    assert received["contrast"] == "any" and received["max_spacing"] == 4.0


@pytest.mark.slow
def test_train_then_segment_in_a_fresh_process(files, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    shutil.copy(files["labels"], maps / "a.nii.gz")
    model = tmp_path / "model.keras"
    argv = ["train-segmentation", "--label-maps", str(maps), "--steps", "2"]
    result = _subprocess([*argv, "--seed", "1", "--out", str(model)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training [" in result.stdout and model.is_file()
    volumes = tmp_path / "volumes.csv"
    argv = ["segment", str(model), files["scan"], "--out", str(tmp_path / "out")]
    result = _subprocess([*argv, "--volumes", str(volumes)])
    assert result.returncode == 0, result.stderr[-3000:]
    labels = nibabel.load(str(tmp_path / "out" / "scan_seg.nii.gz"))
    np.testing.assert_array_equal(labels.affine, LIA_2MM)
    assert set(np.unique(np.asanyarray(labels.dataobj))) <= {0, 2, 17, 41}
    with open(volumes, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "subject",
        "Left-Cerebral-White-Matter",
        "Left-Hippocampus",
        "Right-Cerebral-White-Matter",
    ]
    assert rows[1][0] == "scan" and len(rows) == 2


def test_register_affine_only_writes_the_fields(files, tmp_path, capsys):
    """Without --model: the affine alone; the outputs land under their names."""
    out = tmp_path / "out"
    argv = ["register", files["scan_b"], files["scan"], "--affine", "moments"]
    argv += ["--moving-seg", files["labels"], "--out", str(out)]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    written = sorted(os.listdir(out))
    for name in ("moved.nii.gz", "displacement.nii.gz", "moved_segmentation.nii.gz"):
        assert name in written
    assert not [name for name in written if name.startswith(".")]  # no leftovers
    moved = nibabel.load(out / "moved.nii.gz").get_fdata()
    fixed = nibabel.load(out / "fixed.nii.gz").get_fdata()  # its grid at 1 mm
    assert moved.shape == fixed.shape
    # scan_b is scan flipped along its first axis: the moments align it back.
    assert np.corrcoef(moved.ravel(), fixed.ravel())[0, 1] > 0.9
