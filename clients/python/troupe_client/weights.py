"""Weights (docs/PROTOCOL.md §4, §6): manifest validation and hash, chunk fetching with a window of
requests, and every tensor's XXH64 checked before the weights are used."""
import hashlib
import struct
import time

import numpy as np
import xxhash
import zmq

from . import wire
from .proto import Envelope, weights_pb2

DTYPE_SIZE = {weights_pb2.DTYPE_F32: 4, weights_pb2.DTYPE_F16: 2, weights_pb2.DTYPE_BF16: 2, weights_pb2.DTYPE_I32: 4}
WINDOW = 8


class WeightsError(Exception):
    pass


class Interrupted(Exception):
    """A control message arrived during the transfer: the caller handles it first, then fetches again."""


class VersionGone(WeightsError):
    """The learner no longer serves that version: fetch the newest."""


def manifest_hash(manifest):
    """BLAKE2b-256 of total_bytes, the tensor count and each tensor's fields, integers 8 bytes little-endian."""
    def u64(n):
        return struct.pack("<Q", n)
    out = bytearray(u64(manifest.total_bytes) + u64(len(manifest.tensors)))
    for t in manifest.tensors:
        name = t.name.encode("utf-8")
        out += u64(len(name)) + name + u64(t.dtype) + u64(len(t.shape))
        for d in t.shape:
            out += u64(d)
        out += u64(t.offset) + u64(t.byte_length) + u64(len(t.hash)) + t.hash
    return hashlib.blake2b(bytes(out), digest_size=32).digest()


def validate(manifest):
    """The checks of §6.2, each failure naming the tensor or field."""
    if manifest.status != weights_pb2.WEIGHT_STATUS_OK:
        raise WeightsError(f"manifest status {manifest.status}, not OK")
    if manifest.chunk_size == 0 or not manifest.tensors:
        raise WeightsError("manifest has chunk_size 0 or no tensors")
    names, spans = set(), []
    for t in manifest.tensors:
        if not t.name or t.name in names:
            raise WeightsError(f"tensor name {t.name!r} is empty or repeated")
        names.add(t.name)
        size = DTYPE_SIZE.get(t.dtype)
        if size is None:
            raise WeightsError(f"tensor {t.name}: unknown dtype {t.dtype}")
        if t.byte_length != int(np.prod(list(t.shape), dtype=np.int64)) * size:
            raise WeightsError(f"tensor {t.name}: byte_length {t.byte_length} does not match shape {list(t.shape)}")
        if t.offset + t.byte_length > manifest.total_bytes:
            raise WeightsError(f"tensor {t.name} ends beyond the blob")
        if len(t.hash) != 8:
            raise WeightsError(f"tensor {t.name}: hash of {len(t.hash)} bytes, 8 expected")
        spans.append((t.offset, t.offset + t.byte_length, t.name))
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise WeightsError(f"tensors {a} and {b} overlap")
    if manifest_hash(manifest) != manifest.manifest_hash:
        raise WeightsError("manifest_hash does not match the tensor list")


def wait(socket, interrupt, seconds):
    """True when `socket` is readable within `seconds`. `interrupt`, if given, is (control socket,
    handler): whenever the control socket is readable meanwhile the handler runs, and Interrupted is
    raised if it returns True (a Bye: the learner is finishing and will not answer)."""
    deadline = time.monotonic() + max(0, seconds)
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    if interrupt is not None:
        poller.register(interrupt[0], zmq.POLLIN)
    while True:
        ready = dict(poller.poll(int(max(0, deadline - time.monotonic()) * 1000)))
        if interrupt is not None and interrupt[0] in ready and interrupt[1]():
            raise Interrupted()
        if socket in ready:
            return True
        if time.monotonic() >= deadline:
            return False


def request(socket, envelope, timeout_s, interrupt=None):
    """The answer to `envelope`, skipping chunks still arriving from an abandoned transfer."""
    socket.send_multipart(wire.encode(envelope))
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not wait(socket, interrupt, left):
            raise WeightsError(f"no answer on the weights socket within {timeout_s} s")
        answer = wire.decode(socket.recv_multipart(), max_frames=1)
        if answer[0].WhichOneof("body") != "chunk":
            return answer


def fetch_manifest(socket, timeout_s=5, interrupt=None):
    e = Envelope()
    e.weight_manifest_request.SetInParent()
    answer, _ = request(socket, e, timeout_s, interrupt)
    if answer.WhichOneof("body") == "reject":
        raise WeightsError(f"the learner refused the manifest request: {answer.reject.text}")
    if answer.WhichOneof("body") != "weight_manifest":
        raise WeightsError(f"answer to WeightManifestRequest is a {answer.WhichOneof('body')}")
    validate(answer.weight_manifest)
    return answer.weight_manifest


def fetch_blob(socket, manifest, timeout_s=30, interrupt=None):
    """The blob, from chunks on the grid (offset a multiple of chunk_size), WINDOW requests in flight."""
    total, size = manifest.total_bytes, manifest.chunk_size
    blob = bytearray(total)
    offsets = list(range(0, total, size))
    pending, next_index, received = set(), 0, 0
    deadline = time.monotonic() + timeout_s
    while received < len(offsets):
        while next_index < len(offsets) and len(pending) < WINDOW:
            offset = offsets[next_index]
            e = Envelope()
            e.chunk_request.version.CopyFrom(manifest.version)
            e.chunk_request.offset = offset
            e.chunk_request.length = min(size, total - offset)
            socket.send_multipart(wire.encode(e))
            pending.add(offset)
            next_index += 1
        left = deadline - time.monotonic()
        if left <= 0 or not wait(socket, interrupt, left):
            raise WeightsError(f"chunks stopped arriving: {received} of {len(offsets)} after {timeout_s} s")
        answer, frames = wire.decode(socket.recv_multipart(), max_frames=1)
        if answer.WhichOneof("body") != "chunk":
            raise WeightsError(f"expected a Chunk, got a {answer.WhichOneof('body')}")
        chunk = answer.chunk
        if chunk.status == weights_pb2.WEIGHT_STATUS_VERSION_GONE:
            raise VersionGone(f"version step {manifest.version.step} is no longer served")
        if chunk.status != weights_pb2.WEIGHT_STATUS_OK or chunk.offset not in pending or len(frames) != 1:
            raise WeightsError(f"bad chunk: status {chunk.status}, offset {chunk.offset}")
        if chunk.version != manifest.version:
            raise WeightsError("a chunk of another version")
        expected = min(size, total - chunk.offset)
        if len(frames[0]) != expected:
            raise WeightsError(f"chunk at {chunk.offset} holds {len(frames[0])} bytes, {expected} expected")
        blob[chunk.offset:chunk.offset + expected] = frames[0]
        pending.discard(chunk.offset)
        received += 1
    return bytes(blob)


def tensors_of(blob, manifest):
    """name -> float32 array, after checking every tensor's XXH64 against the manifest."""
    tensors = {}
    for t in manifest.tensors:
        data = blob[t.offset:t.offset + t.byte_length]
        digest = struct.pack(">Q", xxhash.xxh64_intdigest(data, seed=0))
        if digest != t.hash:
            raise WeightsError(f"tensor {t.name}: XXH64 {digest.hex()} differs from the manifest's {t.hash.hex()}")
        if t.dtype != weights_pb2.DTYPE_F32:
            raise WeightsError(f"tensor {t.name}: dtype {t.dtype}; this actor reads float32 weights only")
        tensors[t.name] = np.frombuffer(data, dtype="<f4").reshape(list(t.shape)).astype(np.float32)
    return tensors


def fetch(socket, timeout_s=30, interrupt=None):
    """(manifest, tensors) of the learner's newest version; retried if it moved on meanwhile.
    Interrupted as `wait` says (then the socket may hold stale answers: replace it)."""
    for _ in range(3):
        manifest = fetch_manifest(socket, interrupt=interrupt)
        try:
            blob = fetch_blob(socket, manifest, timeout_s, interrupt)
        except VersionGone:
            continue
        return manifest, tensors_of(blob, manifest)
    raise WeightsError("the learner kept publishing new versions while this actor fetched (3 tries)")
