"""The client side, shared by every host adapter, needing only grpcio, protobuf and numpy.

:mod:`.library` is the synchronous gRPC client (sessions, sending frames, receiving results,
cancel); :mod:`.host_job` is a restore as an adapter runs it: the user's settings, the job's
identity and result folder, the call in a worker thread a host's UI can poll and cancel.
"""
