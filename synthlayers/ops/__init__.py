"""Pure, deterministic, backend-agnostic tensor functions (`keras.ops` only)."""

from synthlayers.ops.affine import affine_matrix
from synthlayers.ops.affine import compose_affine
from synthlayers.ops.affine import invert_affine
from synthlayers.ops.affine import rotation_matrix
from synthlayers.ops.filters import gaussian_blur
from synthlayers.ops.filters import gaussian_kernel_matrix
from synthlayers.ops.grid import centered_offset
from synthlayers.ops.grid import identity_grid
from synthlayers.ops.grid import sampling_coordinates
from synthlayers.ops.integrate import integrate_velocity
from synthlayers.ops.jacobian import folding_fraction
from synthlayers.ops.jacobian import jacobian_determinant
from synthlayers.ops.labels import apply_lookup_table
from synthlayers.ops.labels import lookup_table
from synthlayers.ops.resample import resample
from synthlayers.ops.resize import apply_along_axis
from synthlayers.ops.resize import linear_resize_matrix
from synthlayers.ops.resize import resize
from synthlayers.ops.resize import resize_displacement
