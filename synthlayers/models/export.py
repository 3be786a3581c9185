"""Export a trained inference network as a TensorFlow SavedModel."""

import os

import keras

from synthlayers.models.model_file import METADATA_ENTRY
from synthlayers.models.model_file import _encode_metadata
from synthlayers.models.model_file import atomic_write
from synthlayers.models.model_file import complete_metadata


def _image_input_rank(model):
    """The spatial rank (2 or 3) of a model with one `(batch, *spatial, ch)` input."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "Expected a built Keras model with one input of shape "
            "(batch, *spatial, channels). Received: model with inputs="
            f"{inputs!r}"
        )
    rank = len(inputs[0].shape) - 2
    if rank not in (2, 3):
        raise ValueError(
            "Expected a 2D or 3D network (input (batch, *spatial, channels)). "
            f"Received: model input shape {tuple(inputs[0].shape)}"
        )
    return rank


def export_network(model, path, verbose=False, metadata=None):
    """Export the inference network as a TensorFlow SavedModel, any spatial size.

    Calls the public `model.export(path, format="tf_saved_model")` with an
    input signature whose batch and spatial sizes are all `None`, so the
    reloaded artifact (`tf.saved_model.load(path).serve(x)`) accepts any
    batch and any spatial size the network supports. Export the network
    alone (no synthesis layers). Needs TensorFlow installed; Keras supports
    this export from the TensorFlow and JAX backends.

    With a `Segmenter` (or `metadata`), the model file's metadata (label
    values and names, voxel size, views, normalisation, provenance, ...)
    is written beside the network, as `synthlayers.json` in the SavedModel
    directory (read it with `synthlayers.models.read_metadata(path)`). The
    directory is written atomically: under a temporary name, renamed when
    complete.

    Args:
        model: a `synthlayers.models.Segmenter`, or a Keras model with one
            input `(batch, *spatial, channels)`.
        path: the output directory (replaced if it exists).
        verbose: print Keras's export summary. Defaults to False.
        metadata: a metadata dict with a `kind` (see
            `synthlayers.models.save_model_file`) to write beside the
            network, or None for a `Segmenter`'s metadata (none for a plain
            network). Defaults to None.

    Returns:
        The path, as a string.

    Raises:
        ValueError: when the model does not have one 2D/3D image input, or
            `metadata` is invalid.

    Example:

    >>> export_network(segmenter, "synthseg_savedmodel")  # doctest: +SKIP
    >>> import tensorflow as tf
    >>> reloaded = tf.saved_model.load("synthseg_savedmodel")  # doctest: +SKIP
    >>> probabilities = reloaded.serve(x)  # doctest: +SKIP
    """
    from synthlayers.models.segmenter import Segmenter

    if isinstance(model, Segmenter):
        if metadata is None:
            metadata = model.metadata
        model = model.network
    text = None if metadata is None else _encode_metadata(complete_metadata(metadata))
    rank = _image_input_rank(model)
    spec = model.inputs[0]
    signature = [
        keras.InputSpec(
            shape=(None,) * (rank + 1) + (spec.shape[-1],),
            dtype=keras.backend.standardize_dtype(spec.dtype),
        )
    ]

    def write(temporary):
        model.export(
            temporary,
            format="tf_saved_model",
            verbose=verbose,
            input_signature=signature,
        )
        if text is not None:
            with open(os.path.join(temporary, METADATA_ENTRY), "w") as f:
                f.write(text)

    return atomic_write(os.fspath(path), write)
