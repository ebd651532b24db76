"""The client side, shared by every host adapter, needing only grpcio, protobuf and numpy.

:mod:`.library` is the synchronous gRPC client (sessions, sending frames, receiving results,
cancel). The rest is a restore as an adapter runs it, one concern a module: :mod:`.settings`
(the user's choices, what a server offers), :mod:`.jobs` (a job, its key and record),
:mod:`.running` (the call in a worker thread a host's UI can poll and cancel),
:mod:`.results` (where results live: the one folder rule every host follows, paths relative to
the document), :mod:`.sequences` (files' identity, EXR sizes), :mod:`.staleness` (whether a
placed result is out of date), :mod:`.farm` (farm job bundles through ``rrtn-plugin farm
openjd``), :mod:`.colour` (a host's colour-space name made concrete), :mod:`.steps` (a long
run driven by a host's UI timer) and :mod:`.versions` (host version gates).
"""
