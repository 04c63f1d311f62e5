import Foundation

/// Creates the first administrator, from the command line or from `BOOTSTRAP_ADMIN_KEY`.
public struct AdministratorBootstrap: Sendable {
    /// Why bootstrapping refused.
    public struct Refusal: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
    }

    private let services: APIServices

    /// Creates the bootstrapper.
    /// - Parameter services: The store, keys and clock.
    public init(services: APIServices) {
        self.services = services
    }

    /// Gives an administrator a new key, creating the administrator (and their team) first when
    /// no user has that e-mail. Team, user and key are written in one transaction.
    /// - Parameters:
    ///   - email: The administrator's e-mail.
    ///   - name: The administrator's name, for a new user.
    ///   - teamName: The team of a new administrator.
    ///   - keyText: The key to register; a fresh random key when `nil`.
    /// - Returns: The administrator and the new key, with its text shown this once.
    /// - Throws: ``Refusal`` when the e-mail belongs to a user who is not an active admin.
    public func createAdministratorKey(
        email: String, name: String, teamName: String, keyText: APIKeyText? = nil
    ) async throws -> (user: User, key: APIKeyView) {
        let email = EmailAddress.normalised(email)
        if let user = try await services.store.user(email: email) {
            guard user.isAdmin, user.isActive else {
                throw Refusal(description: "user \(email) exists but is not an active administrator")
            }
            let (record, text) = services.keys.makeKey(for: user, name: "bootstrap", description: nil, text: keyText)
            return (user, APIKeyView(try await services.keys.register(record), plaintext: text.text))
        }
        let now = services.clock.now()
        let team = Team(
            id: TeamID(), name: teamName, description: "Created by administrator bootstrap", createdAt: now,
            updatedAt: now)
        let user = User(
            id: UserID(), email: email, name: name, teamID: team.id, isAdmin: true, isActive: true, createdAt: now,
            updatedAt: now)
        let (record, text) = services.keys.makeKey(for: user, name: "bootstrap", description: nil, text: keyText)
        try await services.store.withTransaction { transaction in
            try await transaction.insertTeam(team)
            try await UserService.insert(user, in: transaction)
            try await APIKeyService.insert(record, in: transaction)
        }
        return (user, APIKeyView(record, plaintext: text.text))
    }

    /// Registers the configured `BOOTSTRAP_ADMIN_KEY` on first start, once: the registration is
    /// recorded, so a bootstrap key (or its user) deleted later is never recreated by a restart.
    /// Safe to run from every function at once: the key id is unique, so one start wins.
    /// - Parameters:
    ///   - keyText: The configured key.
    ///   - email: `BOOTSTRAP_ADMIN_EMAIL`.
    /// - Returns: `true` when the key was registered now, `false` when it already was.
    /// - Throws: ``Refusal`` when a key (or an earlier bootstrap key) with that id has another secret.
    @discardableResult
    public func ensureKey(_ keyText: APIKeyText, email: String) async throws -> Bool {
        let hash = services.keys.hash(secret: keyText.secret)
        if let recorded = try await services.store.bootstrapKeyHash(id: keyText.keyID) {
            // During a rotation of API_KEY_SECRET the record may be a hash made with the previous one.
            guard services.keys.matches(keyText.secret, recorded) else {
                throw Refusal(
                    description: """
                        BOOTSTRAP_ADMIN_KEY has the id of an earlier bootstrap key but another secret, or that key \
                        was registered under an API_KEY_SECRET rotated since (then unset BOOTSTRAP_ADMIN_KEY)
                        """)
            }
            return false  // Registered once already: deleted since, perhaps, but never recreated.
        }
        if try await isRegistered(keyText) {
            try await services.store.recordBootstrapKey(id: keyText.keyID, secretHash: hash, at: services.clock.now())
            return false
        }
        do {
            _ = try await createAdministratorKey(
                email: email, name: "Administrator", teamName: "Administrators", keyText: keyText)
        } catch let error as MetadataStoreError where error == .keyIDTaken || error == .emailTaken {
            // Another instance registered it first.
            if try await isRegistered(keyText) { return false }
            throw error
        }
        try await services.store.recordBootstrapKey(id: keyText.keyID, secretHash: hash, at: services.clock.now())
        return true
    }

    private func isRegistered(_ keyText: APIKeyText) async throws -> Bool {
        guard let existing = try await services.store.apiKey(id: keyText.keyID) else { return false }
        guard services.keys.matches(keyText.secret, existing.secretHash) else {
            throw Refusal(description: "BOOTSTRAP_ADMIN_KEY has the id of an existing key but another secret")
        }
        return true
    }
}
