"""The restoration server: :mod:`.service` holds the models, the shared cache and the sessions
and runs restores on them, without gRPC; :mod:`.servicer` translates ``rrtn.v1.Restorer`` calls
onto it (parsing, statuses, streaming, logs); :mod:`.bounds` says what a request may ask and
what a session costs; :mod:`.confine` keeps the path transport under its roots; :mod:`.metrics`
keeps the figures Prometheus scrapes; :mod:`.app` starts a gRPC server with its security
settings and drains it."""
