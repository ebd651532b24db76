"""Procedural film damage: what old film does to a clean clip, with the damage mask it leaves.

``degrade_clip(clean, seed=…)`` returns a :class:`DamagedClip`: the damaged frames and the
ground-truth mask of the structured damage (dust, dirt, hairs, scratches). Parameters are drawn
once per clip (:func:`sample_damage`) and vary per frame inside the damage model, as in RTN's
degradation model; nothing is read from texture files.
"""

from rrtn_plugin.degrade.clip import DamagedClip, degrade_clip
from rrtn_plugin.degrade.params import DamageParams, sample_damage

__all__ = ["DamageParams", "DamagedClip", "degrade_clip", "sample_damage"]
