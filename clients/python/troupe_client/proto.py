"""Imports the protobuf modules generate.sh makes from Protos/ (never committed)."""
import os
import sys

GENERATED = os.environ.get("TROUPE_PY_GENERATED") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "generated")
if not os.path.isdir(os.path.join(GENERATED, "troupe", "v1")):
    raise SystemExit(f"troupe_client: no generated protobuf code in {GENERATED}: run bash clients/python/generate.sh")
if GENERATED not in sys.path:
    sys.path.insert(0, GENERATED)

from troupe.v1 import common_pb2, control_pb2, envelope_pb2, logs_pb2, weights_pb2  # noqa: E402

Envelope = envelope_pb2.Envelope
__all__ = ["common_pb2", "control_pb2", "envelope_pb2", "logs_pb2", "weights_pb2", "Envelope"]
