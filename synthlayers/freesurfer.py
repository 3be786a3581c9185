"""FreeSurfer label conventions: names, SynthSeg's structures, merges, left/right pairs.

Label values are FreeSurfer's (`FreeSurferColorLUT.txt`, the values of
`aseg` volumes).

`LEFT_RIGHT_PAIRS` lists the left -> right label pairs a left/right flip
swaps. It covers every pair SynthSeg swaps when it flips its generation
label maps: SynthSeg (BBillot/SynthSeg at commit
66342c1f05e520f3729a6d7ca1042eb7f01b6266) orders
`data/labels_classes_priors/generation_labels.npy` (54 labels) as the
background and the non-sided labels first (`n_neutral_labels = 18` in
`scripts/tutorials/2-generation_explained.py`, `3-training.py`), then the
left labels, then the right labels in the same order, and
`ext/lab2im/layers.py: RandomFlip.build` swaps `left[i] <-> right[i]`
(called from `SynthSeg/labels_to_image_model.py` with
`swap_labels=True, label_list=generation_labels, n_neutral_labels`). That
gives the aseg pairs below plus lesions (25 <-> 57) and SynthSeg's labels
136 <-> 163 and 137 <-> 164. Choroid plexus (31 <-> 63), absent from
SynthSeg's generation labels, is a FreeSurfer pair kept here too.
"""

LEFT_RIGHT_PAIRS = {
    2: 41, 3: 42, 4: 43, 5: 44, 7: 46, 8: 47, 10: 49, 11: 50, 12: 51, 13: 52,
    17: 53, 18: 54, 25: 57, 26: 58, 28: 60, 30: 62, 31: 63, 136: 163, 137: 164,
}  # fmt: skip
"""Left -> right label pairs (cerebral white matter and cortex, ventricles,
cerebellum, deep grey nuclei, hippocampus, amygdala, lesions, accumbens,
ventral DC, vessel, choroid plexus, SynthSeg's 136/163 and 137/164): a
left/right flip swaps them."""


def left_right_swap(labels):
    """The pairs of `LEFT_RIGHT_PAIRS` whose both labels are in `labels`.

    Args:
        labels: label values (any iterable of integers).

    Returns:
        A dict `{left: right}`.

    Example:

    >>> left_right_swap([0, 2, 3, 41, 24])
    {2: 41}
    """
    present = set(int(v) for v in labels)
    return {a: b for a, b in LEFT_RIGHT_PAIRS.items() if a in present and b in present}


SYNTHSEG_STRUCTURES = (
    2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 28,
    41, 42, 43, 44, 46, 47, 49, 50, 51, 52, 53, 54, 58, 60,
)  # fmt: skip
"""The 32 structures SynthSeg 2.0 segments (FreeSurfer values, background
excluded): SynthSeg 1.0's 31 plus CSF (24)."""

SYNTHSEG_STRUCTURES_V1 = tuple(v for v in SYNTHSEG_STRUCTURES if v != 24)
"""SynthSeg 1.0's 31 structures (no CSF)."""

FREESURFER_NAMES = {
    0: "Unknown",
    2: "Left-Cerebral-White-Matter",
    3: "Left-Cerebral-Cortex",
    4: "Left-Lateral-Ventricle",
    5: "Left-Inf-Lat-Vent",
    7: "Left-Cerebellum-White-Matter",
    8: "Left-Cerebellum-Cortex",
    10: "Left-Thalamus",
    11: "Left-Caudate",
    12: "Left-Putamen",
    13: "Left-Pallidum",
    14: "3rd-Ventricle",
    15: "4th-Ventricle",
    16: "Brain-Stem",
    17: "Left-Hippocampus",
    18: "Left-Amygdala",
    24: "CSF",
    25: "Left-Lesion",
    26: "Left-Accumbens-area",
    28: "Left-VentralDC",
    30: "Left-vessel",
    31: "Left-choroid-plexus",
    41: "Right-Cerebral-White-Matter",
    42: "Right-Cerebral-Cortex",
    43: "Right-Lateral-Ventricle",
    44: "Right-Inf-Lat-Vent",
    46: "Right-Cerebellum-White-Matter",
    47: "Right-Cerebellum-Cortex",
    49: "Right-Thalamus",
    50: "Right-Caudate",
    51: "Right-Putamen",
    52: "Right-Pallidum",
    53: "Right-Hippocampus",
    54: "Right-Amygdala",
    57: "Right-Lesion",
    58: "Right-Accumbens-area",
    60: "Right-VentralDC",
    62: "Right-vessel",
    63: "Right-choroid-plexus",
    72: "5th-Ventricle",
    77: "WM-hypointensities",
    78: "Left-WM-hypointensities",
    79: "Right-WM-hypointensities",
    80: "non-WM-hypointensities",
    81: "Left-non-WM-hypointensities",
    82: "Right-non-WM-hypointensities",
    85: "Optic-Chiasm",
    251: "CC_Posterior",
    252: "CC_Mid_Posterior",
    253: "CC_Central",
    254: "CC_Mid_Anterior",
    255: "CC_Anterior",
}
"""Names of FreeSurfer labels (from FreeSurferColorLUT) met in aseg volumes."""

FREESURFER_COLORS = {
    0: (0, 0, 0),
    2: (245, 245, 245),
    3: (205, 62, 78),
    4: (120, 18, 134),
    5: (196, 58, 250),
    7: (220, 248, 164),
    8: (230, 148, 34),
    10: (0, 118, 14),
    11: (122, 186, 220),
    12: (236, 13, 176),
    13: (12, 48, 255),
    14: (204, 182, 142),
    15: (42, 204, 164),
    16: (119, 159, 176),
    17: (220, 216, 20),
    18: (103, 255, 255),
    24: (60, 60, 60),
    25: (255, 165, 0),
    26: (255, 165, 0),
    28: (165, 42, 42),
    30: (160, 32, 240),
    31: (0, 200, 200),
    41: (245, 245, 245),
    42: (205, 62, 78),
    43: (120, 18, 134),
    44: (196, 58, 250),
    46: (220, 248, 164),
    47: (230, 148, 34),
    49: (0, 118, 14),
    50: (122, 186, 220),
    51: (236, 13, 176),
    52: (13, 48, 255),
    53: (220, 216, 20),
    54: (103, 255, 255),
    57: (255, 165, 0),
    58: (255, 165, 0),
    60: (165, 42, 42),
    62: (160, 32, 240),
    63: (0, 200, 221),
    72: (120, 190, 150),
    77: (200, 70, 255),
    78: (255, 148, 10),
    79: (255, 148, 10),
    80: (164, 108, 226),
    81: (164, 108, 226),
    82: (164, 108, 226),
    85: (234, 169, 30),
    251: (0, 0, 64),
    252: (0, 0, 112),
    253: (0, 0, 160),
    254: (0, 0, 208),
    255: (0, 0, 255),
}
"""RGB colours (0-255) of the labels of `FREESURFER_NAMES`, from FreeSurfer's
`distribution/FreeSurferColorLUT.txt` (freesurfer/freesurfer at commit
62228baedd5c5914333d31211e3e02759faed287). FreeSurfer gives the left and
right label of a structure the same colour (pallidum 12/13 and choroid
plexus 0 200 200 / 0 200 221 differ by one channel), so both sides of a
structure read as one structure in a figure."""

FREESURFER_MERGES = {25: 2, 57: 41, 78: 2, 79: 41, 31: 4, 63: 43}
"""Default fixed merges of `convert_freesurfer_segmentation`: lesions and
lateralised white-matter hypointensities into the cerebral white matter of
their side (as SynthSeg's segmentation table maps lesions 25/57), choroid
plexus into the lateral ventricle that contains it."""

MIDLINE_WHITE_MATTER = (77, 251, 252, 253, 254, 255)
"""Unlateralised white-matter labels (WM hypointensities, corpus callosum)
that `convert_freesurfer_segmentation` splits into left (2) and right (41)
cerebral white matter."""


def structure_name(label):
    """FreeSurfer name of `label`, or `"label <value>"` when unknown.

    Args:
        label: a label value (integer).

    Returns:
        The name in `FREESURFER_NAMES`, else `"label <value>"`.

    Example:

    >>> structure_name(17), structure_name(999)
    ('Left-Hippocampus', 'label 999')
    """
    return FREESURFER_NAMES.get(int(label), f"label {int(label)}")
