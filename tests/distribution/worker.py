"""Data-parallel checks on two virtual CPU devices, run in a fresh process.

The device count must be set before the engine starts (JAX reads
`XLA_FLAGS` at import, TensorFlow fixes its logical devices when it
initialises), so the tests run this module in a subprocess:

    python -m tests.distribution.worker ENGINE MODEL OUT.json

ENGINE is `jax` (`keras.distribution.DataParallel`) or `tensorflow`
(`tf.distribute.MirroredStrategy`); MODEL is `segmentation` or
`registration`. The module measures, it does not assert: it writes the
numbers (differences, losses, gradients) as JSON for the tests to check.
"""

import json
import os
import sys

DEVICES = 2
GLOBAL_BATCH = 4
SHAPE = (16, 16)
LABELS = [0, 3, 7, 12]
TARGETS = {0: 0, 3: 1, 7: 2, 12: 3}
MEANS = [20.0, 90.0, 160.0, 230.0]
LEARNING_RATE = 0.5


def start_engine(engine):
    """Two virtual CPU devices for `engine`; returns the backend module."""
    os.environ["KERAS_BACKEND"] = engine
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if engine == "jax":
        flag = f"--xla_force_host_platform_device_count={DEVICES}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}"
        import jax

        assert len(jax.devices("cpu")) == DEVICES, jax.devices()
        return jax
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES
    )
    return tf


def label_maps(batch, seed, distinct=True):
    """Blocky int32 maps `(batch, *SHAPE, 1)`: distinct, or one map repeated."""
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, len(LABELS), (batch if distinct else 1, 4, 4))
    maps = np.asarray(LABELS)[coarse.repeat(SHAPE[0] // 4, 1).repeat(SHAPE[1] // 4, 2)]
    maps = np.broadcast_to(maps, (batch, *SHAPE)) if not distinct else maps
    return np.ascontiguousarray(maps[..., None].astype("int32"))


class Engine:
    """Build and step models the way each engine's `fit` does."""

    def __init__(self, name):
        self.name = name
        self.backend = start_engine(name)
        import keras

        self.keras = keras
        self._steps = {}
        if name == "jax":
            devices = keras.distribution.list_devices("cpu")
            self.distribution = keras.distribution.DataParallel(devices=devices)
        else:
            tf = self.backend
            self.strategy = tf.distribute.MirroredStrategy(
                [f"CPU:{i}" for i in range(DEVICES)]
            )

    def scope(self, distributed):
        """The scope in which a model is built and trained."""
        import contextlib

        if not distributed:
            return contextlib.nullcontext()
        if self.name == "jax":
            return self.distribution.scope()
        return self.strategy.scope()

    def forward(self, model, x):
        """`model(x, training=True)` as in `fit`'s step, on the global batch.

        JAX: one jitted program on the global batch sharded over the devices
        (`fit`'s `train_step` is such a program). TensorFlow: the replicas
        each run the model on their half under `strategy.run` in a
        `tf.function` (as `fit` does). Returns the outputs as NumPy arrays,
        the replicas' halves concatenated, and the replica count.
        """
        import numpy as np

        keras = self.keras
        if self.name == "jax":
            jax = self.backend
            layout = self.distribution.get_data_layout(x.shape)
            sharded = keras.distribution.distribute_tensor(x, layout)

            step = self._steps.get(id(model), (None, None))[1]
            if step is None:

                @jax.jit
                def step(trainable, non_trainable, data):
                    return model.stateless_call(
                        trainable, non_trainable, data, training=True
                    )

                self._steps[id(model)] = (model, step)  # keeps the id in use

            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            outputs, non_trainable = step(trainable, non_trainable, sharded)
            for variable, value in zip(model.non_trainable_variables, non_trainable):
                variable.assign(value)
            shards = {s.device for s in jax.tree.leaves(outputs)[0].addressable_shards}
            outputs = {k: np.asarray(v) for k, v in outputs.items()}
            return outputs, len(shards)
        tf = self.backend
        dataset = tf.data.Dataset.from_tensors(x)
        data = next(iter(self.strategy.experimental_distribute_dataset(dataset)))

        @tf.function
        def step(data):
            return self.strategy.run(lambda d: model(d, training=True), args=(data,))

        outputs = step(data)
        merged = {}
        for key, value in outputs.items():
            parts = self.strategy.experimental_local_results(value)
            merged[key] = np.concatenate([keras.ops.convert_to_numpy(p) for p in parts])
        return merged, self.strategy.num_replicas_in_sync


def max_difference(a, b):
    import numpy as np

    return float(np.max(np.abs(np.asarray(a, "float64") - np.asarray(b, "float64"))))


def halves(outputs, keys):
    """Largest difference between the two halves of the global batch, per key."""
    half = GLOBAL_BATCH // 2
    return {k: max_difference(outputs[k][:half], outputs[k][half:]) for k in keys}


# Segmentation ---------------------------------------------------------------


def segmentation_model(engine, seed, distributed, kind="random"):
    """A small SegmentationModel; `kind`: random, contrast (no spatial
    augmentation) or fixed (no randomness at all)."""
    keras = engine.keras
    from synthlayers.layers import LabelsToImage
    from synthlayers.models import SegmentationModel
    from synthlayers.models import unet

    spreads = {
        "random": dict(
            prior_means=[MEANS, [30.0] * 4], prior_stds=[[4.0] * 4, [2.0] * 4],
            rotation=20.0, deformation_std=2.0, noise_std=3.0,
        ),
        "contrast": dict(
            prior_means=[MEANS, [30.0] * 4], prior_stds=[[4.0] * 4, [2.0] * 4],
        ),
        "fixed": dict(
            prior_means=[MEANS, [0.0] * 4], prior_stds=[[0.0] * 4, [0.0] * 4],
        ),
    }[kind]  # fmt: skip
    keras.utils.set_random_seed(seed)
    with engine.scope(distributed):
        generator = LabelsToImage(LABELS, output_labels=TARGETS, seed=seed, **spreads)
        network = unet((*SHAPE, 1), 4, levels=2, features=4, normalization=None)
        model = SegmentationModel(generator, network)
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
        model.build((None, *SHAPE, 1))
    return model


def one_fit_step(engine, model, feed, distributed):
    """Loss and gradient of one `fit` step (SGD: gradient = weight change / lr)."""
    import numpy as np

    keras = engine.keras
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    with engine.scope(distributed):
        history = model.fit(feed, epochs=1, verbose=0, shuffle=False)
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    gradient = np.concatenate(
        [((b - a) / LEARNING_RATE).ravel() for b, a in zip(before, after)]
    )
    weights = np.concatenate([b.ravel() for b in before])
    return float(history.history["loss"][0]), gradient, weights


def seed_state_copies(engine, model):
    """Per seed generator: whether all replicas' copies of its state agree."""
    from synthlayers.models.segmentation import seed_generators

    keras = engine.keras
    agree = []
    for generator in seed_generators(model):
        value = generator.state.value
        parts = (
            engine.strategy.experimental_local_results(value)
            if engine.name == "tensorflow"
            else [value]
        )
        arrays = [keras.ops.convert_to_numpy(p).tolist() for p in parts]
        agree.append(all(a == arrays[0] for a in arrays))
    return agree


def check_segmentation(engine):
    from synthlayers.data.feed import LabelMapFeed

    results = {}
    same = label_maps(GLOBAL_BATCH, seed=1, distinct=False)

    # 1. Within a step, the replicas' halves differ (identical label maps).
    model = segmentation_model(engine, seed=7, distributed=True)
    first, replicas = engine.forward(model, same)
    second, _ = engine.forward(model, same)
    results["replicas"] = replicas
    results["halves"] = halves(first, ["images", "segmentation_masks"])
    results["within_half"] = max_difference(first["images"][0], first["images"][1])
    results["next_step"] = max_difference(first["images"], second["images"])
    results["state_copies_agree"] = all(seed_state_copies(engine, model))
    # The engine's own behaviour: the generator alone, without the model's
    # replica seeds (TensorFlow: every replica draws the same numbers).
    raw, _ = engine.forward(model.generator, same)
    results["generator_alone_halves"] = halves(raw, ["images"])
    contrast = segmentation_model(engine, seed=7, distributed=True, kind="contrast")
    out, _ = engine.forward(contrast, same)
    results["contrast_halves"] = halves(out, ["images", "segmentation_masks"])

    # 2. Repeatable with a seed: a new model with the same seeds, same draws.
    again = segmentation_model(engine, seed=7, distributed=True)
    repeat, _ = engine.forward(again, same)
    results["repeat"] = max_difference(first["images"], repeat["images"])

    # 3. One fit step on a feed of distinct maps: distributed == one device.
    # JAX draws the global batch's numbers as one device does, so its random
    # run must match; under TensorFlow only the run without randomness can.
    maps = label_maps(8, seed=2)
    for kind in ("fixed", "random") if engine.name == "tensorflow" else ("random",):
        runs = {}
        for distributed in (False, True):
            feed = LabelMapFeed(
                list(maps[..., 0]), GLOBAL_BATCH, steps_per_epoch=1, seed=3
            )
            model = segmentation_model(engine, 11, distributed, kind=kind)
            runs[distributed] = one_fit_step(engine, model, feed, distributed)
        (loss_1, grad_1, w_1), (loss_2, grad_2, w_2) = runs[False], runs[True]
        results[f"fit_{kind}"] = {
            "loss_single": loss_1,
            "loss_distributed": loss_2,
            "initial_weights": max_difference(w_1, w_2),
            "gradient_scale": float(abs(grad_1).max()),
            "gradient": max_difference(grad_1, grad_2),
        }
    return results


# Registration ---------------------------------------------------------------


def registration_model(engine, seed, distributed):
    keras = engine.keras
    from synthlayers.layers import LabelsToImagePair
    from synthlayers.models import RegistrationModel
    from synthlayers.models import registration_network

    keras.utils.set_random_seed(seed)
    with engine.scope(distributed):
        generator = LabelsToImagePair.brains(
            LABELS, output_labels=TARGETS, deformation_std=2.0, seed=seed
        )
        network = registration_network((*SHAPE, 1), features=4)
        model = RegistrationModel(generator, network)
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
        model(label_maps(2, seed=0))  # builds the network's variables
    return model


def check_registration(engine):
    results = {}
    same = label_maps(GLOBAL_BATCH, seed=1, distinct=False)
    model = registration_model(engine, seed=7, distributed=True)
    first, replicas = engine.forward(model, same)
    results["replicas"] = replicas
    keys = ["moving_images", "fixed_images", "moving_segmentation_masks"]
    keys = [k for k in keys if k in first]
    results["keys"] = keys
    results["halves"] = halves(first, keys)
    again = registration_model(engine, seed=7, distributed=True)
    repeat, _ = engine.forward(again, same)
    results["repeat"] = max_difference(first[keys[0]], repeat[keys[0]])
    maps = label_maps(GLOBAL_BATCH, seed=2)
    runs = {}
    for distributed in (False, True):
        model = registration_model(engine, 11, distributed)
        try:
            runs[distributed] = one_fit_step(engine, model, maps, distributed)
        except Exception as error:  # reported, for the tests to show
            results["fit_error"] = f"{type(error).__name__}: {error}"[:2000]
            return results
    (loss_1, grad_1, _), (loss_2, grad_2, _) = runs[False], runs[True]
    results["fit"] = {
        "loss_single": loss_1,
        "loss_distributed": loss_2,
        "gradient_scale": float(abs(grad_1).max()),
        "gradient": max_difference(grad_1, grad_2),
    }
    return results


CHECKS = {"segmentation": check_segmentation, "registration": check_registration}


def main(engine_name, model, out):
    engine = Engine(engine_name)
    results = CHECKS[model](engine)
    with open(out, "w") as file:
        json.dump(results, file, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
