"""Framing (docs/PROTOCOL.md §2): [Envelope header, raw frames...], with the XXH64 checksum appended
to the header as field 15."""
import struct

import xxhash

from .proto import Envelope

PROTOCOL_MAJOR = 2
PROTOCOL_MINOR = 4
CHECKSUM_TAG = b"\x7a\x08"


class WireError(Exception):
    """A message that fails the framing checks; the text says which."""


def checksum(header_without_checksum, frames):
    h = xxhash.xxh64(seed=0)
    h.update(header_without_checksum)
    for frame in frames:
        h.update(frame)
    return h.intdigest()


def encode(envelope, frames=()):
    """The parts of one message: `envelope` gets the protocol version and frame counts, then the checksum."""
    frames = [bytes(f) for f in frames]
    envelope.protocol_major = PROTOCOL_MAJOR
    envelope.protocol_minor = PROTOCOL_MINOR
    envelope.frame_count = len(frames)
    del envelope.frame_lengths[:]
    envelope.frame_lengths.extend(len(f) for f in frames)
    envelope.ClearField("checksum")
    header = envelope.SerializeToString()
    digest = checksum(header, frames)
    return [header + CHECKSUM_TAG + struct.pack(">Q", digest)] + frames


def decode(parts, max_frames=3):
    """(Envelope, raw frames) of a received message, or WireError naming the first check that fails."""
    if not parts:
        raise WireError("empty message")
    header, frames = bytes(parts[0]), [bytes(p) for p in parts[1:]]
    if len(frames) > max_frames:
        raise WireError(f"{len(frames)} raw frames, at most {max_frames} expected")
    envelope = Envelope()
    try:
        envelope.ParseFromString(header)
    except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError or others on garbage
        raise WireError(f"the header is not an Envelope: {error}") from error
    if envelope.protocol_major != PROTOCOL_MAJOR:
        raise WireError(f"protocol {envelope.protocol_major}.{envelope.protocol_minor}, this client speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}")
    if envelope.frame_count != len(frames) or list(envelope.frame_lengths) != [len(f) for f in frames]:
        raise WireError(f"frame_count {envelope.frame_count} / frame_lengths {list(envelope.frame_lengths)} do not match "
                        f"{len(frames)} raw frames of {[len(f) for f in frames]} bytes")
    if len(header) < 10 or header[-10:-8] != CHECKSUM_TAG:
        raise WireError("the header does not end with the checksum field")
    if struct.unpack(">Q", header[-8:])[0] != checksum(header[:-10], frames):
        raise WireError("checksum mismatch")
    if envelope.WhichOneof("body") is None:
        raise WireError("no body")
    return envelope, frames
