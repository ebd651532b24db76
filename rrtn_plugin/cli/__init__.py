"""The ``rrtn-plugin`` command line: a thin translation of arguments into the core's calls.

One module a command, each with its ``add_parser`` and its ``cmd_*`` function: ``restore`` (a
frame sequence in, restored frames and AOVs out, here or on a server), ``farm`` (chunked jobs
for render farms), ``serve`` (the gRPC server), ``demo`` (a clip made on the fly, through the
same pipeline), ``degrade`` (synthetic film damage on a sequence), ``train`` (train or fine-tune
checkpoints), ``evaluate`` (quality table against a classical baseline) and ``info`` (what a
checkpoint holds). :mod:`.main` assembles the parser and runs a command; :mod:`.arguments`
holds the arguments commands share (the engine's, made from their one description in
:mod:`rrtn_plugin.options`); :mod:`.models` the models; :mod:`.progress` the progress
display. Errors the user can act on print one line and exit non-zero (see
:data:`.main.EXIT_CODES`); exit 0 means every requested frame was written. Building the parser
loads neither torch nor OpenImageIO, so ``--help`` answers at once: a command loads the core's
heavy parts in its ``cmd_*`` function, and its parser takes choices and defaults from torch-free
modules (:mod:`rrtn_plugin.options`, ``frames.settings``, ``model.choices``, ...).
"""

from rrtn_plugin.cli.main import main

__all__ = ["main"]
