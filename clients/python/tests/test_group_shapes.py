"""The actor's side of the group shapes (docs/PROTOCOL.md SamplingParams): a multi-temperature group's
sample i is drawn and reported at temperatures[i mod n]; a lease for serial or tree groups, which this
actor cannot sample, gets a Bye and a fatal error naming the shape.
    .build/venv-interop/bin/python -m unittest discover -s clients/python/tests"""
import os
import sys
import unittest
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from troupe_client import wire  # noqa: E402
from troupe_client.actor import Actor, ActorError  # noqa: E402
from troupe_client.proto import common_pb2, control_pb2  # noqa: E402
from troupe_client.sampler import STOP, Completion  # noqa: E402


class RecordingSampler:
    """Returns `group_size` three-token completions and keeps the requests it was given."""

    def __init__(self):
        self.requests = []

    def sample(self, request, want_entropies, rng):
        self.requests.append(request)
        return [Completion([5, 6 + i % 3, 0], [-0.5, -0.25, -0.125], STOP) for i in range(request.group_size)]


class RecordingSocket:
    def __init__(self):
        self.sent = []

    def send_multipart(self, parts):
        self.sent.append(wire.decode(parts))


def actor_with_fakes(test):
    options = SimpleNamespace(key=None, learner_key=None, identity="py-test", malformed_group=0, reconnect_after_group=0)
    actor = Actor(options, sampler_factory=None)
    test.addCleanup(actor.context.term)
    actor.sampler = RecordingSampler()
    actor.tokenizer = SimpleNamespace(completion_text=lambda tokens, stops: "12")
    actor.rewards = SimpleNamespace(needs_entropies=False, score=lambda texts, truth, external: [("12", 1.0, {}) for _ in texts])
    actor.control = RecordingSocket()
    actor.credit = 0  # keeps the group unsent in `unacked`, where the test reads it
    actor.weights_version = common_pb2.PolicyVersion(epoch=7, step=3)
    return actor


def prompt(group_size=6):
    p = control_pb2.Prompt(prompt_id=11, token_ids=[1, 2, 3], group_size=group_size)
    p.sampling.temperature = 1.0
    p.sampling.max_tokens = 8
    return p


class MultiTemperatureGroupTests(unittest.TestCase):
    def test_sample_i_is_drawn_and_reported_at_temperatures_i_mod_n(self):
        actor = actor_with_fakes(self)
        p = prompt()
        p.sampling.temperatures.extend([0.5, 1.5])
        actor.sample_group(lease_id=4, prompt=p)
        self.assertEqual(actor.sampler.requests[0].sample_temperatures, [0.5, 1.5] * 3)
        envelope, frames = wire.decode(actor.unacked[1])
        group = envelope.group_submit
        self.assertEqual([s.temperature for s in group.samples], [0.5, 1.5] * 3)
        self.assertEqual(group.tokens_generated, 18)

    def test_a_single_temperature_group_draws_every_sample_at_it(self):
        actor = actor_with_fakes(self)
        actor.sample_group(lease_id=4, prompt=prompt(group_size=4))
        envelope, _ = wire.decode(actor.unacked[1])
        self.assertEqual([s.temperature for s in envelope.group_submit.samples], [1.0] * 4)


class UnsupportedShapeTests(unittest.TestCase):
    def test_serial_and_tree_leases_get_a_bye_and_an_error_naming_the_shape(self):
        for shape in ("serial", "tree"):
            actor = actor_with_fakes(self)
            p = prompt(group_size=5)
            if shape == "serial":
                p.sampling.serial.exits = 4
            else:
                p.sampling.tree.forks, p.sampling.tree.branching = 2, 2
            with self.assertRaises(ActorError) as raised:
                actor.sample_group(lease_id=4, prompt=p)
            self.assertIn(f"{shape} groups", str(raised.exception))
            self.assertEqual([e.WhichOneof("body") for e, _ in actor.control.sent], ["bye"])
            self.assertEqual(actor.sampler.requests, [], "nothing was sampled")
            self.assertEqual(len(actor.unacked), 0)


if __name__ == "__main__":
    unittest.main()
