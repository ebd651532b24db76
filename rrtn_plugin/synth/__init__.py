"""Synthetic film: procedural damage, and clean footage filmed from stills by a virtual camera.

``degrade_clip(clean, seed=…)`` returns a :class:`DamagedClip`: the damaged frames, the
ground-truth mask of the structured damage (dust, dirt, hairs, scratches) and the target a
restorer should return (the clip with the print's own fade and softness: damage and flicker
around the clip's level removed, the tone kept). Parameters are drawn once per clip
(:func:`sample_damage`) and vary per frame inside the damage model, as in RTN's degradation
model; nothing is read from texture files. :mod:`.footage` films stills with a moving camera,
objects moving on their own and drawn exposures for training and evaluation, :mod:`.samples`
makes tiny clips for tests and benchmarks, and :mod:`.damage_files` damages a sequence on
disk.
"""

from rrtn_plugin.synth.damage import DamagedClip, degrade_clip
from rrtn_plugin.synth.params import DamageParams, sample_damage

__all__ = ["DamageParams", "DamagedClip", "degrade_clip", "sample_damage"]
