import CLIPInference
import Foundation
import Testing

/// The engine against Hugging Face transformers' outputs for the same tiny model.
@Suite("CLIP engine matches the reference implementation")
struct ReferenceOutputTests {
    let reference = ReferenceFixture.shared
    let model = ReferenceFixture.model

    @Test("the fixture covers at least 50 texts, one longer than 77 tokens")
    func fixtureCoverage() {
        #expect(reference.texts.count >= 50)
        #expect(reference.texts.contains { $0.ids.count == 77 })
        #expect(reference.images.count >= 5)
    }

    @Test("token ids equal the reference tokenizer's for every text")
    func tokenIDs() {
        for text in reference.texts {
            #expect(model.tokenize(text.text) == text.ids, "\(text.text.debugDescription)")
        }
    }

    @Test("text embeddings are within 1e-4 of the reference, one by one and batched")
    func textEmbeddings() {
        for text in reference.texts {
            let embedding = model.embed(tokenSequences: [text.ids])[0]
            #expect(ReferenceFixture.maxDifference(embedding, text.embedding) <= 1e-4, "\(text.text.debugDescription)")
        }
        let batched = model.embed(tokenSequences: reference.texts.map(\.ids))
        for (embedding, text) in zip(batched, reference.texts) {
            #expect(ReferenceFixture.maxDifference(embedding, text.embedding) <= 1e-4, "\(text.text.debugDescription)")
        }
    }

    @Test("preprocessing decodes and resizes exactly as the reference image processor")
    func preprocessing() throws {
        for image in reference.images {
            let pixels = try model.preprocessor.pixelValues(imageData: try ReferenceFixture.imageData(image.file))
            #expect(pixels.count == image.pixelValues.count)
            #expect(ReferenceFixture.maxDifference(pixels, image.pixelValues) <= 1e-5, "\(image.file)")
        }
    }

    @Test("image embeddings are within 1e-4 of the reference, one by one and batched")
    func imageEmbeddings() throws {
        var inputs: [[Float]] = []
        for image in reference.images {
            let pixels = try model.preprocessor.pixelValues(imageData: try ReferenceFixture.imageData(image.file))
            inputs.append(pixels)
            let embedding = model.embed(pixelValues: [pixels])[0]
            #expect(ReferenceFixture.maxDifference(embedding, image.embedding) <= 1e-4, "\(image.file)")
        }
        for (embedding, image) in zip(model.embed(pixelValues: inputs), reference.images) {
            #expect(ReferenceFixture.maxDifference(embedding, image.embedding) <= 1e-4, "\(image.file) batched")
        }
    }

    @Test("the BLAS path over the mapped weights gives the same embeddings as the packed kernel")
    func blasPath() throws {
        let unpacked = try CLIPModel(
            files: try CLIPModelFiles(directory: ReferenceFixture.modelDirectory), packed: false)
        for text in reference.texts {
            let embedding = unpacked.embed(tokenSequences: [text.ids], threads: 2)[0]
            #expect(ReferenceFixture.maxDifference(embedding, text.embedding) <= 1e-4, "\(text.text.debugDescription)")
        }
        for image in reference.images {
            let pixels = try unpacked.preprocessor.pixelValues(imageData: try ReferenceFixture.imageData(image.file))
            let embedding = unpacked.embed(pixelValues: [pixels], threads: 2)[0]
            #expect(ReferenceFixture.maxDifference(embedding, image.embedding) <= 1e-4, "\(image.file)")
        }
    }

    @Test("embeddings are the same across runs, thread counts and batch sizes")
    func determinism() throws {
        let pixels = try reference.images.map {
            try model.preprocessor.pixelValues(imageData: try ReferenceFixture.imageData($0.file))
        }
        let ids = reference.texts.map(\.ids)
        let images1 = model.embed(pixelValues: pixels, threads: 1)
        let texts1 = model.embed(tokenSequences: ids, threads: 1)
        let again = model.embed(pixelValues: pixels, threads: 1)
        let images2 = model.embed(pixelValues: pixels, threads: 2)
        let texts2 = model.embed(tokenSequences: ids, threads: 2)
        let images3 = model.embed(pixelValues: pixels, threads: 3)
        for index in pixels.indices {
            #expect(ReferenceFixture.maxDifference(images1[index], again[index]) <= 1e-5)
            #expect(ReferenceFixture.maxDifference(images1[index], images2[index]) <= 1e-5)
            #expect(ReferenceFixture.maxDifference(images1[index], images3[index]) <= 1e-5)
        }
        for index in ids.indices {
            #expect(ReferenceFixture.maxDifference(texts1[index], texts2[index]) <= 1e-5)
        }
        // Batches of two inputs or more per thread run as one group per thread, smaller ones with
        // every step split between the threads: each input's embedding is the same bits either
        // way, and the same as in batches of other sizes.
        #expect(images2 == images1 && images3 == images1 && texts2 == texts1)
        #expect(model.embed(pixelValues: Array(pixels[1..<4]), threads: 2) == Array(images1[1..<4]))
        #expect(model.embed(tokenSequences: Array(ids[5..<8]), threads: 2) == Array(texts1[5..<8]))
        #expect(model.embed(tokenSequences: [ids[9]], threads: 3) == [texts1[9]])
    }
}
