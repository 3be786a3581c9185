"""What SynthMorph's loss allows on the registration cases: one free SVF per case.

An upper bound for a network trained with that loss: for each case, after
the same affine pre-alignment as the network (`register` with no network,
dipy's mutual information), a stationary velocity field at half resolution
(the network's output) is optimised directly for that one pair, with the
*true* labels of both images: soft Dice of the linearly warped one-hot
moving labels (background and `REGISTRATION_STRUCTURES`, the others as
background; `DiceLoss(squared=False)`, as `RegistrationModel`) plus
`weight` times the L2 gradient of the displacement, integrated in 5 steps
(`IntegrateVelocity`), resized (`ResizeDisplacement`), Adam. The moved
labels are the argmax of the warped one-hot labels; Dice over the large
structures, folding and SD of log Jacobian as in `evaluate_cases` (of the
deformable part).

    python benchmarks/registration_ceiling.py [--ndim 2] [--kinds scan_to_synthetic]
        [--weights 1 0.1] [--steps 300] [--learning-rate 0.05]
"""

import argparse
import time

import keras
import numpy as np
from keras import ops


class Velocity(keras.layers.Layer):
    """A trainable velocity field (the input gives only the batch)."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.field = self.add_weight(shape=(1, *shape), initializer="zeros")

    def call(self, inputs):
        return self.field + 0.0 * ops.mean(inputs)


class Penalty(keras.layers.Layer):
    """Adds `weight` times the L2 gradient of the displacement to the loss."""

    def __init__(self, weight, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, displacement):
        from synthlayers.losses import gradient_penalty

        self.add_loss(self.weight * ops.mean(gradient_penalty(displacement)))
        return displacement


def fit_velocity(moving_onehot, fixed_onehot, weight, steps, learning_rate):
    """Optimise a half-resolution SVF; returns (displacement, warped one-hot)."""
    from synthlayers.layers import IntegrateVelocity
    from synthlayers.layers import SpatialTransformer
    from synthlayers.losses import DiceLoss
    from synthlayers.models import ResizeDisplacement

    shape = moving_onehot.shape[:-1]
    ndim = len(shape)
    half = tuple(n // 2 for n in shape)
    inputs = keras.Input(moving_onehot.shape)
    velocity = Velocity((*half, ndim))(inputs)
    displacement = ResizeDisplacement(shape)(IntegrateVelocity(steps=5)(velocity))
    displacement = Penalty(weight)(displacement)
    warped = SpatialTransformer()([inputs, displacement])
    model = keras.Model(inputs, warped)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss=DiceLoss(squared=False)
    )
    x = moving_onehot[None].astype("float32")
    model.fit(x, fixed_onehot[None].astype("float32"), epochs=steps, verbose=0)
    field = keras.Model(inputs, displacement).predict(x, verbose=0)
    return field[0].astype("float64"), model.predict(x, verbose=0)[0]


def main(argv=None):
    from synthlayers.data.registration_cases import registration_cases
    from synthlayers.evaluation import REGISTRATION_STRUCTURES
    from synthlayers.evaluation import evaluate_registration
    from synthlayers.inference.register import register

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ndim", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=["scan_to_synthetic"])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    values = np.array([0, *REGISTRATION_STRUCTURES])
    cases = registration_cases(args.ndim, kinds=args.kinds, seed=args.seed)
    rows = []
    for case in cases:
        affine = register(
            None, case.moving, case.fixed, moving_segmentation=case.moving_labels,
            inverse=False,
        )  # fmt: skip
        moved = affine.moved_segmentation
        row = {"case": case.name}
        row["affine"] = evaluate_registration(moved, case.fixed_labels)["mean_dice"]
        moving_onehot = np.equal(moved[..., None], values)
        fixed_onehot = np.equal(case.fixed_labels[..., None], values)
        for weight in args.weights:
            start = time.perf_counter()
            displacement, warped = fit_velocity(
                moving_onehot, fixed_onehot, weight, args.steps, args.learning_rate
            )
            labels = values[np.argmax(warped, axis=-1)]
            scores = evaluate_registration(labels, case.fixed_labels, displacement)
            row[weight] = (
                scores["mean_dice"],
                scores["folding_percent"],
                time.perf_counter() - start,
            )
        rows.append(row)
        print(row, flush=True)
    header = "| case | affine | " + " | ".join(
        f"free SVF, lambda {w:g} (Dice, folding %)" for w in args.weights
    )
    print(f"\n{header} |\n|---|---|" + "---|" * len(args.weights))
    for row in rows:
        cells = " | ".join(f"{row[w][0]:.3f}, {row[w][1]:.2f}" for w in args.weights)
        print(f"| {row['case']} | {row['affine']:.3f} | {cells} |")
    means = " | ".join(
        f"{np.mean([r[w][0] for r in rows]):.3f}, {np.mean([r[w][1] for r in rows]):.2f}"
        for w in args.weights
    )
    affine = np.mean([r["affine"] for r in rows])
    print(f"| mean | {affine:.3f} | {means} |")


if __name__ == "__main__":
    main()
