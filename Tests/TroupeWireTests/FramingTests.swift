import Testing
import TroupeProto
import TroupeWire

private func decode(_ frames: [Frame], limits: WireLimits = .permissive) throws -> WireMessage {
    try WireMessage.decode(frames, limits: limits)
}

/// Expects decoding to fail with `reason`.
private func expectRejected(_ frames: [Frame], _ reason: WireError.Reason, limits: WireLimits = .permissive,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let message = try WireMessage.decode(frames, limits: limits)
        Issue.record("decoded a \(message.kind) instead of rejecting it with \(reason)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
    }
}

@Test func everyMessageKindRoundTrips() throws {
    let samples = sampleMessages()
    #expect(Set(samples.map(\.kind)) == Set(MessageKind.allCases))
    for original in samples {
        let frames = try original.encode()
        #expect(frames.count == original.frames.count + 1)
        let decoded = try decode(frames)
        #expect(decoded.body == original.body, "\(original.kind)")
        #expect(decoded.frames == original.frames, "\(original.kind)")
        #expect(decoded.protocolMajor == WireProtocol.major && decoded.protocolMinor == WireProtocol.minor)
        #expect(!decoded.hasUnknownFields)
    }
}

@Test func groupSubmissionRoundTripsWithValidation() throws {
    for withEntropies in [false, true] {
        let group = sampleGroup(entropies: withEntropies)
        let decoded = try GroupSubmission(validating: decode(group.wireMessage().encode()))
        #expect(decoded.tokenIDs == group.tokenIDs)
        #expect(decoded.logProbs == group.logProbs)
        #expect(decoded.entropies == group.entropies)
        #expect(decoded.header.withEntropies == withEntropies)
        #expect(decoded.sampleRanges == [0..<2, 2..<2, 2..<5])
    }
}

@Test func truncatedHeaderIsRejectedAtEveryLength() throws {
    for original in sampleMessages() {
        let frames = try original.encode()
        let header = frames[0].bytes
        for length in 0..<header.count {
            var truncated = frames
            truncated[0] = Frame(Array(header[..<length]))
            #expect(throws: WireError.self, "\(original.kind) header cut to \(length) of \(header.count) bytes") {
                try decode(truncated)
            }
        }
    }
}

@Test func truncatedOrMissingRawFramesAreRejected() throws {
    let frames = try sampleGroup(entropies: true).wireMessage().encode()
    var shortFrame = frames
    shortFrame[1] = Frame(Array(frames[1].bytes.dropLast()))
    expectRejected(shortFrame, .frameLengthMismatch)
    expectRejected(Array(frames.dropLast()), .frameCountMismatch)
    let twoFrames = try sampleGroup(entropies: false).wireMessage().encode()
    expectRejected(twoFrames + [Frame([1, 2, 3])], .frameCountMismatch)
    expectRejected([], .emptyMessage)
}

@Test func garbledBytesAreRejected() throws {
    let frames = try sampleGroup(entropies: false).wireMessage().encode()
    // A flipped bit in a raw frame: only the checksum can tell.
    var flipped = frames
    var tokens = frames[1].bytes
    tokens[3] ^= 0x10
    flipped[1] = Frame(tokens)
    expectRejected(flipped, .checksumMismatch)

    // Every single-bit flip of the header is caught (by protobuf, the counts or the checksum).
    let header = frames[0].bytes
    for index in header.indices {
        for bit in [0, 3, 7] {
            var garbled = frames
            var bytes = header
            bytes[index] ^= UInt8(1 << bit)
            garbled[0] = Frame(bytes)
            #expect(throws: WireError.self, "header byte \(index) bit \(bit)") { try decode(garbled) }
        }
    }

    // Random bytes as a header.
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<500 {
        let noise = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(throws: WireError.self) { try decode([Frame(noise)]) }
    }
}

@Test func wrongChecksumIsRejected() throws {
    var frames = try sampleMessages()[0].encode()
    var header = frames[0].bytes
    header[header.count - 1] ^= 0xFF
    frames[0] = Frame(header)
    expectRejected(frames, .checksumMismatch)

    // A header without the trailing checksum field (e.g. from a peer that forgot to seal).
    var envelope = Troupe_V1_Envelope()
    envelope.protocolMajor = WireProtocol.major
    envelope.hello = Troupe_V1_Hello()
    let unsealed = try sealed(envelope)[0].bytes.dropLast(10)
    expectRejected([Frame(Array(unsealed))], .checksumMissing)
}

@Test func wrongProtocolMajorIsRejectedEvenWhenIntact() throws {
    var message = sampleMessages()[0]
    message.protocolMajor = WireProtocol.major + 1
    expectRejected(try message.encode(), .unsupportedProtocol)
    message.protocolMajor = 0
    expectRejected(try message.encode(), .unsupportedProtocol)
}

@Test func newerMinorWithUnknownFieldsIsAcceptedAndFlagged() throws {
    var message = sampleMessages()[0]
    message.protocolMinor = WireProtocol.minor + 1
    let decoded = try decode(message.encode())
    #expect(decoded.protocolMinor == WireProtocol.minor + 1)
    #expect(!decoded.hasUnknownFields)

    // Field 99, varint 5: a field a newer minor added to the Envelope.
    var envelope = Troupe_V1_Envelope()
    envelope.protocolMajor = WireProtocol.major
    envelope.protocolMinor = WireProtocol.minor + 1
    envelope.bye = Troupe_V1_Bye()
    let withUnknown = try decode(sealed(envelope, extraHeaderBytes: [0x98, 0x06, 0x05]))
    #expect(withUnknown.hasUnknownFields)
    #expect(withUnknown.kind == .bye)
}

@Test func missingAndUnknownBodiesAreRejected() throws {
    var envelope = Troupe_V1_Envelope()
    envelope.protocolMajor = WireProtocol.major
    expectRejected(try sealed(envelope), .missingBody)
    // Field 50, length-delimited, empty: a message kind from a newer minor.
    expectRejected(try sealed(envelope, extraHeaderBytes: [0x92, 0x03, 0x00]), .unknownKind)
}

@Test func sizeAndFrameCountLimitsAreEnforced() throws {
    let limits = WireLimits(maxRawFrames: 3, maxHeaderBytes: 256, maxFrameBytes: 1024, maxMessageBytes: 2048)
    var bigPrompt = Troupe_V1_Prompt()
    bigPrompt.text = String(repeating: "x", count: 300)
    var lease = Troupe_V1_Lease()
    lease.prompts = [bigPrompt]
    expectRejected(try WireMessage(.lease(lease)).encode(), .headerTooLarge, limits: limits)

    var chunk = Troupe_V1_Chunk()
    chunk.status = .ok
    expectRejected(try WireMessage(.chunk(chunk), frames: [Frame([UInt8](repeating: 1, count: 1025))]).encode(),
                   .frameTooLarge, limits: limits)

    var group = sampleGroup(entropies: true)
    group.header.samples[0].tokenCount = 200
    group.tokenIDs = Array(repeating: 1, count: 203)
    group.logProbs = Array(repeating: -1, count: 203)
    group.entropies = Array(repeating: 1, count: 203)
    // 3 frames of 812 bytes: each under 1024, together over 2048.
    expectRejected(try group.wireMessage().encode(), .messageTooLarge, limits: limits)

    let tooMany = try WireMessage(.bye(Troupe_V1_Bye()), frames: Array(repeating: Frame([1]), count: 4)).encode()
    expectRejected(tooMany, .tooManyFrames, limits: limits)
    expectRejected(tooMany, .tooManyFrames, limits: .headerOnly)
}

@Test func rawFramesMustMatchTheMessageKind() throws {
    expectRejected(try WireMessage(.hello(Troupe_V1_Hello()), frames: [Frame([1, 2, 3, 4])]).encode(), .unexpectedFrameCount)
    var group = sampleGroup(entropies: false).wireMessage()
    group.frames.append(RawFrame.float32([0, 0, 0, 0, 0]))  // an entropy frame without with_entropies
    expectRejected(try group.encode(), .unexpectedFrameCount)
    var gone = Troupe_V1_Chunk()
    gone.status = .versionGone
    expectRejected(try WireMessage(.chunk(gone), frames: [Frame([1])]).encode(), .unexpectedFrameCount)
    #expect(try decode(WireMessage(.chunk(gone)).encode()).kind == .chunk)
}

@Test func groupSemanticsAreValidated() throws {
    func reason(_ group: GroupSubmission) throws -> WireError.Reason? {
        let message = try decode(group.wireMessage().encode())
        do {
            _ = try GroupSubmission(validating: message)
            return nil
        } catch {
            return error.reason
        }
    }
    var nanLogProb = sampleGroup(entropies: false)
    nanLogProb.logProbs[1] = .nan
    #expect(try reason(nanLogProb) == .nonFinite)

    var infEntropy = sampleGroup(entropies: true)
    infEntropy.entropies![4] = .infinity
    #expect(try reason(infEntropy) == .nonFinite)

    var nanReward = sampleGroup(entropies: false)
    nanReward.header.samples[2].reward = .nan
    #expect(try reason(nanReward) == .nonFinite)

    var infComponent = sampleGroup(entropies: false)
    infComponent.header.samples[0].rewardComponents["format"] = -.infinity
    #expect(try reason(infComponent) == .nonFinite)

    var countMismatch = sampleGroup(entropies: false)
    countMismatch.header.samples[0].tokenCount = 3
    #expect(try reason(countMismatch) == .rawFrameLength)

    var shortLogProbs = sampleGroup(entropies: false)
    shortLogProbs.logProbs.removeLast()
    #expect(try reason(shortLogProbs) == .rawFrameLength)

    var negativeToken = sampleGroup(entropies: false)
    negativeToken.tokenIDs[0] = -5
    #expect(try reason(negativeToken) == .invalidField)

    var empty = sampleGroup(entropies: false)
    empty.header.samples = []
    empty.tokenIDs = []
    empty.logProbs = []
    #expect(try reason(empty) == .invalidField)

    let error = WireError(.nonFinite, "x")
    #expect(error.groupRejectReason == .nonFinite)
    #expect(WireError(.rawFrameLength, "x").groupRejectReason == .malformed)
}

@Test func rawFrameHelpersAreLittleEndianAndValidateLength() throws {
    #expect(RawFrame.int32([1, -2]).bytes == [1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF])
    #expect(RawFrame.float32([1.0]).bytes == [0, 0, 0x80, 0x3F])
    #expect(try RawFrame.decodeInt32(Frame([1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF]), field: "t") == [1, -2])
    #expect(try RawFrame.decodeFloat32(RawFrame.float32([0.5, -3]), field: "l") == [0.5, -3])
    #expect(throws: WireError.self) { try RawFrame.decodeInt32(Frame([1, 2, 3]), field: "t") }
    #expect(throws: WireError.self) { try RawFrame.decodeInt32(RawFrame.int32([1, 2]), field: "t", expectedCount: 3) }
    #expect(try RawFrame.decodeFloat32(RawFrame.float32([.nan]), field: "l", requireFinite: false).first!.isNaN)
    do {
        _ = try RawFrame.decodeFloat32(RawFrame.float32([0, -.infinity]), field: "log-probs")
        Issue.record("accepted -inf")
    } catch {
        #expect(error.reason == .nonFinite)
        #expect(error.detail.contains("log-probs[1]"))
    }
}

@Test func randomCorruptionNeverDecodes() throws {
    // Flip one random byte anywhere in a group message, many times: never accepted.
    let frames = try sampleGroup(entropies: true).wireMessage().encode()
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<2000 {
        var corrupted = frames.map(\.bytes)
        let frameIndex = Int.random(in: 0..<corrupted.count, using: &generator)
        guard !corrupted[frameIndex].isEmpty else { continue }
        let byteIndex = Int.random(in: 0..<corrupted[frameIndex].count, using: &generator)
        corrupted[frameIndex][byteIndex] ^= UInt8.random(in: 1...255, using: &generator)
        #expect(throws: WireError.self) { try decode(corrupted.map { Frame($0) }) }
    }
}

/// The vectorized whole-array checks agree with a plain scan, for a bad element at every position
/// (the vector body's lanes and the scalar tail alike) and for every kind of bad value.
@Test func wholeArrayScansFindEveryBadElementWherever() {
    for count in 0..<40 {
        let good = (0..<count).map { Float(-($0 % 7)) - 0.5 }
        #expect(!ScanFor.nonFinite(good) && !ScanFor.outside(good, -50, 1e-3))
        let tokens = (0..<count).map { Int32($0 % 300) }
        #expect(!ScanFor.outside(tokens, below: 300))
        for at in 0..<count {
            for bad: Float in [.nan, .infinity, -.infinity] {
                var xs = good
                xs[at] = bad
                #expect(ScanFor.nonFinite(xs), "\(bad) at \(at) of \(count)")
            }
            for bad: Float in [-50.5, 0.5] {
                var xs = good
                xs[at] = bad
                #expect(ScanFor.outside(xs, -50, 1e-3) && !ScanFor.nonFinite(xs), "\(bad) at \(at) of \(count)")
            }
            for bad: Int32 in [-1, 300, .max, .min] {
                var ts = tokens
                ts[at] = bad
                #expect(ScanFor.outside(ts, below: 300), "\(bad) at \(at) of \(count)")
            }
        }
    }
}
