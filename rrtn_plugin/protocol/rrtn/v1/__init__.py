"""Generated gRPC code for proto/rrtn/v1/restorer.proto (regenerate with proto/generate.py)."""
