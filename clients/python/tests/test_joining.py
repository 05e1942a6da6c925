"""Joining as troupe actor does (docs/PROTOCOL.md §5.1, §5.6, §5.8), against a fake learner on an
in-process ROUTER: every Welcome drops the queued leases (the learner took them back at the Hello) and
resends what is unacknowledged; an identity in use (CONFIG_MISMATCH) is asked for again 3 s later, on
the same connection, until the deadline.
    .build/venv-interop/bin/python -m unittest discover -s clients/python/tests"""
import itertools
import os
import sys
import tempfile
import threading
import time
import unittest
from types import SimpleNamespace

import zmq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from troupe_client import wire  # noqa: E402
from troupe_client.actor import Actor, ActorError, key_name  # noqa: E402
from troupe_client.proto import Envelope, common_pb2, control_pb2  # noqa: E402

_endpoints = itertools.count()


def welcome_message(credit=4):
    e = Envelope()
    e.welcome.learner_epoch = 7
    e.welcome.current_version.epoch = 7
    e.welcome.credit = credit
    e.welcome.heartbeat_interval_ms = 2000
    e.welcome.lease_size = 2
    return e


def config_mismatch():
    e = Envelope()
    e.reject.reason = control_pb2.REJECT_REASON_CONFIG_MISMATCH
    e.reject.text = "actor identity py-test is in use by a live actor"
    return e


class FakeLearner:
    """A ROUTER in the actor's context that answers the n-th Hello with `answers[n]` (None: silence) on
    its own thread, recording (time, routing id) of each Hello."""

    def __init__(self, test, actor, answers):
        self.endpoint = f"inproc://fake-learner-{next(_endpoints)}"
        self.socket = actor.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(self.endpoint)
        self.answers = list(answers)
        self.hellos = []
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        test.addCleanup(self.stop)

    def serve(self):
        while not self.stopping:
            if not self.socket.poll(20):
                continue
            route, *parts = self.socket.recv_multipart()
            envelope, _ = wire.decode(parts)
            if envelope.WhichOneof("body") != "hello":
                continue
            self.hellos.append((time.monotonic(), route))
            answer = self.answers[len(self.hellos) - 1] if len(self.hellos) <= len(self.answers) else None
            if answer is not None:
                self.socket.send_multipart([route] + wire.encode(answer))

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.socket.close(linger=0)


def actor(test, connect_timeout=30.0, learner_gone_timeout=30.0):
    options = SimpleNamespace(key=None, learner_key=None, identity="py-test", malformed_group=0, reconnect_after_group=0,
                              hello_protocol_major=wire.PROTOCOL_MAJOR, connect_timeout=connect_timeout,
                              learner_gone_timeout=learner_gone_timeout, learner=None)
    a = Actor(options, sampler_factory=None)
    test.addCleanup(a.context.destroy, linger=0)
    return a


def start(test, a, answers):
    learner = FakeLearner(test, a, answers)
    a.o.learner = learner.endpoint
    learner.thread.start()
    a.open_control()
    test.addCleanup(lambda: a.control.close(linger=0))
    return learner


class WelcomeTests(unittest.TestCase):
    def test_every_welcome_drops_the_queued_leases_and_resends_the_unacknowledged_groups(self):
        a = actor(self)
        a.welcome = welcome_message().welcome  # joined before: this Hello is a rejoin
        version = common_pb2.PolicyVersion(epoch=7, step=0)
        a.prompts.extend([(3, control_pb2.Prompt(prompt_id=1), version), (3, control_pb2.Prompt(prompt_id=2), version)])
        a.lease_outstanding = True
        a.unacked[1] = wire.encode(Envelope(group_submit=control_pb2.GroupSubmit(sequence=1)), [b"", b""])
        a.in_flight.add(1)
        start(self, a, [welcome_message(credit=4)])
        a.join()
        self.assertEqual(len(a.prompts), 0, "leases queued before the Welcome were kept: the learner took them back")
        self.assertFalse(a.lease_outstanding)
        self.assertEqual(a.in_flight, {1}, "the unacknowledged group was not resent")
        self.assertEqual(a.credit, 3)

    def test_a_late_welcome_counts_like_any_other(self):
        a = actor(self)
        a.welcome = welcome_message().welcome
        a.prompts.append((3, control_pb2.Prompt(prompt_id=1), common_pb2.PolicyVersion(epoch=7)))
        a.welcomed(welcome_message(credit=5).welcome)
        self.assertEqual(len(a.prompts), 0)
        self.assertEqual(a.credit, 5)


class IdentityInUseTests(unittest.TestCase):
    def test_config_mismatch_is_asked_again_3_s_later_on_the_same_connection(self):
        a = actor(self)
        a.welcome = welcome_message().welcome
        learner = start(self, a, [config_mismatch(), welcome_message()])
        a.join()
        self.assertEqual(len(learner.hellos), 2)
        (first, route1), (second, route2) = learner.hellos
        self.assertGreaterEqual(second - first, 2.9, "asked again before 3 s")
        self.assertLess(second - first, 4.5)
        self.assertEqual(route1, route2)

    def test_an_identity_refused_until_the_connect_timeout_is_an_error_naming_the_refusal(self):
        a = actor(self, connect_timeout=1.0)
        start(self, a, [config_mismatch()] * 10)
        with self.assertRaises(ActorError) as raised:
            a.join()
        self.assertIn("in use by a live actor", str(raised.exception))


if __name__ == "__main__":
    unittest.main()


class UnansweredTests(unittest.TestCase):
    """A LeaseRequest or a group whose answer was lost with a dropped connection: the actor notices while
    the learner goes on speaking (10 s for a lease, 60 s for an ack), as troupe actor does."""

    def test_a_lease_request_or_a_group_left_unanswered_is_noticed(self):
        import troupe_client.actor as actor_module
        a = actor(self)
        a.welcomed(welcome_message(credit=4).welcome)
        self.assertIsNone(a.unanswered(100.0))
        a.lease_outstanding, a.lease_requested_at = True, 100.0
        self.assertIsNone(a.unanswered(100.0 + actor_module.LEASE_ANSWER_TIMEOUT_S))
        self.assertEqual(a.unanswered(111.0), ("lease_request", 11.0))
        a.welcomed(welcome_message(credit=4).welcome)
        self.assertIsNone(a.unanswered(111.0), "a Welcome answers everything")
        a.sent_at[1] = 200.0
        self.assertIsNone(a.unanswered(250.0))
        self.assertEqual(a.unanswered(261.0), ("group", 61.0))
        a.ack_timeout = 130.0  # a run whose leases last 120 s
        self.assertIsNone(a.unanswered(320.0))
        self.assertEqual(a.unanswered(331.0), ("group", 131.0))


class KeyNameTests(unittest.TestCase):
    """The name an actor sends as its identity is the one the learner gives its key (§8)."""

    def test_the_metadata_name_wins_and_else_the_file_name_up_to_its_first_dot(self):
        with tempfile.TemporaryDirectory() as folder:
            named = os.path.join(folder, "renamed.key_secret")
            with open(named, "w", encoding="utf-8") as f:
                f.write('#   ZeroMQ CURVE certificate\n\nmetadata\n    name = "node-7"\n    role = "actor"\ncurve\n'
                        '    public-key = "x"\n')
            self.assertEqual(key_name(named), "node-7")
            plain = os.path.join(folder, "node-1.gpu.key_secret")
            with open(plain, "w", encoding="utf-8") as f:
                f.write('metadata\ncurve\n    public-key = "x"\n    secret-key = "y"\n')
            self.assertEqual(key_name(plain), "node-1")
