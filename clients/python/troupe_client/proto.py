"""Imports the protobuf modules generate.sh makes from Protos/ (never committed)."""
import hashlib
import os
import sys

GENERATED = os.environ.get("TROUPE_PY_GENERATED") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "generated")
if not os.path.isdir(os.path.join(GENERATED, "troupe", "v1")):
    raise SystemExit(f"troupe_client: no generated protobuf code in {GENERATED}: run bash clients/python/generate.sh")


def _protos_digest(directory):
    """SHA-256 of the .proto files in name order, as generate.sh records it."""
    digest = hashlib.sha256()
    for name in sorted(n for n in os.listdir(directory) if n.endswith(".proto")):
        with open(os.path.join(directory, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


# Code generated from older .proto files would encode messages the learner refuses, or misread its
# answers: refuse it, naming the fix. (Without a checkout beside it there is nothing to compare.)
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_PROTOS = os.path.join(_REPOSITORY, "Protos", "troupe", "v1")
if os.path.isdir(_PROTOS):
    _stamp_path = os.path.join(GENERATED, "PROTOS_SHA256")
    _stamp = None
    if os.path.exists(_stamp_path):
        with open(_stamp_path) as _f:
            _stamp = _f.read().strip()
    if _stamp != _protos_digest(_PROTOS):
        raise SystemExit(f"troupe_client: the protobuf code in {GENERATED} was not made from the .proto files in {_PROTOS}"
                         f" ({'no PROTOS_SHA256' if _stamp is None else 'they changed since'}): run bash clients/python/generate.sh")
if GENERATED not in sys.path:
    sys.path.insert(0, GENERATED)

from troupe.v1 import common_pb2, control_pb2, envelope_pb2, logs_pb2, weights_pb2  # noqa: E402

Envelope = envelope_pb2.Envelope
__all__ = ["common_pb2", "control_pb2", "envelope_pb2", "logs_pb2", "weights_pb2", "Envelope"]
