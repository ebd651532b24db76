"""Synthetic film: procedural damage, and clean footage filmed from stills by a virtual camera.

``degrade_clip(clean, seed=…)`` returns a :class:`DamagedClip`: the damaged frames and the
ground-truth mask of the structured damage (dust, dirt, hairs, scratches). Parameters are drawn
once per clip (:func:`sample_damage`) and vary per frame inside the damage model, as in RTN's
degradation model; nothing is read from texture files. :mod:`.footage` films stills with a
moving camera for training and evaluation, :mod:`.samples` makes tiny clips for tests and
benchmarks, and :mod:`.damage_files` damages a sequence on disk.
"""

from rrtn_plugin.synth.damage import DamagedClip, degrade_clip
from rrtn_plugin.synth.params import DamageParams, sample_damage

__all__ = ["DamageParams", "DamagedClip", "degrade_clip", "sample_damage"]
