import Foundation
import ImageAPICore

/// The request and response bodies of Qdrant's REST API that the index uses, named as Qdrant's
/// OpenAPI document names them (in camel case: ``encoder`` and ``decoder`` convert to and from
/// Qdrant's snake case).
enum QdrantWire {
    /// Writes request bodies with Qdrant's snake-case keys.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }()

    /// Reads answers with Qdrant's snake-case keys.
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// Qdrant's envelope around every answer.
    struct Envelope<Result: Decodable>: Decodable {
        var result: Result
    }

    /// `GET /collections`.
    struct CollectionList: Decodable {
        struct Description: Decodable { var name: String }
        var collections: [Description]
    }

    /// The part of `GET /collections/{name}` the index checks.
    struct CollectionInfo: Decodable {
        struct Config: Decodable { var params: Params }
        struct Params: Decodable { var vectors: VectorParams? }
        struct VectorParams: Decodable {
            var size: Int
            var distance: String
        }
        struct IndexInfo: Decodable {
            var dataType: String
        }
        var config: Config
        var payloadSchema: [String: IndexInfo]?
    }

    /// `PUT /collections/{name}`.
    struct CreateCollection: Encodable {
        struct VectorParams: Encodable {
            var size: Int
            var distance = "Cosine"
            var onDisk: Bool
        }
        struct HNSW: Encodable {
            var m: Int
            var efConstruct: Int
            var payloadM: Int
        }
        struct Quantization: Encodable {
            struct Scalar: Encodable {
                var type = "int8"
                var quantile = 0.99
                var alwaysRam = true
            }
            var scalar = Scalar()
        }
        var vectors: VectorParams
        var shardNumber: Int
        var replicationFactor: Int
        var writeConsistencyFactor: Int
        var onDiskPayload: Bool
        var hnswConfig: HNSW
        var quantizationConfig: Quantization?
    }

    /// `PUT /collections/{name}/index`: a payload index.
    struct CreateFieldIndex: Encodable {
        struct Schema: Encodable {
            var type: String
            var isTenant: Bool?
        }
        var fieldName: String
        var fieldSchema: Schema
    }

    /// What the index keeps beside each vector. `collection_id` is written as `null` when absent,
    /// so that a payload update clears it.
    struct Payload: Encodable {
        var teamId: String
        var collectionId: String?
        var tags: [String]
        var createdAt: String
        var model: String

        enum CodingKeys: String, CodingKey {
            case teamId, collectionId, tags, createdAt, model
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(teamId, forKey: .teamId)
            try container.encode(collectionId, forKey: .collectionId)
            try container.encode(tags, forKey: .tags)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(model, forKey: .model)
        }
    }

    /// `PUT /collections/{name}/points` as a list of points.
    struct PointsList: Encodable {
        struct Point: Encodable {
            var id: String
            var vector: [Float]
            var payload: Payload
        }
        var points: [Point]
    }

    /// The new collection and tags of a point: `POST /collections/{name}/points/payload`.
    struct SetPayload: Encodable {
        struct Fields: Encodable {
            var collectionId: String?
            var tags: [String]

            enum CodingKeys: String, CodingKey {
                case collectionId, tags
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(collectionId, forKey: .collectionId)
                try container.encode(tags, forKey: .tags)
            }
        }
        var payload: Fields
        var filter: Filter
    }

    /// A filter: every `must` condition holds and no `must_not` one does.
    struct Filter: Encodable {
        var must: [Condition]
        var mustNot: [Condition]?
    }

    /// One condition of a filter.
    struct Condition: Encodable {
        struct Match: Encodable { var value: String }
        struct DateRange: Encodable {
            var gte: String?
            var lte: String?
        }
        var key: String?
        var match: Match?
        var range: DateRange?
        var hasId: [String]?

        static func equals(_ key: String, _ value: String) -> Condition {
            Condition(key: key, match: Match(value: value))
        }

        static func ids(_ ids: [String]) -> Condition { Condition(hasId: ids) }
    }

    /// `POST /collections/{name}/points/delete` by filter, or by ids.
    struct DeleteByFilter: Encodable { var filter: Filter }

    /// `POST /collections/{name}/points/count`.
    struct Count: Encodable {
        var filter: Filter
        var exact = true
    }

    /// The answer of `count`.
    struct CountResult: Decodable { var count: Int }

    /// `POST /collections/{name}/points/query`: the nearest points, ids and scores only.
    struct Query: Encodable {
        struct Params: Encodable {
            struct Quantization: Encodable {
                var rescore = true
                var oversampling = 2.0
            }
            var quantization: Quantization?
        }
        var query: [Float]
        var filter: Filter
        var scoreThreshold: Float?
        var limit: Int
        var offset: Int
        var withPayload = false
        var withVector = false
        var params: Params?
    }

    /// The answer of `query`.
    struct QueryResponse: Decodable {
        struct ScoredPoint: Decodable {
            var id: String
            var score: Float
        }
        var points: [ScoredPoint]
    }

    /// `POST /collections/{name}/points`: points by id, with their vectors.
    struct Retrieve: Encodable {
        var ids: [String]
        var withPayload: [String]
        var withVector = true
    }

    /// One point that `retrieve` found.
    struct Record: Decodable {
        struct TeamPayload: Decodable {
            var teamId: String?
        }
        var id: String
        var payload: TeamPayload?
        var vector: [Float]?
    }

    /// Dates as Qdrant's datetime payload index reads them: RFC 3339 in UTC, with milliseconds.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
