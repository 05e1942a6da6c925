#!/usr/bin/env python3
"""The reference Python actor of Troupe (clients/python/README.md).

    python troupe_actor.py --learner tcp://HOST:5555 --insecure-plaintext [--identity NAME]
    python troupe_actor.py --learner tcp://HOST:5555 --key NAME.key_secret --learner-key learner.key

Joins the learner, fetches and verifies its weights, samples leased prompts with the learner's own
model (numpy), submits groups with behaviour log-probs until the learner says the run is finished
(exit 0). Fatal problems (no learner, a refusal, unusable configuration or weights) print one line
naming the problem and exit 1. Progress is JSON lines on stderr."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from troupe_client.actor import Actor, ActorError  # noqa: E402
from troupe_client.sampler import NumpySampler  # noqa: E402
from troupe_client import wire  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="Troupe's reference Python actor")
    parser.add_argument("--learner", required=True, help="the learner's control endpoint, tcp://HOST:PORT")
    parser.add_argument("--identity", help="actor name (default: the key's name, else py-HOST-PID)")
    parser.add_argument("--insecure-plaintext", action="store_true", help="no CURVE (the learner must run with it too)")
    parser.add_argument("--key", help="this actor's NAME.key_secret (troupe keygen NAME --role actor)")
    parser.add_argument("--learner-key", help="the learner's public key file")
    parser.add_argument("--connect-timeout", type=float, default=60, help="seconds to wait for the first Welcome")
    parser.add_argument("--learner-gone-timeout", type=float, default=300, help="seconds without a learner before giving up")
    parser.add_argument("--max-groups", type=int, default=0, help="leave (Bye) after this many accepted groups; 0: until the run ends")
    parser.add_argument("--malformed-group", type=int, default=0, metavar="SEQUENCE",
                        help="testing: send group SEQUENCE malformed (a LENGTH finish its tokens contradict)")
    parser.add_argument("--reconnect-after-group", type=int, default=0, metavar="SEQUENCE",
                        help="testing: drop the connection when group SEQUENCE's Ack arrives, unread, then rejoin and resend")
    parser.add_argument("--hello-protocol-major", type=int, default=wire.PROTOCOL_MAJOR, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.insecure_plaintext == bool(options.key) or bool(options.key) != bool(options.learner_key):
        parser.error("give either --insecure-plaintext or both --key and --learner-key")
    try:
        return Actor(options, NumpySampler).run()
    except ActorError as error:
        print(f"troupe_actor.py: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
