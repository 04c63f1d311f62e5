import Foundation

/// The rules of the processing state machine. Every ``EmbeddingJobs`` backend applies them, each
/// in one transaction with the write that follows, so the rules are the same on every backend.
extension ImageRecord {
    /// How long a stored processing error may be, in characters.
    public static let maximumEmbeddingErrorLength = 2000

    /// What starting a processing attempt for `model` decides: nothing to do when the image is
    /// already embedded with `model` or has used up its attempts (`failed`, or `maxAttempts`
    /// counted, so a replayed event never counts past the limit); otherwise `processing`, with
    /// one more attempt.
    /// - Parameters:
    ///   - model: The current embedder's model id.
    ///   - maxAttempts: `PROCESSING_MAX_ATTEMPTS`.
    ///   - date: Now.
    /// - Returns: The decision, with the image as it is after it.
    public func startingProcessing(model: String, maxAttempts: Int, at date: Date) -> ProcessingStart {
        if embeddingStatus == .success && embeddingModel == model { return .alreadyDone(self) }
        if embeddingStatus == .failed || embeddingAttempts >= maxAttempts { return .exhausted(self) }
        var started = self
        started.embeddingStatus = .processing
        started.embeddingAttempts += 1
        started.updatedAt = date
        return .started(started)
    }

    /// The status after a failed attempt: `pending` while attempts remain (a redelivery starts
    /// the next), `failed` after the last.
    /// - Parameter final: Whether it was the last attempt.
    /// - Returns: The status to store.
    public static func statusAfterFailure(final: Bool) -> EmbeddingStatus { final ? .failed : .pending }

    /// A processing error as stored: its first ``maximumEmbeddingErrorLength`` characters.
    /// - Parameter error: The error's text.
    /// - Returns: The text to store.
    public static func storedEmbeddingError(_ error: String) -> String {
        String(error.prefix(maximumEmbeddingErrorLength))
    }

    /// Records a successful embedding with `model`: `success`, no error.
    /// - Parameters:
    ///   - model: The model the vector was made with.
    ///   - dimensions: The vector's length.
    ///   - date: Now.
    public mutating func markEmbedded(model: String, dimensions: Int, perceptualHash: PerceptualHash?, at date: Date) {
        embeddingStatus = .success
        self.phash = perceptualHash
        embeddingError = nil
        embeddingModel = model
        embeddingDimensions = dimensions
        embeddedAt = date
        updatedAt = date
    }

    /// Records a failed attempt: ``statusAfterFailure(final:)``, the error as
    /// ``storedEmbeddingError(_:)`` keeps it.
    /// - Parameters:
    ///   - error: The error's text.
    ///   - final: Whether it was the last attempt.
    ///   - date: Now.
    public mutating func markFailed(error: String, final: Bool, at date: Date) {
        embeddingStatus = Self.statusAfterFailure(final: final)
        embeddingError = Self.storedEmbeddingError(error)
        updatedAt = date
    }

    /// Postpones processing because a dependency is down: `pending` again, the attempt just
    /// started given back (the image is not at fault), and `embedding_error` saying what it
    /// waits for.
    /// - Parameters:
    ///   - waitingFor: What was unavailable.
    ///   - date: Now.
    public mutating func markPostponed(waitingFor: String, at date: Date) {
        embeddingStatus = .pending
        embeddingAttempts = max(0, embeddingAttempts - 1)
        embeddingError = Self.storedEmbeddingError("Waiting for a dependency that is unavailable: \(waitingFor)")
        updatedAt = date
    }

    /// Queues the image again: `pending`, no attempt counted, no error.
    /// - Parameter date: Now.
    public mutating func markQueued(at date: Date) {
        embeddingStatus = .pending
        embeddingError = nil
        embeddingAttempts = 0
        updatedAt = date
    }

    /// Whether re-embedding for `model` queues an image in this state: images at rest (embedded
    /// or failed) that are failed or not embedded with `model`, or every image at rest with
    /// `includeCurrent`. Images pending or processing are left as they are.
    /// - Parameters:
    ///   - status: The image's status.
    ///   - embeddedWith: The model its vector was made with, if any.
    ///   - model: The current embedder's model id.
    ///   - includeCurrent: Whether images embedded with `model` are queued too.
    /// - Returns: Whether to queue it.
    public static func needsReembedding(
        status: EmbeddingStatus, embeddedWith: String?, model: String, includeCurrent: Bool
    ) -> Bool {
        guard status == .success || status == .failed else { return false }
        return includeCurrent || status == .failed || embeddedWith != model
    }
}

extension EmbeddingSummary {
    /// Counts images in one state: `success` with `model` is current, with another model stale.
    /// - Parameters:
    ///   - count: How many images.
    ///   - status: Their status.
    ///   - embeddedWith: The model their vectors were made with, if any.
    public mutating func add(_ count: Int, status: EmbeddingStatus, embeddedWith: String?) {
        total += count
        switch status {
        case .success where embeddedWith == model: current += count
        case .success: stale += count
        case .pending: pending += count
        case .processing: processing += count
        case .failed: failed += count
        }
    }
}
