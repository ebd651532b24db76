"""rrtn-plugin: old-film restoration with RRTN for compositing and editing hosts.

A frame's way through the package, layer by layer (each imports only the layers before it):

- ``errors``, ``atomic``: the one exception type; files written whole or not at all.
- ``model``: the RRTN network, its parts and its checkpoints; ``weights``: the bundled model.
- ``engine``: clips of any size and length scheduled over the network (sessions, cached work,
  windows, recursion, tiles, devices).
- ``color``: a frame's colour to the network's luminance and the change back.
- ``frames``: sequences and image files in and out, AOVs, and the one restore loop that reads,
  converts, restores, renders and writes a job's frames.
- ``synth``: synthetic film damage and footage; ``training``: training, evaluation, metrics.
- ``protocol``: the gRPC messages and their framing; ``server``: the service and its gRPC
  translation; ``client``: the client library and the job every host adapter runs.
- ``farm``: chunked jobs for render farms; ``cli``: the ``rrtn-plugin`` command, one module a
  command.
"""

__version__ = "0.1.0"
