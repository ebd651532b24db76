"""Frames in and out: sequences on disk, image files and bytes, AOVs, and the restore loop.

:mod:`.sequence` finds a shot's frames from a pattern or folder, :mod:`.image` and
:mod:`.image_bytes` read and write them (on disk atomically, or as bytes for the server),
:mod:`.plan` checks a request against what is on disk before any work starts, :mod:`.pipeline`
turns one frame into the network's luminance and the engine's result back into an image with
its AOVs (:mod:`.aovs`), :mod:`.restore` is the loop that runs them over a clip, and
:mod:`.record` is a job's record beside its output, which makes a retry exact. A job's settings
are in :mod:`.settings`, which loads no torch, so that front ends can show them.
"""
