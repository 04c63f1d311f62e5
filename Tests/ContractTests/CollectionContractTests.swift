import Foundation
import ImageAPICore
import Testing

/// The contract of the collection port, run against every backend in ``MetadataBackend``.
@Suite("Collection store contract")
struct CollectionContractTests {
    static func collection(_ team: Team, _ name: String, at seconds: Int = 0) -> ImageCollection {
        ImageCollection(
            id: UUID(), teamID: team.id, name: name, description: nil, coverImageID: nil, createdAt: Make.date(seconds),
            updatedAt: Make.date(seconds))
    }

    @Test(
        "collections are stored, read, renamed and listed per team; a name is unique in its team, case aside",
        arguments: MetadataBackend.allCases)
    func namesAndTeams(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let other = Make.team("Other")
            try await store.insertTeam(team)
            try await store.insertTeam(other)
            var trips = Self.collection(team, "Trips", at: 1)
            trips.description = "Holidays"
            try await store.insertCollection(trips)
            #expect(try await store.collection(id: trips.id, teamID: team.id) == trips)
            #expect(try await store.collection(id: trips.id, teamID: other.id) == nil)
            await #expect(throws: CollectionNameTakenError(existingCollectionID: trips.id)) {
                try await store.insertCollection(Self.collection(team, "TRIPS"))
            }
            // The same name in another team, and another name in this one.
            try await store.insertCollection(Self.collection(other, "Trips"))
            let work = Self.collection(team, "Émile's work")
            try await store.insertCollection(work)
            await #expect(throws: CollectionNameTakenError(existingCollectionID: work.id)) {
                try await store.insertCollection(Self.collection(team, "émile's WORK"))
            }
            #expect(Set(try await store.collections(teamID: team.id).map(\.id)) == [trips.id, work.id])

            var renamed = trips
            renamed.name = "Journeys"
            renamed.coverImageID = ImageID()
            renamed.updatedAt = Make.date(5)
            #expect(try await store.updateCollection(renamed))
            #expect(try await store.collection(id: trips.id, teamID: team.id) == renamed)
            // The old name is free again; the new one is taken; a rename to its own name in
            // another case is no conflict.
            try await store.insertCollection(Self.collection(team, "trips"))
            var taken = work
            taken.name = "journeys"
            await #expect(throws: CollectionNameTakenError(existingCollectionID: trips.id)) {
                _ = try await store.updateCollection(taken)
            }
            var recased = renamed
            recased.name = "JOURNEYS"
            #expect(try await store.updateCollection(recased))
            var elsewhere = renamed
            elsewhere.teamID = other.id
            #expect(try await store.updateCollection(elsewhere) == false)
        }
    }

    @Test(
        "labels are counted with their newest image; deleting clears them and the collection, for its team only",
        arguments: MetadataBackend.allCases)
    func labelsAndDelete(backend: MetadataBackend) async throws {
        try await backend.withStore { store in
            let team = Make.team()
            let other = Make.team("Other")
            try await store.insertTeam(team)
            try await store.insertTeam(other)
            let trips = Self.collection(team, "Trips")
            try await store.insertCollection(trips)
            let unnamed = UUID()
            var images: [ImageRecord] = []
            for (index, label) in [trips.id, trips.id, trips.id, unnamed, nil].enumerated() {
                let image = Make.image(team: team, collection: label, at: index + 1)
                try await store.insertImage(image, publishing: Make.message(for: image), allowDuplicate: false)
                images.append(image)
            }
            // Another team's image under the same label is neither counted nor cleared.
            let foreign = Make.image(team: other, collection: trips.id, at: 9)
            try await store.insertImage(foreign, publishing: Make.message(for: foreign), allowDuplicate: false)

            let labels = try await store.collectionLabels(teamID: team.id).sorted { $0.imageCount > $1.imageCount }
            #expect(
                labels == [
                    CollectionLabel(id: trips.id, imageCount: 3, newestImageID: images[2].id),
                    CollectionLabel(id: unnamed, imageCount: 1, newestImageID: images[3].id),
                ])

            let cleared = try await store.deleteCollection(id: trips.id, teamID: team.id, at: Make.date(20))
            #expect(Set(cleared.map(\.id)) == Set(images[0...2].map(\.id)))
            #expect(cleared.allSatisfy { $0.collectionID == nil && $0.updatedAt == Make.date(20) })
            for image in images[0...2] {
                let stored = try await store.image(id: image.id, teamID: team.id)
                #expect(stored?.collectionID == nil && stored?.updatedAt == Make.date(20))
            }
            #expect(try await store.collection(id: trips.id, teamID: team.id) == nil)
            #expect(try await store.image(id: foreign.id, teamID: other.id)?.collectionID == trips.id)
            #expect(try await store.collectionLabels(teamID: team.id).map(\.id) == [unnamed])
            // The name is free again; an unnamed label is cleared the same way.
            try await store.insertCollection(Self.collection(team, "Trips"))
            #expect(
                try await store.deleteCollection(id: unnamed, teamID: team.id, at: Make.date(21)).map(\.id) == [
                    images[3].id
                ])
            #expect(try await store.collectionLabels(teamID: team.id).isEmpty)
        }
    }
}
