import Testing

@Suite("Test servers")
struct TestServerTests {
    @Test("the servers the contract suites need are running when the test command says they must")
    func serversPresent() {
        guard TestServers.required else { return }
        #expect(
            TestServers.storageEmulator != nil,
            "TEST_STORAGE_EMULATOR_HOST is not set: fake-gcs-server did not start, so the gcs blob backend was left out"
        )
        #expect(
            TestServers.qdrant != nil,
            "TEST_QDRANT_HOST is not set: the Qdrant test double did not start, so the qdrant vector backend was left out"
        )
        #expect(
            TestServers.firestoreEmulator != nil,
            "TEST_FIRESTORE_EMULATOR_HOST is not set: the Firestore emulator did not start, so its tests were left out")
        #expect(
            TestServers.postgres != nil,
            "TEST_DATABASE_URL is not set: PostgreSQL did not start, so the postgres metadata backend was left out")
        #expect(
            TestServers.pgvector != nil,
            "TEST_PGVECTOR_URL is not set: PostgreSQL with pgvector did not start, so the pgvector backend was left out"
        )
    }
}
