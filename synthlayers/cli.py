"""The `synthlayers` command: synthesise images, train and use segmenters.

A thin layer over the library (`synthlayers.layers.LabelsToImage`,
`synthlayers.workflows`, `synthlayers.inference.segment`, `synthlayers.plot`):

    synthlayers sample LABELS... --num N --out DIR [--preset synthseg|synthmorph]
                       [--shape X Y Z] [--seed S]
    synthlayers train-segmentation [--label-maps DIR|FILES...] [--contrast any|t1]
                       [--minutes M | --steps N] [--ndim 2|3] --out MODEL
    synthlayers segment MODEL IMAGE... --out DIR [--volumes volumes.csv]
                       [--probabilities] [--nan-policy raise|zero]

Every sub-command has `--help`. Bad input (a missing or unreadable file, a
non-integer or 4D label map, a scan of the wrong dimension, non-finite
voxels, an output directory that cannot be written, a model file of another
kind) stops the command before it writes anything, with one line on stderr
(`synthlayers segment: error: ...`) and exit code 1 (2 for a command line
that does not parse). Every file is written under a temporary name and
renamed when complete, so an interrupted run leaves no file that looks
complete. Set `SYNTHLAYERS_TRACEBACK=1` to see the traceback of an
unexpected error.
"""

import argparse
import contextlib
import csv
import os
import sys
import tempfile
import time
import warnings

import numpy as np

NIFTI_EXTENSIONS = (".nii.gz", ".nii", ".mgz", ".mgh")
"""File name endings the command reads as volumes (anything nibabel reads
works; these are stripped to name the outputs)."""

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


# --- Output: errors, warnings, progress ----------------------------------------


def _one_line(text):
    return " ".join(str(text).split())


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr."""

    def error(self, message):
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {_one_line(message)} (see `{self.prog} --help`)\n",
        )


class Progress:
    """A text progress bar on stdout, no dependency.

    On a terminal the bar is redrawn in place; otherwise (a log file, a
    pipe) one line is printed per update.

    Args:
        total: the number of steps.
        label: what is counted (e.g. `"samples"`).
        width: characters of the bar. Defaults to 24.
        stream: where to write, or None for `sys.stdout`. Defaults to None.
        percent: show the share done (`12%`) instead of `done/total`.
            Defaults to False.

    Example:

    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress(2, "scans", width=4, stream=out)
    >>> progress.update(1, "a.nii.gz")
    >>> out.getvalue().split(" 0.0")[0]
    'scans [##..] 1/2 a.nii.gz'
    """

    def __init__(self, total, label, width=24, stream=None, percent=False):
        self.total = max(int(total), 1)
        self.percent = percent
        self.label = label
        self.width = width
        self.stream = sys.stdout if stream is None else stream
        self.start = time.perf_counter()
        self.interactive = getattr(self.stream, "isatty", lambda: False)()

    def update(self, done, detail=""):
        """Show `done` of `total` steps, with an optional detail."""
        filled = round(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        seconds = time.perf_counter() - self.start
        count = f"{done}/{self.total}"
        if self.percent:
            count = f"{100 * min(done, self.total) // self.total}%"
        line = f"{self.label} [{bar}] {count}"
        line += f" {detail}" if detail else ""
        line += f" {seconds:.1f} s"
        if self.interactive:
            end = "\n" if done >= self.total else ""
            self.stream.write(f"\r{line}\033[K{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


@contextlib.contextmanager
def _native_logs_captured():
    """Keep native log lines off the command's stderr; Python's stay.

    TensorFlow's C++ runtime writes log lines straight to file descriptor
    2 (when it starts, at its first operations, in `fit`); the command's
    stderr should hold only its own lines. File descriptor 2 goes to a
    temporary file while `sys.stderr` keeps writing to the real stderr; the
    captured lines are replayed when `SYNTHLAYERS_TRACEBACK` is set. Does
    nothing when `sys.stderr` is not the process's stderr (e.g. captured in
    tests).
    """
    try:
        real = sys.stderr is sys.__stderr__ and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        sys.stderr = python_stderr
        try:
            yield
        finally:
            python_stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sys.stderr = sys.__stderr__
            python_stderr.close()
            if os.environ.get("SYNTHLAYERS_TRACEBACK"):
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))


def _import_library():
    """Import Keras and the library (under `_native_logs_captured`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import synthlayers.layers  # noqa: F401

    keras.ops.convert_to_numpy(keras.ops.zeros((1,)))  # devices start here


# --- Files ---------------------------------------------------------------------


def _stem(path):
    name = os.path.basename(os.fspath(path))
    for extension in NIFTI_EXTENSIONS:
        if name.lower().endswith(extension):
            return name[: -len(extension)]
    return os.path.splitext(name)[0]


def _check_input_file(path, what):
    if not os.path.exists(path):
        raise CommandError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise CommandError(f"{what} is a directory, not a file: {path}")
    if not os.access(path, os.R_OK):
        raise CommandError(f"{what} cannot be read (permission denied): {path}")


def _read_nifti(path, what):
    """`(data, affine, header image)` of a volume file, or a CommandError."""
    import nibabel

    _check_input_file(path, what)
    try:
        image = nibabel.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel, gzip, zlib and OS errors alike
        raise CommandError(
            f"{what} cannot be read as NIfTI/MGH: {path} "
            f"({type(error).__name__}: {_one_line(error)})"
        ) from None
    return data, np.asarray(image.affine, dtype="float64"), image


def _spatial_3d(data, path, what):
    """A 3D array; `(x, y, z, 1)` is squeezed; anything else is an error."""
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise CommandError(
            f"{what} must be a 3D volume; {path} has shape {tuple(data.shape)}"
            + (" (4D: several volumes)" if data.ndim >= 4 else "")
        )
    return data


def _check_output_dir(directory):
    """Create `directory` if needed and check that files can be written there."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CommandError(f"output directory is a file: {directory}")
    try:
        os.makedirs(directory, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".synthlayers-probe-", dir=directory)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise CommandError(
            f"cannot write to the output directory {directory} "
            f"({error.strerror or _one_line(error)})"
        ) from None
    return directory


def _check_output_file(path, what):
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{what} is a directory: {path}")
    if not os.path.isdir(directory):
        raise CommandError(f"the directory of the {what} does not exist: {directory}")
    _check_output_dir(directory)
    return path


def _atomic(path, write):
    """`write(temporary)`, then rename to `path`; nothing left behind on failure."""
    name = os.path.basename(path)
    suffix = next((e for e in NIFTI_EXTENSIONS if name.endswith(e)), "")
    suffix = suffix or os.path.splitext(name)[1]
    handle, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=f".partial{suffix}", dir=os.path.dirname(path) or "."
    )
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 -> the usual mode
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def _save_like(path, array, affine, header_image=None):
    """Write `array` as NIfTI with `affine` (and the header of a NIfTI input)."""
    import nibabel

    from synthlayers import io

    if header_image is not None and isinstance(header_image, nibabel.Nifti1Image):
        image = nibabel.Nifti1Image(array, affine, header=header_image.header.copy())
        image.set_data_dtype(array.dtype)
        image.header.set_slope_inter(1.0, 0.0)
        if array.ndim > 3:  # posteriors: a vector per voxel
            image.header.set_intent("vector")
        return _atomic(path, lambda p: nibabel.save(image, p))
    return _atomic(path, lambda p: io.save_volume(p, array, affine))


# --- sample ----------------------------------------------------------------------


def _load_label_map(path):
    """An int32 label map in RAS+, its RAS affine and the input's orientation."""
    from synthlayers import io

    data, affine, _ = _read_nifti(path, "label map")
    data = _spatial_3d(data, path, "a label map")
    if not np.issubdtype(data.dtype, np.integer):
        if data.dtype == bool:
            data = data.astype("int32")
        elif not np.issubdtype(data.dtype, np.floating):
            raise CommandError(f"label map {path} has dtype {data.dtype}, not numbers")
        else:
            finite = np.isfinite(data)
            integral = finite & (data == np.round(data))
            if not np.all(integral):
                count = int(data.size - np.count_nonzero(integral))
                raise CommandError(
                    f"label map {path} must hold integer labels; {count} voxels "
                    f"are not integers (e.g. {data[~integral].flat[0]!r})"
                )
    info = np.iinfo("int32")
    if data.size and (data.min() < info.min or data.max() > info.max):
        raise CommandError(f"label map {path} has values beyond int32")
    try:
        ras, ras_affine = io.to_ras(data.astype("int32"), affine)
    except ValueError as error:
        raise CommandError(f"label map {path}: {_one_line(error)}") from None
    return np.ascontiguousarray(ras), ras_affine, affine


def _crop_affine(ras_affine, input_shape, output_shape):
    """The affine of an output grid centred on the input's (as `placement="center"`)."""
    offset = np.array(
        [(n - m) // 2 for n, m in zip(input_shape, output_shape)], dtype="float64"
    )
    shifted = np.array(ras_affine, dtype="float64")
    shifted[:3, 3] = ras_affine[:3, :3] @ offset + ras_affine[:3, 3]
    return shifted


def _to_original_order(ras_array, ras_affine, original_affine):
    """`ras_array` in the voxel order of `original_affine`, with its affine."""
    import nibabel.orientations as orientations

    from synthlayers import io

    transform = orientations.ornt_transform(
        orientations.axcodes2ornt(io.RAS_CODES), io.orientation(original_affine)
    )
    array = orientations.apply_orientation(ras_array, transform)
    affine = ras_affine @ orientations.inv_ornt_aff(transform, ras_array.shape[:3])
    return np.ascontiguousarray(array), affine


def _generator(preset, labels, shape, seed, voxel_size):
    from synthlayers.layers import LabelsToImage

    # The presets' spatial sizes are in output voxels of 1 mm (SynthSeg's
    # training maps); scale them to the map's voxels.
    if preset == "synthseg":
        return LabelsToImage.synthseg(
            labels,
            output_shape=shape,
            seed=seed,
            placement="center",
            max_spacing=8.0 / voxel_size,
            deformation_std=4.0 / voxel_size,
        )
    return LabelsToImage.synthmorph(labels, output_shape=shape, seed=seed)


def _coronal(volume):
    return volume[:, volume.shape[1] // 2, :]


def _pad_to(plane, shape, value=0):
    out = np.full(shape, value, dtype=plane.dtype)
    starts = [(s - n) // 2 for s, n in zip(shape, plane.shape)]
    out[tuple(slice(a, a + n) for a, n in zip(starts, plane.shape))] = plane
    return out


MONTAGE_SAMPLES = 16
"""The montage of `sample` shows the first samples, at most this many."""


def run_sample(args):
    """`synthlayers sample`: synthetic images and label maps from label maps."""
    if args.num < 1:
        raise CommandError(f"--num must be at least 1; received {args.num}")
    if args.shape is not None and (len(args.shape) != 3 or min(args.shape) < 1):
        raise CommandError(
            "--shape takes 3 positive integers; received "
            + " ".join(map(str, args.shape))
        )
    maps = [_load_label_map(path) for path in args.labels]
    out = _check_output_dir(args.out)
    _import_library()
    from synthlayers import io
    from synthlayers import plot

    labels = sorted(set().union(*(np.unique(m[0]).tolist() for m in maps)))
    generators = []
    for k, (label_map, ras_affine, _) in enumerate(maps):
        shape = tuple(args.shape) if args.shape else label_map.shape
        seed = None if args.seed is None else args.seed + k
        voxel = float(np.mean(io.voxel_sizes(ras_affine)))
        generators.append(_generator(args.preset, labels, shape, seed, voxel))
    progress = Progress(args.num, "samples")
    planes, label_planes, titles, written = [], [], [], []
    progress.update(0)
    for i in range(args.num):
        k = i % len(maps)
        label_map, ras_affine, original_affine = maps[k]
        result = generators[k](label_map[None, ..., None])
        image = np.asarray(result["images"])[0, ..., 0].astype("float32")
        target = np.asarray(result["segmentation_masks"])[0, ..., 0].astype("int32")
        affine = _crop_affine(ras_affine, label_map.shape, image.shape)
        name = f"sample_{i:03d}"
        for suffix, array in (("image", image), ("labels", target)):
            array, file_affine = _to_original_order(array, affine, original_affine)
            path = os.path.join(out, f"{name}_{suffix}.nii.gz")
            written.append(_save_like(path, array, file_affine))
        if i < MONTAGE_SAMPLES:
            planes.append(_coronal(image))
            label_planes.append(_coronal(target))
            source = f"\n{_stem(args.labels[k])}" if len(maps) > 1 else ""
            titles.append(name + source)
        progress.update(i + 1, name)
    shape = tuple(max(p.shape[a] for p in planes) for a in range(2))
    sizes = io.voxel_sizes(maps[0][1])
    figure = plot.plot_montage(
        [_pad_to(p, shape) for p in planes],
        [_pad_to(p, shape) for p in label_planes],
        voxel_sizes=(sizes[0], sizes[2]),
        titles=titles,
        columns=min(args.num, 8),
        title=f"synthlayers sample --preset {args.preset}: coronal slices",
    )
    montage = plot.save_figure(figure, os.path.join(out, "montage.png"))
    print(f"Wrote {len(written)} volumes and {montage}")
    return 0


# --- segment ---------------------------------------------------------------------


def _check_scan(path, nan_policy, report):
    """A scan's data (original voxel order, float32), affine and header image."""
    from synthlayers.inference.preprocess import check_finite_voxels

    data, affine, image = _read_nifti(path, "image")
    if data.ndim < 3:
        raise CommandError(
            f"image must be a 3D scan; {path} has shape {tuple(data.shape)} (2D)"
        )
    data = _spatial_3d(data, path, "an image")
    if not np.issubdtype(data.dtype, np.number) or data.dtype == bool:
        raise CommandError(f"image {path} has dtype {data.dtype}, not intensities")
    data = data.astype("float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = check_finite_voxels(data, nan_policy, source=path)
        except ValueError as error:
            raise CommandError(
                _one_line(error).replace("nan_policy='zero'", "--nan-policy zero")
            ) from None
    for warning in caught:
        message = _one_line(warning.message)
        report(message.replace("(nan_policy='zero')", "(--nan-policy zero)"))
    return data, affine, image


def _volume_columns(segmenter):
    """`(column name, label value)` of each foreground channel."""
    columns, seen = [], set()
    for value, name in zip(segmenter.output_labels, segmenter.label_names):
        if int(value) == 0:
            continue
        name = name if name not in seen else f"{name} ({value})"
        seen.add(name)
        columns.append((name, int(value)))
    return columns


def _load_segmenter(path):
    _check_input_file(path, "model file")
    from synthlayers.models.model_file import read_metadata
    from synthlayers.models.segmenter import load_segmenter

    try:
        read_metadata(path, kind="segmentation")
        return load_segmenter(path)
    except (ValueError, OSError) as error:
        raise CommandError(f"model file {path}: {_one_line(error)}") from None


def run_segment(args, report):
    """`synthlayers segment`: labels, volumes and posteriors of scans."""
    stems = {}
    for path in args.images:
        stem = _stem(path)
        if stem in stems:
            raise CommandError(
                f"{stems[stem]} and {path} would write the same outputs "
                f"({stem}_seg.nii.gz); rename one"
            )
        stems[stem] = path
    _check_input_file(args.model, "model file")
    for path in args.images:
        _check_scan(path, args.nan_policy, report)  # every scan before any work
    out = _check_output_dir(args.out)
    if args.volumes is not None:
        _check_output_file(args.volumes, "volumes file")
    _import_library()
    from synthlayers.inference import segment

    segmenter = _load_segmenter(args.model)
    probabilities_supported = _segment_returns_probabilities(segment)
    if args.probabilities and not probabilities_supported:
        raise CommandError(
            "--probabilities needs synthlayers.inference.segment("
            "return_probabilities=True), which this version lacks"
        )
    columns = _volume_columns(segmenter)
    rows = []
    progress = Progress(len(args.images), "scans")
    progress.update(0)
    for i, path in enumerate(args.images):
        data, affine, header_image = _check_scan(path, args.nan_policy, lambda m: None)
        if args.probabilities:
            labels, posteriors = segment(
                segmenter, data, affine=affine, return_probabilities=True
            )
        else:
            labels, posteriors = segment(segmenter, data, affine=affine), None
        stem = _stem(path)
        labels = np.asarray(labels, dtype="int32")
        _save_like(
            os.path.join(out, f"{stem}_seg.nii.gz"), labels, affine, header_image
        )
        if posteriors is not None:
            _save_like(
                os.path.join(out, f"{stem}_posteriors.nii.gz"),
                np.asarray(posteriors, dtype="float32"),
                affine,
                header_image,
            )
        voxel_volume = abs(float(np.linalg.det(affine[:3, :3])))
        values, counts = np.unique(labels, return_counts=True)
        by_label = dict(zip(values.tolist(), counts.tolist()))
        volumes = [by_label.get(v, 0) * voxel_volume for _, v in columns]
        rows.append([stem] + [f"{v:.3f}" for v in volumes])
        progress.update(i + 1, os.path.basename(path))
    if args.volumes is not None:

        def write(temporary):
            with open(temporary, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["subject"] + [name for name, _ in columns])
                writer.writerows(rows)

        _atomic(args.volumes, write)
        print(f"Wrote volumes (mm^3) of {len(rows)} scans to {args.volumes}")
    print(f"Wrote {len(args.images)} segmentations to {out}")
    return 0


def _segment_returns_probabilities(segment):
    import inspect

    return "return_probabilities" in inspect.signature(segment).parameters


# --- train-segmentation ------------------------------------------------------------


def run_train_segmentation(args, report):
    """`synthlayers train-segmentation`: a thin call of `train_segmentation`."""
    if args.minutes is not None and args.minutes <= 0:
        raise CommandError(f"--minutes must be positive; received {args.minutes}")
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps must be at least 1; received {args.steps}")
    if args.max_spacing is not None and args.max_spacing <= 0:
        raise CommandError(
            f"--max-spacing must be positive; received {args.max_spacing}"
        )
    if not args.out.endswith(".keras"):
        raise CommandError(f"--out must be a model file ending in .keras: {args.out}")
    label_maps = None
    if args.label_maps:
        label_maps = []
        for path in args.label_maps:
            if os.path.isdir(path):
                found = sorted(
                    os.path.join(path, name)
                    for name in os.listdir(path)
                    if name.lower().endswith(NIFTI_EXTENSIONS)
                )
                if not found:
                    raise CommandError(f"no NIfTI/MGH label maps in {path}")
                label_maps.extend(found)
            else:
                label_maps.append(path)
        for path in label_maps:
            _load_label_map(path)  # readable, 3D, integer: before any training
    _check_output_file(args.out, "model file")
    _import_library()
    from synthlayers.workflows import segmentation

    minutes = args.minutes
    if args.steps is None and minutes is None:
        minutes = DEFAULT_TRAINING_MINUTES
    arguments = dict(label_maps=label_maps, ndim=args.ndim, minutes=minutes)
    if args.steps is not None:
        arguments["steps"] = args.steps
    if args.seed is not None:
        arguments["seed"] = args.seed
    arguments.update(contrast=args.contrast, max_spacing=args.max_spacing)
    progress = _training_progress(args.steps, minutes)
    try:
        segmenter = segmentation.train_segmentation(
            **arguments, callbacks=[progress], verbose=1
        )
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(_one_line(error)) from None
    progress.finish()
    segmenter.save(args.out)
    print(f"Wrote {args.out}: {segmenter!r}")
    return 0


DEFAULT_TRAINING_MINUTES = 10.0
"""The time budget of `train-segmentation` without `--steps` or `--minutes`."""


def run_register(args, report):
    """`synthlayers register`: a thin call of `synthlayers.inference.register`."""
    if args.model is not None:
        _check_input_file(args.model, "model file")
    for path, what in ((args.moving, "moving image"), (args.fixed, "fixed image")):
        data = _spatial_3d(_read_nifti(path, what)[0], path, what)
        if not np.all(np.isfinite(data)):
            raise CommandError(f"{what} {path} holds non-finite voxels (NaN or inf)")
    if args.moving_segmentation is not None:
        _load_label_map(args.moving_segmentation)  # readable, 3D, integer
    _check_output_dir(args.out)
    _import_library()
    from synthlayers.inference import register
    from synthlayers.models.model_file import read_metadata

    model = None
    if args.model is not None:
        try:
            read_metadata(args.model, kind="registration")
        except (ValueError, OSError) as error:
            raise CommandError(_one_line(error)) from None
        model = args.model
    # Written into a temporary directory, moved into --out at the end: nothing
    # half-written is left under the final names.
    staging = tempfile.mkdtemp(prefix=".synthlayers-register-", dir=args.out)
    try:
        try:
            register(
                model,
                args.moving,
                args.fixed,
                moving_segmentation=args.moving_segmentation,
                affine_method=args.affine,
                out=staging,
            )
        except (ValueError, ImportError) as error:
            raise CommandError(_one_line(error)) from None
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(args.out, name))
    finally:
        for name in os.listdir(staging):
            os.remove(os.path.join(staging, name))
        os.rmdir(staging)
    print(f"Wrote the registration of {args.moving} to {args.fixed} into {args.out}")
    return 0


def _training_progress(steps, minutes, stream=None):
    """A Keras callback drawing a `Progress` bar over the step or time budget."""
    import keras

    class TrainingProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.bar = Progress(1000, "training", stream=stream, percent=True)
            self.step = 0
            self.shown = -1

        def fraction(self):
            done = []
            if steps is not None:
                done.append(self.step / steps)
            if minutes is not None:
                done.append((time.perf_counter() - self.bar.start) / (60 * minutes))
            return min(max(done), 1.0)

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            # A terminal redraws often; a log gets a line per tenth.
            resolution = 1000 if self.bar.interactive else 10
            shown = int(self.fraction() * resolution)
            if shown > self.shown:
                self.shown = shown
                self.show()

        def show(self, done=None):
            done = round(1000 * self.fraction()) if done is None else done
            self.bar.update(done, f"step {self.step}")

        def finish(self):
            if self.shown < (1000 if self.bar.interactive else 10):
                self.show(1000)

    return TrainingProgress()


# --- The parser -------------------------------------------------------------------


def build_parser():
    """The `synthlayers` argument parser, with its sub-commands.

    Returns:
        An `argparse.ArgumentParser`.

    Example:

    >>> parser = build_parser()
    >>> args = parser.parse_args(["sample", "a.nii.gz", "--num", "2", "--out", "d"])
    >>> args.command, args.labels, args.num, args.preset
    ('sample', ['a.nii.gz'], 2, 'synthseg')
    """
    from synthlayers.version import __version__

    parser = _Parser(
        prog="synthlayers",
        description="Synthesise training images from label maps, train a "
        "segmentation network on them, and segment real scans with it.",
        epilog="Run `synthlayers COMMAND --help` for the options of a command. "
        "Set SYNTHLAYERS_TRACEBACK=1 to see the traceback of an unexpected error.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sample = commands.add_parser(
        "sample",
        help="synthetic images and label maps from label maps (NIfTI) + montage",
        description="Draw synthetic images and their label maps from anatomical "
        "label maps with LabelsToImage (SynthSeg's or SynthMorph's generator). "
        "Writes sample_NNN_image.nii.gz and sample_NNN_labels.nii.gz (in the "
        "input's voxel order and affine; with --shape, a grid centred on the "
        "input's) and montage.png (coronal slices of the first 16 samples).",
    )
    sample.add_argument("labels", nargs="+", metavar="LABELS", help="label map files")
    sample.add_argument("--num", type=int, required=True, help="number of samples")
    sample.add_argument("--out", required=True, metavar="DIR", help="output directory")
    sample.add_argument(
        "--preset",
        choices=("synthseg", "synthmorph"),
        default="synthseg",
        help="the generator (default: synthseg)",
    )
    sample.add_argument(
        "--shape",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="output shape in voxels (default: the input's)",
    )
    sample.add_argument("--seed", type=int, help="random seed (default: random)")

    segment = commands.add_parser(
        "segment",
        help="segment scans with a trained model file; volumes, posteriors",
        description="Segment scans with a segmentation model file (written by "
        "train-segmentation or Segmenter.save); every setting comes from the "
        "model file. Writes NAME_seg.nii.gz (int32 labels in the scan's voxel "
        "grid and header) per scan, optionally NAME_posteriors.nii.gz and a "
        "volumes table (mm^3; one row per scan, one column per structure, as "
        "SynthSeg's --vol, from the labels).",
    )
    segment.add_argument("model", metavar="MODEL", help="the model file (.keras)")
    segment.add_argument("images", nargs="+", metavar="IMAGE", help="scans (NIfTI/MGH)")
    segment.add_argument("--out", required=True, metavar="DIR", help="output directory")
    segment.add_argument(
        "--volumes", metavar="CSV", help="write structure volumes (mm^3) to this CSV"
    )
    segment.add_argument(
        "--probabilities",
        action="store_true",
        help="also write the posteriors (one channel per label)",
    )
    segment.add_argument(
        "--nan-policy",
        choices=("raise", "zero"),
        default="raise",
        help="non-finite voxels: stop with an error (default), or set them to 0 "
        "and say so",
    )

    train = commands.add_parser(
        "train-segmentation",
        help="train a segmentation network on synthetic images; write a model file",
        description="Train a segmentation network on images synthesised from "
        "label maps (synthlayers.workflows.segmentation.train_segmentation) and "
        "write its model file.",
    )
    train.add_argument(
        "--label-maps",
        nargs="+",
        metavar="DIR|FILES",
        help="label map files or directories of them (default: SynthSeg's "
        "training maps)",
    )
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training time budget")
    budget.add_argument("--steps", type=int, help="training steps")
    train.add_argument(
        "--ndim", type=int, choices=(2, 3), default=2, help="2D or 3D network (2)"
    )
    train.add_argument(
        "--contrast",
        choices=("any", "t1"),
        help="any: random contrasts, a network for scans of any contrast (the "
        "method; default with --label-maps); t1: SynthSeg's T1 priors, a T1 "
        "network learnt faster (default with SynthSeg's maps)",
    )
    train.add_argument(
        "--max-spacing",
        type=float,
        metavar="MM",
        help="largest simulated acquisition spacing (default: 8 with --contrast "
        "any, 2 with t1)",
    )
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument(
        "--out", required=True, metavar="MODEL", help="model file (.keras)"
    )

    register = commands.add_parser(
        "register",
        help="register a moving scan to a fixed one (affine, then a model file)",
        description="Register MOVING to FIXED (synthlayers.inference.register): "
        "both in RAS+ on the fixed field of view, an affine pre-alignment "
        "(mutual information through dipy, or moments), then the registration "
        "network of --model. Writes moved.nii.gz, fixed.nii.gz, "
        "displacement.nii.gz (pull-back from the fixed grid, RAS mm, NIfTI "
        "vector intent as ITK and Slicer read it), inverse_displacement.nii.gz, "
        "affine.txt and, with --moving-seg, moved_segmentation.nii.gz.",
    )
    register.add_argument("moving", metavar="MOVING", help="moving scan (NIfTI/MGH)")
    register.add_argument("fixed", metavar="FIXED", help="fixed scan (NIfTI/MGH)")
    register.add_argument(
        "--model",
        metavar="MODEL",
        help="registration model file (default: affine only)",
    )
    register.add_argument(
        "--moving-seg",
        dest="moving_segmentation",
        metavar="LABELS",
        help="labels of the moving scan, warped by nearest neighbour",
    )
    register.add_argument(
        "--affine",
        choices=("mutual_information", "moments", "none"),
        default=None,
        help="the pre-alignment (default: mutual_information with dipy, else moments)",
    )
    register.add_argument(
        "--out", required=True, metavar="DIR", help="output directory"
    )
    return parser


def _show_warning(prog):
    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(f"{prog}: warning: {_one_line(message)}\n")

    return show


def main(argv=None):
    """Run the `synthlayers` command; returns its exit code.

    Args:
        argv: the arguments (without the program name), or None for
            `sys.argv[1:]`. Defaults to None.

    Returns:
        0 on success, 1 on an error (one line on stderr), 2 on a command line
        that does not parse, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"synthlayers {args.command}"

    def report(message):
        sys.stderr.write(f"{prog}: warning: {message}\n")

    handlers = {
        "sample": lambda: run_sample(args),
        "segment": lambda: run_segment(args, report),
        "train-segmentation": lambda: run_train_segmentation(args, report),
        "register": lambda: run_register(args, report),
    }
    show = warnings.showwarning
    warnings.showwarning = _show_warning(prog)
    try:
        with _native_logs_captured():
            return handlers[args.command]()
    except CommandError as error:
        sys.stderr.write(f"{prog}: error: {_one_line(error)}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as error:
        if os.environ.get("SYNTHLAYERS_TRACEBACK"):
            raise
        sys.stderr.write(
            f"{prog}: error: {type(error).__name__}: {_one_line(error)} "
            "(set SYNTHLAYERS_TRACEBACK=1 for the traceback)\n"
        )
        return EXIT_ERROR
    finally:
        warnings.showwarning = show


if __name__ == "__main__":
    sys.exit(main())
