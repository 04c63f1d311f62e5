import Foundation
import ImageAPICore
import TestSupport
import Testing

/// The contract of the blob-store port, run against every backend in ``BlobBackend``.
@Suite("Blob store contract")
struct BlobStoreContractTests {
    static func bytes(_ count: Int, seed: UInt64) -> Data {
        var generator = SeededGenerator(seed: seed)
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    static func collect(_ stream: AsyncThrowingStream<Data, any Error>) async throws -> Data {
        var data = Data()
        for try await chunk in stream { data.append(chunk) }
        return data
    }

    @Test(
        "a blob put under a key reads back whole, by range and by size; absent keys read as absent",
        arguments: BlobBackend.allCases)
    func putAndRead(backend: BlobBackend) async throws {
        try await backend.withStore { store in
            let data = Self.bytes(700_000, seed: 1)
            try await store.put(data, at: "team/image/original")
            #expect(try await store.data(at: "team/image/original") == data)
            #expect(try await store.size(at: "team/image/original") == data.count)
            #expect(try await store.exists(at: "team/image/original"))
            #expect(try await Self.collect(store.read(at: "team/image/original", range: nil)) == data)
            let range = 300_000..<650_001
            #expect(try await Self.collect(store.read(at: "team/image/original", range: range)) == data[range])
            #expect(try await store.data(at: "team/other/original") == nil)
            #expect(try await store.size(at: "team/other/original") == nil)
            #expect(try await store.exists(at: "team/other/original") == false)
            // With attributes (a store may keep them; the bytes are the same either way).
            let small = Self.bytes(5_000, seed: 2)
            try await store.put(
                small, at: "team/image/thumbnail.jpg", attributes: BlobAttributes(contentType: "image/jpeg"))
            try await store.put(
                small, at: "team/image/copy", attributes: BlobAttributes(contentType: "image/png", sha256: "ab12"))
            #expect(try await store.data(at: "team/image/thumbnail.jpg") == small)
            #expect(try await store.data(at: "team/image/copy") == small)
        }
    }

    @Test(
        "a local file stored under a key reads back whole; the caller's copy may go; a second put replaces the first",
        arguments: BlobBackend.allCases)
    func putFromFile(backend: BlobBackend) async throws {
        try await backend.withStore { store in
            try await TemporaryFolder.with { folder in
                let data = Self.bytes(300_000, seed: 2)
                let file = folder.appendingPathComponent("upload").path
                try data.write(to: URL(fileURLWithPath: file))
                #expect(try await store.exists(at: "a/b") == false)
                try await store.put(fileAt: file, at: "a/b")
                // What the store left of the file is the caller's to remove; the blob stays.
                try? FileManager.default.removeItem(atPath: file)
                #expect(try await store.data(at: "a/b") == data)
                #expect(try await Self.collect(store.read(at: "a/b", range: 299_990..<300_000)) == data.suffix(10))

                try await store.put(Data("second".utf8), at: "a/b")
                #expect(try await store.data(at: "a/b") == Data("second".utf8))
            }
        }
    }

    @Test(
        "a 20 MiB file (more than one request's worth for Cloud Storage) reads back whole and by range",
        arguments: BlobBackend.allCases)
    func largeFile(backend: BlobBackend) async throws {
        try await backend.withStore { store in
            try await TemporaryFolder.with { folder in
                // 20 blocks of 1 MiB, each a seeded block with its number in front: no two alike.
                let block = Self.bytes(1 << 20, seed: 3)
                var data = Data(capacity: 20 << 20)
                for index in 0..<20 {
                    var numbered = block
                    numbered[0] = UInt8(index)
                    data.append(numbered)
                }
                let file = folder.appendingPathComponent("large").path
                try data.write(to: URL(fileURLWithPath: file))
                try await store.put(fileAt: file, at: "t/large/original")
                try? FileManager.default.removeItem(atPath: file)
                #expect(try await store.size(at: "t/large/original") == data.count)
                #expect(try await Self.collect(store.read(at: "t/large/original", range: nil)) == data)
                let range = (8 << 20) - 5..<(8 << 20) + 5
                #expect(try await Self.collect(store.read(at: "t/large/original", range: range)) == data[range])
                try await store.put(data.prefix(9 << 20), at: "t/large/bytes")
                #expect(try await store.data(at: "t/large/bytes") == data.prefix(9 << 20))
            }
        }
    }

    @Test("a delete leaves nothing behind and deleting twice is fine", arguments: BlobBackend.allCases)
    func deletes(backend: BlobBackend) async throws {
        try await backend.withStore { store in
            try await store.put(Data("x".utf8), at: "t/i/original")
            try await store.put(Data("y".utf8), at: "t/i/thumbnail.jpg")
            try await store.delete(at: "t/i/original")
            try await store.delete(at: "t/i/original")
            #expect(try await store.exists(at: "t/i/original") == false)
            #expect(try await store.data(at: "t/i/thumbnail.jpg") == Data("y".utf8))
            try await store.delete(at: "t/i/thumbnail.jpg")
            #expect(try await store.exists(at: "t/i/thumbnail.jpg") == false)
        }
    }

    @Test(
        "a listing names every blob under a prefix with when it was written, and nothing else",
        arguments: BlobBackend.allCases)
    func listsUnderAPrefix(backend: BlobBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.blobs(under: "teams/").isEmpty)
            let before = Date().addingTimeInterval(-5)
            try await store.put(Data("a".utf8), at: "teams/a/images/1/original")
            try await store.put(Data("b".utf8), at: "teams/a/images/1/thumbnail.jpg")
            try await store.put(Data("c".utf8), at: "teams/b/images/2/original")
            try await store.put(Data("d".utf8), at: "other/images/3/original")
            let after = Date().addingTimeInterval(5)
            let listed = try await store.blobs(under: "teams/")
            #expect(
                Set(listed.map(\.key)) == [
                    "teams/a/images/1/original", "teams/a/images/1/thumbnail.jpg", "teams/b/images/2/original",
                ])
            #expect(listed.allSatisfy { $0.written > before && $0.written < after }, "\(listed)")
            try await store.delete(at: "teams/a/images/1/original")
            #expect(Set(try await store.blobs(under: "teams/a/").map(\.key)) == ["teams/a/images/1/thumbnail.jpg"])
        }
    }
}
