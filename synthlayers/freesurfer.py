"""FreeSurfer label conventions used by the presets."""

# Left -> right label pairs of FreeSurfer's aseg (cerebral white matter and
# cortex, ventricles, cerebellum, deep grey nuclei, hippocampus, amygdala,
# accumbens, ventral DC, vessel, choroid plexus). A left/right flip swaps them.
LEFT_RIGHT_PAIRS = {
    2: 41, 3: 42, 4: 43, 5: 44, 7: 46, 8: 47, 10: 49, 11: 50, 12: 51, 13: 52,
    17: 53, 18: 54, 26: 58, 28: 60, 30: 62, 31: 63,
}  # fmt: skip


def left_right_swap(labels):
    """The pairs of `LEFT_RIGHT_PAIRS` whose both labels are in `labels`."""
    present = set(int(v) for v in labels)
    return {a: b for a, b in LEFT_RIGHT_PAIRS.items() if a in present and b in present}
