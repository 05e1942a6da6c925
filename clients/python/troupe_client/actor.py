"""The actor's conversation with a learner (docs/PROTOCOL.md §5, §9): Hello, weights, leases, groups
with behaviour log-probs, credit, heartbeats, after every Welcome resending unacknowledged groups and
dropping queued leases, Bye.
Single-threaded: sampling a group blocks the loop, which is fine while a group takes well under the
learner's heartbeat timeout (10 s by default)."""
import json
import os
import random
import sys
import time
from collections import OrderedDict, deque

import numpy as np
import zmq

from . import rewards, wire
from . import weights as weightlib
from .proto import Envelope, control_pb2
from .sampler import LENGTH, STOP, SamplingRequest
from .tokenizer import Tokenizer

LEARNER_SILENCE_S = 6.0
# A LeaseRequest, or a group sent, left unanswered this long while the learner speaks was lost with a
# dropped connection (docs/PROTOCOL.md §5.4): say Hello again on a fresh connection, as troupe actor does.
# An Ack may wait for reward workers up to the run's learner.lease_timeout_s: the ack timeout is at
# least that plus 10 s.
LEASE_ANSWER_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 60.0
MAX_FETCH_FAILURES = 5


def key_name(path):
    """A key's name as the learner reads it (PROTOCOL.md §8): its metadata `name`, else the file name up
    to its first '.' (`node-1.gpu.key_secret` is `node-1`)."""
    section = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                section = line.strip()
            elif section == "metadata":
                key, _, value = line.strip().partition("=")
                if key.strip() == "name":
                    return value.strip().strip('"')
    return os.path.basename(path).split(".", 1)[0]


class ActorError(Exception):
    """Fatal: the actor stops with status 1 and this text."""


class Curve:
    """Plaintext, or CURVE client keys from zcert files (troupe keygen)."""

    def __init__(self, key_path=None, learner_key_path=None):
        self.keys = None
        if key_path:
            import zmq.auth
            for path in (key_path, learner_key_path):
                if not os.path.exists(path):
                    raise ActorError(f"key file {path} does not exist")
            public, secret = zmq.auth.load_certificate(key_path)
            if secret is None:
                raise ActorError(f"{key_path} holds no secret key (give NAME.key_secret)")
            server, _ = zmq.auth.load_certificate(learner_key_path)
            self.keys = (public, secret, server)
            self.name = key_name(key_path)

    def apply(self, socket):
        if self.keys:
            socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = self.keys


def connect_to_learner(context, kind, curve, endpoint, options=()):
    """A socket to one of the learner's endpoints: no linger, CURVE keys when given, and a connect
    unanswered after 3 s or a handshake unfinished after 5 s dropped and tried again (a stalled
    connection on a lossy link otherwise holds for up to 30 s; docs/PROTOCOL.md §1)."""
    s = context.socket(kind)
    for option, value in ((zmq.LINGER, 0), (zmq.CONNECT_TIMEOUT, 3000), (zmq.HANDSHAKE_IVL, 5000), *options):
        s.setsockopt(option, value)
    curve.apply(s)
    s.connect(endpoint)
    return s


def log(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True), file=sys.stderr, flush=True)


class Actor:
    def __init__(self, options, sampler_factory):
        self.o = options
        self.sampler_factory = sampler_factory
        self.curve = Curve(options.key, options.learner_key)
        self.identity = options.identity or (self.curve.name if self.curve.keys else f"py-{os.uname().nodename}-{os.getpid()}")
        self.run_id = random.SystemRandom().randrange(1, 2**64)
        self.context = zmq.Context()
        self.control = None
        self.weights_socket = None
        self.announce = None
        self.sampler = None
        self.welcome = None
        self.epoch = None
        self.weights_version = None     # PolicyVersion the sampler holds
        self.newest_step = None         # newest published step we heard of
        self.credit = 0
        self.next_sequence = 1
        self.unacked = OrderedDict()    # sequence -> message parts, resent unchanged
        self.in_flight = set()          # sequences sent since the last Welcome
        self.sent_at = {}               # sequence -> when it was last sent
        self.lease_requested_at = 0.0
        self.ack_timeout = ACK_TIMEOUT_S
        self.prompts = deque()          # (lease_id, Prompt, min_version)
        self.lease_outstanding = False
        self.next_lease_at = 0.0
        self.last_heard = time.monotonic()
        self.next_heartbeat = 0.0
        self.accepted = 0
        self.submitted = 0
        self.tokens_sampled = 0
        self.sampling_seconds = 0.0
        self.started = time.monotonic()
        self.reconnect_done = False
        self.next_fetch_at = 0.0
        self.fetch_failures = 0
        self.held = deque()             # control messages received during a weights transfer

    # --- sockets -----------------------------------------------------------------------------------

    def open_control(self):
        self.held.clear()
        if self.control is not None:
            self.control.close(linger=0)
        self.control = connect_to_learner(self.context, zmq.DEALER, self.curve, self.o.learner,
                                          ((zmq.ROUTING_ID, f"{self.identity}#{self.run_id:x}".encode()),))

    def send(self, envelope, frames=()):
        self.control.send_multipart(wire.encode(envelope, frames))

    def hold_control_message(self):
        """During a weights transfer: keeps a control message for the loop; True (stop the transfer) for a
        Bye or a Reject, which change what the actor does next."""
        message = self.receive(0, held=False)
        if message is not None:
            self.held.append(message)
        return message is not None and message.WhichOneof("body") in ("bye", "reject")

    def receive(self, timeout_s, held=True):
        """The next control message within timeout_s, or None. Invalid messages are logged and skipped."""
        if held and self.held:
            return self.held.popleft()
        if not self.control.poll(int(max(0, timeout_s) * 1000)):
            return None
        parts = self.control.recv_multipart()
        self.last_heard = time.monotonic()
        try:
            envelope, _ = wire.decode(parts, max_frames=0)
        except wire.WireError as error:
            log("invalid_message", problem=str(error))
            return None
        return envelope

    # --- joining -----------------------------------------------------------------------------------

    def join_deadline(self):
        """When to give up joining, as troupe actor does: the first Welcome within --connect-timeout of the
        start; once welcomed, when no learner has said anything (a Reject included) for --learner-gone-timeout."""
        if self.welcome is None:
            return self.started + self.o.connect_timeout
        return self.last_heard + self.o.learner_gone_timeout

    def hello(self):
        """Says Hello until a Welcome arrives (returns it) or join_deadline passes (ActorError)."""
        refused = None  # the text of the last CONFIG_MISMATCH: an identity in use, or not this key's
        fresh = True
        while True:
            if not fresh:
                self.open_control()  # a fresh DEALER: the old one may hold messages for a dead peer
            fresh = False
            e = Envelope()
            h = e.hello
            h.actor_identity = self.identity
            h.actor_run_id = self.run_id
            h.protocol_major = self.o.hello_protocol_major
            h.protocol_minor = wire.PROTOCOL_MINOR
            h.build_id = "troupe reference Python actor (clients/python)"
            h.capabilities.append("entropies")
            h.thread_count = 1
            self.send(e)
            retry_at = time.monotonic() + 2.0
            while time.monotonic() < min(retry_at, self.join_deadline()):
                answer = self.receive(min(retry_at, self.join_deadline()) - time.monotonic())
                if answer is None:
                    continue
                kind = answer.WhichOneof("body")
                if kind == "welcome":
                    return answer.welcome
                if kind == "reject":
                    self.on_reject(answer.reject)
                    if answer.reject.reason == control_pb2.REJECT_REASON_CONFIG_MISMATCH:
                        # As troupe actor does: ask again 3 s after the refusal, on this connection (another
                        # live process holds the identity; once it has been silent for 3 s the learner lets us in).
                        refused = answer.reject.text
                        retry_at = time.monotonic() + 3.0
                        fresh = True
                        continue
                    break
                if kind == "bye" and answer.bye.reason == "run finished":
                    raise SystemExit(self.finish("the run is already finished", status=0))
            if time.monotonic() >= self.join_deadline():
                if refused is not None:
                    raise ActorError(f"the learner refused this actor's identity {self.identity!r} until it gave up: {refused}")
                raise ActorError(f"no learner answered at {self.o.learner} within {self.o.connect_timeout:g} s "
                                 + ("(is this key on the learner's allowlist, and --learner-key the learner's?)" if self.curve.keys
                                    else "(is a learner running there, and does it accept plaintext?)"))

    def on_reject(self, reject):
        """Logs a Reject; PROTOCOL_MAJOR is fatal. The callers act on the others as troupe actor does: on
        UNKNOWN_ACTOR the loop says Hello again, on CONFIG_MISMATCH hello asks again 3 s later, any other is
        only logged. A Reject names no group: one that refuses a GroupSubmit's framing leaves the group
        unacknowledged, its credit spent, until the next Welcome resends it."""
        name = control_pb2.RejectReason.Name(reject.reason) if reject.reason in control_pb2.RejectReason.values() else str(reject.reason)
        log("rejected", reason=name, text=reject.text)
        if reject.reason == control_pb2.REJECT_REASON_PROTOCOL_MAJOR:
            raise ActorError(f"the learner speaks another protocol: {reject.text}")

    def join(self):
        first = self.welcome is None
        welcome = self.hello()
        self.welcomed(welcome)
        if first:
            self.configure(welcome)
        self.flush()

    def welcomed(self, welcome):
        """What every Welcome means, as for troupe actor: the credit starts again at the Welcome's, every
        unacknowledged group goes out again, and the queued leases are dropped (the learner took them
        back at the Hello: a group sampled from one would be refused as UNKNOWN_LEASE)."""
        self.welcome = welcome
        self.epoch = welcome.learner_epoch
        self.newest_step = welcome.current_version.step
        self.credit = welcome.credit
        self.in_flight.clear()
        self.sent_at.clear()
        self.lease_outstanding = False
        dropped = len(self.prompts)
        self.prompts.clear()
        log("welcomed", run_id=welcome.run_id, epoch=welcome.learner_epoch, step=welcome.current_version.step,
            credit=welcome.credit, unacked=len(self.unacked), prompts_dropped=dropped)
        if self.unacked:
            log("resending", sequences=list(self.unacked))

    def configure(self, welcome):
        try:
            config = json.loads(welcome.config_json)
        except ValueError as error:
            raise ActorError(f"the Welcome's config_json is not JSON: {error}") from error
        if not isinstance(config, dict) or not isinstance(config.get("algorithm"), dict):
            raise ActorError("the Welcome's config_json has no \"algorithm\" object (the resolved algorithm options, "
                             "which a learner built before they were added does not send): this actor cannot know the reward")
        algorithm = config["algorithm"]
        lease_timeout = (config.get("config") or {}).get("learner", {}).get("lease_timeout_s", 60)
        self.ack_timeout = max(ACK_TIMEOUT_S, float(lease_timeout) + 10)
        try:
            files = config["model_files"]
            model_config = json.loads(files["config.json"])
        except (ValueError, KeyError, TypeError) as error:
            raise ActorError(f"the Welcome's config_json has no usable model_files[\"config.json\"]: {error!r}") from error
        try:
            self.rewards = rewards.RewardDefinition(algorithm)
        except rewards.UnsupportedReward as error:
            raise ActorError(str(error)) from error
        self.tokenizer = Tokenizer(files, model_config)
        self.sampler = self.sampler_factory(model_config, self.tokenizer)
        self.weights_socket = connect_to_learner(self.context, zmq.DEALER, self.curve, welcome.weights_endpoint)
        self.announce = connect_to_learner(self.context, zmq.SUB, self.curve, welcome.announce_endpoint, ((zmq.SUBSCRIBE, b""),))

    # --- weights -----------------------------------------------------------------------------------

    def refresh_weights(self):
        """Fetches the newest version when the sampler's is older. A failed transfer is logged and tried
        again a second later on a fresh socket (the learner may be finishing: its Bye is on the control
        socket); MAX_FETCH_FAILURES in a row are fatal."""
        if self.weights_version is not None and self.weights_version.epoch == self.epoch and self.weights_version.step >= self.newest_step:
            return
        if time.monotonic() < self.next_fetch_at or self.held:
            return
        started = time.monotonic()
        try:
            manifest, tensors = weightlib.fetch(self.weights_socket, interrupt=(self.control, self.hold_control_message))
        except weightlib.Interrupted:
            self.weights_socket.close(linger=0)  # it may still receive the abandoned transfer's answers
            self.weights_socket = connect_to_learner(self.context, zmq.DEALER, self.curve, self.welcome.weights_endpoint)
            return
        except weightlib.WeightsError as error:
            self.fetch_failures += 1
            log("weights_fetch_failed", problem=str(error), failures=self.fetch_failures)
            if self.fetch_failures >= MAX_FETCH_FAILURES:
                raise ActorError(f"weights: {error} ({self.fetch_failures} transfers failed in a row)") from error
            self.weights_socket.close(linger=0)
            self.weights_socket = connect_to_learner(self.context, zmq.DEALER, self.curve, self.welcome.weights_endpoint)
            self.next_fetch_at = time.monotonic() + 1.0
            return
        self.fetch_failures = 0
        if manifest.version.epoch != self.epoch:
            self.join()  # the learner restarted
            return
        self.sampler.load_weights(manifest.version, tensors)
        self.weights_version = manifest.version
        self.newest_step = max(self.newest_step, manifest.version.step)
        log("weights_applied", step=manifest.version.step, tensors_verified=len(tensors), bytes=manifest.total_bytes,
            manifest_hash=manifest.manifest_hash.hex(), via="chunks", ms=round((time.monotonic() - started) * 1000, 1))

    def note_version(self, version):
        if version.epoch and self.epoch and version.epoch != self.epoch:
            log("learner_restarted", epoch=version.epoch)
            self.join()
        elif version.epoch == self.epoch:
            self.newest_step = max(self.newest_step, version.step)

    # --- groups ------------------------------------------------------------------------------------

    def flush(self):
        """Sends unacknowledged groups not yet sent since the last Welcome, oldest first, within credit."""
        for sequence, parts in self.unacked.items():
            if self.credit <= 0:
                break
            if sequence not in self.in_flight:
                self.control.send_multipart(parts)
                self.in_flight.add(sequence)
                self.sent_at[sequence] = time.monotonic()
                self.credit -= 1

    def sample_group(self, lease_id, prompt):
        s = prompt.sampling
        for shape in ("serial", "tree"):
            if s.HasField(shape):
                e = Envelope()
                e.bye.reason = f"cannot sample {shape} groups"
                self.send(e)
                raise ActorError(f"the run samples {shape} groups (the lease's SamplingParams.{shape}; the learner's sampling.shape); "
                                 "this actor samples independent and multi-temperature groups only: run `troupe actor` for this run")
        temperatures = list(s.temperatures) or [s.temperature]
        sample_temperatures = [temperatures[i % len(temperatures)] for i in range(prompt.group_size)]
        request = SamplingRequest(list(prompt.token_ids), prompt.group_size, s.temperature, s.top_k, s.top_p, s.max_tokens,
                                  list(s.stop_sequences), s.seed, sample_temperatures)
        rng = np.random.default_rng([s.seed, prompt.prompt_id, self.weights_version.step, self.next_sequence])
        started = time.monotonic()
        completions = self.sampler.sample(request, self.rewards.needs_entropies, rng)
        elapsed = time.monotonic() - started
        self.sampling_seconds += elapsed
        texts = [self.tokenizer.completion_text(c.tokens, request.stop_sequences) for c in completions]
        truth = prompt.reference_answer if prompt.HasField("reference_answer") else None
        scored = self.rewards.score(texts, truth, [c.external_reward for c in completions])
        sequence = self.next_sequence
        self.next_sequence += 1
        if self.o.malformed_group == sequence:
            # Deliberately wrong (--malformed-group): the first sample claims LENGTH with fewer tokens than the limit.
            c = completions[0]
            c.tokens, c.logprobs, c.finish_reason = c.tokens[:1], c.logprobs[:1], LENGTH
            if c.entropies is not None:
                c.entropies = c.entropies[:1]
            log("sending_malformed_group", sequence=sequence)
        e = Envelope()
        g = e.group_submit
        g.lease_id, g.prompt_id, g.sequence = lease_id, prompt.prompt_id, sequence
        g.version.CopyFrom(self.weights_version)
        g.actor_run_id = self.run_id
        g.generation_ms = int(elapsed * 1000)
        drawn = sum(len(c.tokens) for c in completions)
        g.tokens_generated = drawn  # independent samples share no prefix
        want_entropies = self.rewards.needs_entropies
        g.with_entropies = want_entropies
        for c, (answer, reward, components), temperature in zip(completions, scored, sample_temperatures):
            info = g.samples.add()
            info.token_count = len(c.tokens)
            info.finish_reason = STOP if c.finish_reason == STOP else LENGTH
            info.temperature = temperature
            if answer is not None:
                info.extracted_answer = answer
            info.reward = reward
            for k, v in components.items():
                info.reward_components[k] = v
        frames = [np.array([t for c in completions for t in c.tokens], dtype="<i4").tobytes(),
                  np.array([p for c in completions for p in c.logprobs], dtype="<f4").tobytes()]
        if want_entropies:
            frames.append(np.array([h for c in completions for h in c.entropies], dtype="<f4").tobytes())
        self.tokens_sampled += drawn
        self.unacked[sequence] = wire.encode(e, frames)
        self.submitted += 1
        self.flush()

    def on_ack(self, ack):
        if self.o.reconnect_after_group == ack.sequence and not self.reconnect_done:
            # Deliberately lose this Ack and the connection (--reconnect-after-group): the learner has
            # the group, the actor does not know it, and the next Welcome makes it resend the group,
            # which the learner acknowledges again as a duplicate. (Dropping the connection before the
            # group is known to have arrived would race the new Hello, which takes the leases back.)
            self.reconnect_done = True
            log("dropping_connection", after_sequence=ack.sequence, ack_discarded=True)
            self.open_control()
            self.join()
            return
        self.note_version(ack.current_version)
        if ack.sequence not in self.unacked:
            return  # a second Ack of the same group grants nothing
        del self.unacked[ack.sequence]
        self.in_flight.discard(ack.sequence)
        self.sent_at.pop(ack.sequence, None)
        self.credit += ack.credit_granted
        status = control_pb2.AckStatus.Name(ack.status) if ack.status in control_pb2.AckStatus.values() else str(ack.status)
        if ack.status == control_pb2.ACK_STATUS_REJECTED:
            reason = control_pb2.GroupRejectReason.Name(ack.reject_reason) if ack.reject_reason in control_pb2.GroupRejectReason.values() else str(ack.reject_reason)
            log("group_rejected", sequence=ack.sequence, reason=reason, text=ack.text)
        else:
            if ack.status == control_pb2.ACK_STATUS_ACCEPTED:
                self.accepted += 1
            log("group_acked", sequence=ack.sequence, status=status)

    # --- the loop ----------------------------------------------------------------------------------

    def heartbeat(self):
        e = Envelope()
        st = e.heartbeat.stats
        st.groups_produced = self.next_sequence - 1
        st.tokens_per_second = self.tokens_sampled / self.sampling_seconds if self.sampling_seconds > 0 else 0.0
        wall = time.monotonic() - self.started
        st.idle_ratio = max(0.0, 1 - self.sampling_seconds / wall) if wall > 0 else 1.0
        st.unacked_groups = len(self.unacked)
        if self.weights_version is not None:
            st.weights_version.CopyFrom(self.weights_version)
        self.send(e)

    def finish(self, reason, status=0):
        log("stopping", reason=reason, accepted=self.accepted, submitted=self.submitted, unacked=len(self.unacked))
        return status

    def unanswered(self, now):
        """(what, seconds) of a request the learner has left unanswered too long, or None."""
        if self.lease_outstanding and now - self.lease_requested_at > LEASE_ANSWER_TIMEOUT_S:
            return "lease_request", now - self.lease_requested_at
        if self.sent_at and now - min(self.sent_at.values()) > self.ack_timeout:
            return "group", now - min(self.sent_at.values())
        return None

    def run(self):
        self.open_control()
        self.join()
        while True:
            now = time.monotonic()
            if now >= self.next_heartbeat:
                self.heartbeat()
                # The learner speaks only in answer: at most a third of the silence rule between heartbeats.
                self.next_heartbeat = now + min(self.welcome.heartbeat_interval_ms / 1000, LEARNER_SILENCE_S / 3)
            if now - self.last_heard > LEARNER_SILENCE_S and not self.control.poll(0):
                log("learner_silent", seconds=round(now - self.last_heard, 1))
                self.open_control()
                self.join()
                continue
            unanswered = self.unanswered(now)
            if unanswered:
                log("unanswered", what=unanswered[0], seconds=round(unanswered[1], 1))
                self.open_control()
                self.join()
                continue
            while self.announce.poll(0):
                try:
                    announce, _ = wire.decode(self.announce.recv_multipart(), max_frames=0)
                    self.note_version(announce.weight_announce.version)
                except wire.WireError as error:
                    log("invalid_announcement", problem=str(error))
            if self.o.max_groups and self.accepted >= self.o.max_groups and not self.unacked:
                e = Envelope()
                e.bye.reason = "done"
                self.send(e)
                return self.finish(f"{self.accepted} groups accepted (--max-groups)")
            # Sample the next prompt when its weights are at hand and credit allows.
            if self.prompts:
                self.refresh_weights()  # only when there is something to sample: a finishing learner stops serving weights
            if self.prompts and len(self.unacked) < self.welcome.credit and self.weights_version is not None \
                    and self.weights_version.epoch == self.epoch:
                lease_id, prompt, min_version = self.prompts[0]
                if min_version.epoch and min_version.epoch != self.epoch:
                    self.prompts.popleft()
                    continue
                if self.weights_version.step >= min_version.step:
                    self.prompts.popleft()
                    self.sample_group(lease_id, prompt)
                    continue
            if not self.prompts and not self.lease_outstanding and now >= self.next_lease_at \
                    and len(self.unacked) < self.welcome.credit + 2:
                e = Envelope()
                e.lease_request.max_prompts = max(1, self.welcome.lease_size)
                self.send(e)
                self.lease_outstanding = True
                self.lease_requested_at = now
            wait = min(self.next_heartbeat - time.monotonic(), 0.05 if self.prompts or not self.lease_outstanding else 0.2)
            message = self.receive(wait)
            if message is None:
                continue
            kind = message.WhichOneof("body")
            if kind == "ack":
                self.on_ack(message.ack)
                self.flush()
            elif kind == "lease":
                self.lease_outstanding = False
                lease = message.lease
                if lease.lease_id == 0 or not lease.prompts:
                    self.next_lease_at = time.monotonic() + 0.05
                else:
                    # min_version may name the step in training, not published yet: only its epoch tells anything now.
                    if lease.min_version.epoch and lease.min_version.epoch != self.epoch:
                        log("learner_restarted", epoch=lease.min_version.epoch)
                        self.join()
                        continue
                    for p in lease.prompts:
                        self.prompts.append((lease.lease_id, p, lease.min_version))
            elif kind == "heartbeat":
                self.note_version(message.heartbeat.current_version)
            elif kind == "reject":
                self.on_reject(message.reject)
                if message.reject.reason == control_pb2.REJECT_REASON_UNKNOWN_ACTOR:
                    self.join()
            elif kind == "bye":
                if message.bye.reason == "run finished":
                    return self.finish("the learner says the run is finished")
                log("learner_stopping", reason=message.bye.reason)
                self.open_control()
                self.join()
            elif kind == "welcome":
                # A late answer to an earlier Hello: the learner handled that Hello (taking back any lease
                # granted before it), so this Welcome counts like any other.
                self.welcomed(message.welcome)
                self.flush()
            else:
                log("unexpected_message", kind=kind)
