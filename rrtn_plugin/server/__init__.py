"""The gRPC server: a thin translation of ``rrtn.v1.Restorer`` onto :mod:`rrtn_plugin.service`."""
