// TroupeWire: the ZeroMQ transport and the Troupe wire protocol (docs/ARCHITECTURE.md §2–3).
//
// ─── Threading ──────────────────────────────────────────────────────────────────────────────────
// `ZMQContext` is the only object to share between threads (one per process). A `ZMQSocket`, and
// the `Poller`, `ZMQProxy` and `SocketMonitor` built on sockets, belong to the thread that created
// them (not Sendable). Create each socket where it is used. Frames, messages, errors, endpoints
// and limits are Sendable values.
//
// ─── Waiting and failure ────────────────────────────────────────────────────────────────────────
// Every receive and poll takes a `Deadline` (`.now`, `.afterMilliseconds(n)`, `.after(duration)`);
// there is no wait-forever. Expected outcomes are values, real failures throw:
//   send(...)               -> SendResult    .sent | .wouldBlock (queue full until the deadline)
//                                            | .peerUnreachable (ROUTER peer gone)
//   receive(...)            -> ReceiveResult .message([Frame]) | .timedOut | .overLimit(...)
//   receiveMessage(...)     -> WireReceive   .message(WireMessage) | .timedOut | .rejected(WireError)
//   receiveFromPeer(...)    -> RouterReceive .message(from: PeerID, WireMessage) | .timedOut
//                                            | .rejected(from: PeerID?, WireError)
//   ZMQError                 libzmq failures (bad endpoint, closed socket, ETERM after
//                            `context.shutdown()`: `error.isContextTerminated` means "stop").
//   WireError                a refused message; `reason` (snake_case rawValue) is the label to
//                            count rejects by, `detail` names the field/frame,
//                            `groupRejectReason` maps it to an Ack.
// Every socket needs an explicit `Linger` (`.discardUnsent` or `.upTo(milliseconds:)`), so
// closing never hangs and never drops by accident.
//
// ─── API map ────────────────────────────────────────────────────────────────────────────────────
//   ZMQContext(ioThreads:)                  shutdown()
//   ZMQSocket(context, type:, linger:)      set(_: SocketOption | [SocketOption]),
//                                           bind(_:) -> Endpoint (port 0 resolved), unbind, connect,
//                                           disconnect, lastEndpoint(), wait(for:until:),
//                                           send(_ frames: [Frame], deadline:), receive(deadline:maxFrames:maxBytes:),
//                                           send(_ message: WireMessage, deadline:),
//                                           send(_ message:, to: PeerID, deadline:)           (ROUTER),
//                                           receiveMessage(deadline:limits:), receiveFromPeer(deadline:limits:),
//                                           close()
//   SocketType                              .dealer .router .publish .subscribe .xpublish .xsubscribe .pair .push .pull
//   SocketOption                            linger, HWMs, maxMessageSize, heartbeat, routerMandatory,
//                                           routerHandover, immediate, reconnectInterval, routingID,
//                                           subscribe, tcpKeepalive, handshakeInterval, connectTimeout,
//                                           zapDomain, curveServer, curveClient, ...
//   ZMQSocket.lastUserID / lastUserKey      the ZAP user id and proven key of the last message;
//   ZMQSocket.admitsUser                    refuse users (with their keys) not admitted
//   SocketProfile                           recommended option lists per role: learnerRouter(limits:),
//                                           actorDealer(limits:routingID:), announcePublisher(),
//                                           subscriber(limits:), logPublisher(), highWaterMark(budgetBytes:...)
//   Poller()                                register(socket|fileDescriptor:, for:), poll(until:) -> PollResult
//                                           (contains(socket), events(for:))
//   ZMQProxy                                startPubSubForwarder(context:publishersBind:subscribersBind:),
//                                           frontendEndpoint, backendEndpoint, dropSubscribers(), stop()
//   ServerPublisher(context:side:)          a bound PUB: send(_:deadline:), dropSubscribers(), close()
//   SocketMonitor(watching:kinds:)          next(deadline:), waitFor(_:deadline:)
//   CurveKey, CurveKeyPair, CurveRole       Z85 keys, generate(), .server(pair, domain:) / .client(serverKey:own:).options
//   CurveKeyFile                            create / read / readSecret / allowlist(directory:) (zcert files)
//   ZAPHandler(context:policy:)             the RFC 27 handler of a context (bind before any CURVE server);
//                                           isServing, probe(), update(_:), stop(); CurveAllowlist, Policy
//   Endpoint                                .tcp(host:port:source:) .ipc(path:) .inproc(name:),
//                                           Endpoint(parsing:) throws EndpointError, validateForConnect()
//   ListenAddress(bind:advertise:)          advertised(boundTo:) — bind vs advertised address
//   Frame / SharedBuffer                    Frame([UInt8]); Frame(sharing: SharedBuffer, range:) is zero-copy
//   WireMessage(body, frames:)              encode() -> [Frame], WireMessage.decode(frames, limits:), kind
//   WireLimits                              .control .weights .headerOnly .permissive; socketMaxFrameBytes
//   GroupSubmission                         header + tokenIDs + logProbs (+ entropies);
//                                           wireMessage(), init(validating: WireMessage)
//   RawFrame                                int32/float32 little-endian frames, decode with length and finiteness checks
//   Troupe_V1_WeightManifest                computeManifestHash(), seal(), validate(), chunkRanges()
//   Troupe_V1_TensorInfo                    contentHash(_:), matches(_:)
//   Troupe_V1_PolicyVersion(epoch:step:)    label
//   XXH64, Blake2b                          the message checksum; content hashes
//   WireProtocol.major / .minor             the protocol this build speaks
//
// ─── A learner's control loop, in outline ───────────────────────────────────────────────────────
//   let context = try ZMQContext()
//   let control = try ZMQSocket(context, type: .router, linger: .discardUnsent)
//   try control.set(SocketProfile.learnerRouter(limits: .control))
//   let bound = try control.bind(config.control.bind)                 // ListenAddress from the config
//   let advertised = try config.control.advertised(boundTo: bound)     // what Welcome/logs tell peers
//   let poller = Poller(); poller.register(control); poller.register(weights)
//   while running {
//       let ready = try poller.poll(until: .afterMilliseconds(50))
//       guard ready.contains(control) else { continue }
//       drain: while true {                                            // take what is queued, then go on
//           switch try control.receiveFromPeer(deadline: .now, limits: .control) {
//           case .timedOut: break drain
//           case .rejected(let peer, let error): count(error.reason, peer)
//           case .message(let peer, let message):
//               if case .groupSubmit(let header) = message.body {
//                   do { let group = try GroupSubmission(validating: message); accept(group, from: peer) }
//                   catch { ack(header.sequence, rejected: error.groupRejectReason, to: peer) }
//               }
//               // a reply: try control.send(WireMessage(.ack(ack)), to: peer) — .peerUnreachable = actor gone
//           }
//       }
//   }
//
// An actor does the mirror image with `SocketProfile.actorDealer(limits:)`, `connect`,
// `send(WireMessage(.hello(hello)), deadline:)` and `receiveMessage(deadline:limits:)`.
// Weight chunks: the learner keeps each version's blob in one `SharedBuffer` and replies with
// `WireMessage(.chunk(header), frames: [Frame(sharing: blob, range: offset..<end)])`: no copies.
//
// ─── Pitfalls this module already handles, and the ones it cannot ───────────────────────────────
// - Multipart messages arrive whole or not at all; `receive` still caps frames/bytes before
//   keeping them, and `WireMessage.decode` re-checks counts, lengths and the checksum because
//   protobuf accepts truncated input and NaN.
// - ZeroMQ loses in-flight messages when a connection drops (at-most-once): correctness needs
//   application sequence numbers, acks and resends (GroupSubmit.sequence, Ack).
// - PUB/SUB drops for slow or late subscribers (slow joiner): repeat announcements; number log events.
// - `.maxMessageSize` is per frame; a larger frame closes the connection silently at the sender.
// - zmq_close is asynchronous: re-binding the same tcp port right after closing can fail with
//   EADDRINUSE; tests bind port 0.
// - ROUTER without `.routerMandatory(true)` drops messages to unknown peers silently.

/// The protocol version this build speaks (Envelope fields 1 and 2; docs/PROTOCOL.md §3). The
/// package name `troupe.v1` is not this version. Major: incompatible changes, refused in every
/// message and in Hello. Minor: added fields, which older peers ignore (`WireMessage.hasUnknownFields`
/// tells), or message kinds, which they refuse as `WireError.Reason.unknownKind`.
public enum WireProtocol {
    /// 2: tensor hashes in weight manifests are XXH64 (8 bytes) instead of BLAKE2b-256.
    public static let major: UInt32 = 2
    /// 1: WeightSourceRequest / WeightSource (actors relay chunks to one another).
    /// 2: WeightSource.upstream_public_key (the relay's CURVE key, pinned by the actor below it).
    /// 3: GROUP_REJECT_REASON_REWARD_UNAVAILABLE (reward workers) and the Welcome's config_json.algorithm.
    /// 4: the group shapes (SamplingParams.temperatures, serial, tree; SampleInfo.inserted_*) and GroupSubmit.tokens_generated.
    /// 5: RelayPeers (the learner tells actors whom their relays admit after the allowlist changed).
    public static let minor: UInt32 = 5
}
