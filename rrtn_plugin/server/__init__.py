"""The restoration server: :mod:`.service` holds the models, the shared cache and the sessions
and runs restores on them, without gRPC; :mod:`.servicer` translates ``rrtn.v1.Restorer`` calls
onto it (statuses, streaming); :mod:`.app` starts a gRPC server with its security settings."""
