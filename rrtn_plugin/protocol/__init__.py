"""The wire: ``rrtn.v1`` messages generated from proto/rrtn/v1/restorer.proto (regenerate with
proto/generate.py), and :mod:`.framing`, the one place that cuts frames into chunks and joins
them again, used by both the client library and the server."""
