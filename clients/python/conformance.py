#!/usr/bin/env python3
"""The Python side of the wire conformance check (docs/PROTOCOL.md §11).

    python conformance.py GOLDENS OUT [--c-dumps DIR]

For every golden NAME.pb (swift-protobuf binary) in GOLDENS:
  1. decodes it with Python protobuf; it must keep no unknown fields;
  2. parses NAME.txt (swift-protobuf's text format of the same message): the two must be equal messages;
  3. writes OUT/NAME.python.pb (its own encoding, for the Swift side to decode) and OUT/NAME.python.dump
     (the canonical dump, troupe_client/dump.py);
  4. with --c-dumps, compares its dump with DIR/NAME.c.dump, written by clients/c/conformance from
     the same golden, and decodes DIR/NAME.c.pb (protobuf-c's encoding) to a message equal to its own
     decoding, comparing proto3 optional strings by value and -0.0 equal to +0.0 (protobuf-c keeps
     neither, see docs/PROTOCOL.md §11).
Exit status 0 when all holds, 1 naming every message that does not.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from google.protobuf import text_format  # noqa: E402

from troupe_client.dump import dump, has_unknown_fields  # noqa: E402
from troupe_client.proto import Envelope  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("goldens")
    parser.add_argument("out")
    parser.add_argument("--c-dumps", help="the folder clients/c/conformance wrote NAME.c.dump and NAME.c.pb to")
    args = parser.parse_args()
    names = sorted(f[:-3] for f in os.listdir(args.goldens) if f.endswith(".pb") and f.count(".") == 1)
    if not names:
        raise SystemExit(f"conformance.py: no golden NAME.pb files in {args.goldens}")
    os.makedirs(args.out, exist_ok=True)
    problems = []
    for name in names:
        with open(os.path.join(args.goldens, name + ".pb"), "rb") as f:
            data = f.read()
        message = Envelope()
        try:
            message.ParseFromString(data)
        except Exception as error:  # noqa: BLE001 - any decode failure is a finding
            problems.append(f"{name}.pb: Python protobuf does not decode it: {error}")
            continue
        if has_unknown_fields(message):
            problems.append(f"{name}.pb: decoded with unknown fields")
        with open(os.path.join(args.goldens, name + ".txt"), encoding="utf-8") as f:
            text = f.read()
        from_text = Envelope()
        try:
            text_format.Parse(text, from_text)
        except text_format.ParseError as error:
            problems.append(f"{name}.txt: Python protobuf does not parse swift-protobuf's text format: {error}")
        else:
            if from_text != message:
                problems.append(f"{name}: the binary and the text format decode to different messages")
        with open(os.path.join(args.out, name + ".python.pb"), "wb") as f:
            f.write(message.SerializeToString())
        own_dump = "\n".join(dump(message)) + "\n"
        with open(os.path.join(args.out, name + ".python.dump"), "w", encoding="ascii") as f:
            f.write(own_dump)
        if args.c_dumps:
            c_dump_path = os.path.join(args.c_dumps, name + ".c.dump")
            if not os.path.exists(c_dump_path):
                problems.append(f"{name}.c.dump: missing")
                continue
            with open(c_dump_path, encoding="ascii") as f:
                c_dump = f.read()
            if c_dump != own_dump:
                diff = [f"  python: {a}\n  c:      {b}" for a, b in zip(own_dump.splitlines(), c_dump.splitlines()) if a != b][:5]
                problems.append(f"{name}: protobuf-c decodes differently from Python protobuf\n" + "\n".join(diff)
                                + ("" if diff else f"\n  ({len(own_dump.splitlines())} vs {len(c_dump.splitlines())} lines)"))
            with open(os.path.join(args.c_dumps, name + ".c.pb"), "rb") as f:
                from_c = Envelope()
                from_c.ParseFromString(f.read())
            # protobuf-c writes no float or double equal to zero, so -0.0 comes back as +0.0; the
            # optional strings' presence is lost (dump.py prints their value either way).
            if dump(from_c, signed_zero=False) != dump(message, signed_zero=False):
                problems.append(f"{name}.c.pb: protobuf-c's encoding decodes to another message in Python")
    if problems:
        print("conformance.py: FAILED\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print(f"conformance.py: ok: {len(names)} golden messages decode equal in Python protobuf (binary and text format)"
          + (", protobuf-c decodes them identically and its encodings decode equal" if args.c_dumps else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
