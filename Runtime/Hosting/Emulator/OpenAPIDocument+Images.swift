import FunctionsFramework

extension OpenAPIDocument {
    static let imageID = pathParameter("image_id", "The image's id.")
    static let collectionID = pathParameter("collection_id", "The collection's id.")
    static let messageID: JSONValue = [
        "name": "message_id", "in": "path", "required": true, "description": "The dead letter's message id.",
        "schema": ["type": "string", "minLength": 1, "maxLength": 200],
    ]

    static var imagePaths: [String: JSONValue] {
        [
            "/api/v1/images": [
                "post": operation(
                    "images",
                    """
                    Upload an image (multipart/form-data). The format is decided from the bytes; width, height, \
                    orientation and EXIF are read with libvips; processing is queued (embedding_status pending).
                    """,
                    parameters: [
                        [
                            "name": "allow_duplicate", "in": "query", "required": false,
                            "description": "Keep identical bytes as a second image (also accepted as a form field).",
                            "schema": ["type": "boolean", "default": false],
                        ]
                    ],
                    body: nil,
                    responses: [
                        "201": ok("Image", "The stored image"),
                        "409": [
                            "description": "The team already has these exact bytes (see existing_image_id)",
                            "content": json(
                                object(
                                    ["detail": ["type": "string"], "existing_image_id": uuid],
                                    required: ["detail", "existing_image_id"])),
                        ],
                        "413": error("The file is larger than MAX_UPLOAD_BYTES"),
                        "415": error("Not an accepted image format"),
                        "503": error("Too many uploads in progress (see Retry-After)"),
                    ],
                    multipart: ref("ImageUpload")),
                "get": operation(
                    "images",
                    "List the team's images, newest first, narrowed by the filters given (all of them); any other query parameter is refused (422)",
                    parameters: [
                        skip, limit, queryUUID("collection_id", "Only this collection.", required: false),
                        [
                            "name": "tags", "in": "query", "required": false, "style": "form", "explode": true,
                            "description":
                                "Only images carrying every tag given (repeat the parameter, or separate tags with commas)",
                            "schema": [
                                "type": "array", "maxItems": 50,
                                "items": ["type": "string", "maxLength": 50, "pattern": .string(plainText)],
                            ],
                        ],
                        [
                            "name": "uploaded_from", "in": "query", "required": false,
                            "description": "Only images uploaded at or after this instant", "schema": inputTimestamp,
                        ],
                        [
                            "name": "uploaded_to", "in": "query", "required": false,
                            "description": "Only images uploaded at or before this instant", "schema": inputTimestamp,
                        ],
                        [
                            "name": "embedding_status", "in": "query", "required": false,
                            "description": "Only images in this state: pending, processing, success or failed",
                            "schema": ["type": "string", "pattern": "^(pending|processing|success|failed)$"],
                        ],
                    ],
                    responses: ["200": ok("ImageList", "A page of images")]),
            ],
            "/api/v1/images/{image_id}": [
                "get": operation(
                    "images", "Read an image's metadata and processing status", parameters: [imageID],
                    responses: ["200": ok("Image", "The image"), "404": error("No such image in the team")]),
                "put": operation(
                    "images", "Change description, tags or collection (null clears)", parameters: [imageID],
                    body: ref("UpdateImage"),
                    responses: [
                        "200": ok("Image", "The image"), "404": error("No such image in the team"),
                        "422": error("collection_id names none of the team's collections"),
                    ]),
                "delete": operation(
                    "images", "Delete the image, its bytes, thumbnail and vector", parameters: [imageID],
                    responses: ["204": ["description": "Deleted"], "404": error("No such image in the team")]),
            ],
            "/api/v1/images/{image_id}/download": [
                "get": operation(
                    "images",
                    """
                    The original bytes. Honours If-None-Match (304 for the current ETag) and one byte range in \
                    Range (206; 416 when it lies outside the file). With redirect=true and Cloud Storage \
                    (BLOB_BACKEND=gcs), 307 to a V4 signed URL valid for GCS_SIGNED_URL_SECONDS instead; other \
                    blob stores answer with the bytes.
                    """,
                    parameters: [
                        imageID,
                        [
                            "name": "redirect", "in": "query", "required": false,
                            "description": "Redirect to a short-lived signed URL where the blob store can make one.",
                            "schema": ["type": "boolean", "default": false],
                        ],
                    ],
                    responses: [
                        "200": binary("The image"), "206": binary("The requested range"),
                        "304": ["description": "Not modified"],
                        "307": [
                            "description": "The signed URL, in Location",
                            "headers": ["Location": ["schema": ["type": "string", "format": "uri"]]],
                        ],
                        "404": error("No such image in the team"), "416": error("The range is outside the file"),
                        "422": error("redirect is not a boolean"),
                    ])
            ],
            "/api/v1/images/{image_id}/thumbnail": [
                "get": operation(
                    "images", "A JPEG thumbnail (longer side THUMBNAIL_SIZE), made during processing",
                    parameters: [imageID],
                    responses: [
                        "200": binary("The thumbnail"), "404": error("No such image, or no thumbnail yet"),
                    ])
            ],
            "/api/v1/collections": [
                "post": operation(
                    "collections",
                    "Create a named collection (the name unique in the team, case aside)",
                    body: ref("CreateCollection"),
                    responses: [
                        "201": ok("Collection", "The collection"),
                        "409": error(
                            "The team has a collection of this name (see existing_collection_id), or 1,000 collections"),
                    ]),
                "get": operation(
                    "collections",
                    """
                    List the team's collections: named ones by name, then the collection_id labels images \
                    carry that name no collection (name null), with image counts and covers
                    """,
                    parameters: [skip, limit],
                    responses: ["200": ok("CollectionList", "A page of collections")]),
            ],
            "/api/v1/collections/{collection_id}": [
                "get": operation(
                    "collections", "Read a collection (or a label images carry)", parameters: [collectionID],
                    responses: ["200": ok("Collection", "The collection"), "404": error("No such collection")]),
                "put": operation(
                    "collections",
                    """
                    Rename, describe or choose the cover (one of its images; null clears it). A label images \
                    carry that names no collection becomes a named collection (name required)
                    """,
                    parameters: [collectionID], body: ref("UpdateCollection"),
                    responses: [
                        "200": ok("Collection", "The collection"), "404": error("No such collection"),
                        "409": error("Another collection of the team has this name"),
                        "422": error("The cover is not one of the collection's images"),
                    ]),
                "delete": operation(
                    "collections", "Delete a collection; its images stay, their collection_id cleared",
                    parameters: [collectionID],
                    responses: ["204": ["description": "Deleted"], "404": error("No such collection")]),
            ],
            "/api/v1/images/duplicates": [
                "get": operation(
                    "images",
                    """
                    The team's groups of near-duplicates, largest first: images connected by perceptual hashes \
                    (phash) at most max_distance bits apart, a chain of close pairs making one group. Each group \
                    gives its size and its oldest images (at most 20), oldest first. Images are hashed when they \
                    are processed.
                    """,
                    parameters: [skip, limit, maxDistance],
                    responses: ["200": ok("NearDuplicateGroups", "A page of groups")])
            ],
            "/api/v1/images/{image_id}/duplicates": [
                "get": operation(
                    "images",
                    """
                    The team's images whose perceptual hash (phash) is at most max_distance bits from this \
                    image's, nearest first (then oldest first), the image itself left out.
                    """,
                    parameters: [imageID, skip, limit, maxDistance],
                    responses: [
                        "200": ok("NearDuplicates", "A page of near-duplicates"),
                        "404": error("No such image in the team"),
                        "409": error("The image has no perceptual hash yet (it is computed during processing)"),
                    ])
            ],
            "/api/v1/images/reprocess-all": [
                "post": operation(
                    "images",
                    "Re-embed the team's images with the current model, in the background (admin)",
                    parameters: [
                        [
                            "name": "scope", "in": "query", "required": false,
                            "description":
                                "stale: images embedded with another model, and failed ones; all: every embedded or failed image.",
                            "schema": ["type": "string", "enum": ["stale", "all"], "default": "stale"],
                        ]
                    ],
                    responses: [
                        "202": ok("ReprocessAll", "How many images were queued, and the progress so far"),
                        "403": error("Admin privileges required"), "422": error("Unknown scope"),
                    ]),
                "get": operation(
                    "images", "Re-embedding progress: the team's images counted against the current model (admin)",
                    responses: [
                        "200": ok("EmbeddingProgress", "The counts"), "403": error("Admin privileges required"),
                    ]),
            ],
            "/api/v1/images/{image_id}/reprocess": [
                "post": operation(
                    "images", "Queue a failed (or finished) image for processing again", parameters: [imageID],
                    responses: [
                        "202": ok("Image", "The image, pending again"), "404": error("No such image in the team"),
                        "409": error("The image is already pending or processing"),
                    ])
            ],
            "/api/v1/search": [
                "get": operation(
                    "search", searchSummary,
                    parameters: [
                        [
                            "name": "q", "in": "query", "required": true,
                            "schema": searchText,
                        ],
                        skip,
                        [
                            "name": "limit", "in": "query", "required": false,
                            "schema": ["type": "integer", "minimum": 1, "maximum": 50, "default": 10],
                        ],
                        [
                            "name": "similarity_threshold", "in": "query", "required": false,
                            "schema": ["type": "number", "minimum": 0, "maximum": 1, "default": .decimal(0.7)],
                        ],
                        queryUUID("collection_id", "Only this collection.", required: false),
                        [
                            "name": "mode", "in": "query", "required": false, "description": .string(searchModeText),
                            "schema": ["type": "string", "pattern": "^(hybrid|semantic|text)$"],
                        ],
                    ],
                    responses: [
                        "200": ok("SearchResults", "Ranked matches"),
                        "503": error(searchUnavailable),
                    ]),
                "post": operation(
                    "search", searchSummary, body: ref("SearchRequest"),
                    responses: [
                        "200": ok("SearchResults", "Ranked matches"), "404": error("image_id is not in the team"),
                        "409": error("image_id has no embedding yet"),
                        "503": error(searchUnavailable),
                    ]),
            ],
            "/api/v1/admin/dead-letters": [
                "get": operation(
                    "images",
                    """
                    The team's processing dead letters, oldest first (admin): messages given up on after the last \
                    processing attempt or delivery
                    """,
                    parameters: [skip, limit],
                    responses: [
                        "200": ok("DeadLetterList", "A page of dead letters"),
                        "403": error("Admin privileges required"),
                    ])
            ],
            "/api/v1/admin/dead-letters/{message_id}": [
                "delete": operation(
                    "images",
                    """
                    Discard a dead letter without replaying it (admin): for one whose image was deleted, or whose \
                    failure is understood
                    """,
                    parameters: [messageID],
                    responses: [
                        "204": ["description": "Discarded"], "403": error("Admin privileges required"),
                        "404": error("No such dead letter in the team"),
                    ])
            ],
            "/api/v1/admin/dead-letters/{message_id}/replay": [
                "post": operation(
                    "images",
                    """
                    Replay a dead letter (admin): its image is queued again with its attempts reset, and the dead \
                    letter is removed
                    """,
                    parameters: [messageID],
                    responses: [
                        "202": ok("Image", "The image, pending again"), "403": error("Admin privileges required"),
                        "404": error("No such dead letter in the team, or its image no longer exists"),
                        "409": error("The image is already pending or processing"),
                    ])
            ],
            "/events/process-embedding": [
                "post": operation(
                    "events",
                    """
                    ProcessEmbedding: a Pub/Sub messagePublished CloudEvent (binary or structured mode) whose \
                    data is {image_id, team_id}. 204 acknowledges; 500 asks for redelivery. A delivery that cannot                     be read is dead-lettered and acknowledged, never refused: Pub/Sub redelivers every other answer.
                    """,
                    public: true, body: pushBody,
                    responses: [
                        "204": ["description": "Processed, already processed, dropped, or dead-lettered"],
                        "401": error("Production: no valid OIDC token or push token"),
                        "403": error("Production: an OIDC token for another audience or account"),
                        "500": error("This attempt failed; redeliver"),
                        "503": error("The keys to check the OIDC token cannot be fetched; redeliver"),
                    ])
            ],
        ]
    }

    static let searchUnavailable =
        "The embedding provider (Retry-After when its quota says how long) or the vector index cannot be reached"

    static let searchSummary = """
        Search the team's images, by text (q or query) or by likeness to a stored image (image_id), never \
        both. Mode semantic (text with CLIP): score 1 / (1 + exp(-(cosine - 0.20) / 0.025)), a logistic \
        curve over CLIP's narrow band of text-image cosines. Mode text (the words of file name, \
        description, tags, EXIF; the default without a text-capable embedder): score 0.7 × share of query \
        words matched + 0.3 × BM25 relative to the best match. Mode hybrid (the default with CLIP or \
        Vertex AI): both, each keeping what reaches similarity_threshold by its own score, fused by \
        Reciprocal Rank Fusion: score = Σ weight / (60 + rank) over the engines that found the image, \
        divided by its value for an image first in both (1); semantic_score, semantic_rank, text_score and \
        text_rank say where each engine placed it. image_id: mode similar, score max(0, cosine) with CLIP, \
        (1 + cosine) / 2 with the visual features. Results below similarity_threshold are left out.
        """

    static let searchModeText = """
        hybrid (the default with a text-capable embedder), semantic, or text (the default otherwise); \
        without a text-capable embedder, semantic and hybrid are answered as text, with a notice
        """

    /// The Pub/Sub push body of a messagePublished event (binary mode; structured mode wraps it).
    static let pushBody: JSONValue = object(
        [
            "message": object(
                [
                    "data": [
                        "type": ["string", "null"], "contentEncoding": "base64",
                        "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
                    ],
                    "attributes": ["type": ["object", "null"], "additionalProperties": ["type": "string"]],
                    "messageId": ["type": "string"], "publishTime": inputTimestamp,
                ], required: ["messageId", "publishTime"]),
            "subscription": ["type": ["string", "null"]], "deliveryAttempt": ["type": ["integer", "null"]],
        ], required: ["message"])

    static func binary(_ description: String) -> JSONValue {
        [
            "description": .string(description),
            "content": ["image/*": ["schema": ["type": "string", "format": "binary"]]],
        ]
    }

    /// The Hamming distance parameter of the near-duplicate listings.
    static let maxDistance: JSONValue = [
        "name": "max_distance", "in": "query", "required": false,
        "description": "The most bits two perceptual hashes may differ by (default 8)",
        "schema": ["type": "integer", "minimum": 0, "maximum": 12, "default": 8],
    ]

    /// A text query: up to 500 characters, at least one of them not a space.
    static let searchText: JSONValue = ["type": "string", "minLength": 1, "maxLength": 500, "pattern": #"\S"#]

    static var imageSchemas: [String: JSONValue] {
        let tags: JSONValue = [
            "type": "array", "items": ["type": "string", "maxLength": 50, "pattern": .string(plainText)],
            "maxItems": 50,
        ]
        let nullableUUID: JSONValue = ["type": ["string", "null"], "format": "uuid", "pattern": .string(uuidPattern)]
        let nullableString: JSONValue = ["type": ["string", "null"]]
        let nullableInteger: JSONValue = ["type": ["integer", "null"]]
        let nullableTags: JSONValue = [
            "type": ["array", "null"], "items": ["type": "string", "maxLength": 50, "pattern": .string(plainText)],
            "maxItems": 50,
        ]
        let image: [String: JSONValue] = [
            "id": uuid, "filename": ["type": "string"], "content_type": ["type": "string"],
            "format": ["type": "string", "enum": ["jpeg", "png", "webp", "gif", "tiff", "heic", "avif"]],
            "file_size": ["type": "integer"], "width": ["type": "integer"], "height": ["type": "integer"],
            "orientation": nullableInteger, "sha256": ["type": "string"], "description": description, "tags": tags,
            "collection_id": nullableUUID, "team_id": uuid, "uploader_id": uuid,
            "embedding_status": ["type": "string", "enum": ["pending", "processing", "success", "failed"]],
            "embedding_error": nullableString, "embedding_attempts": ["type": "integer"],
            "embedding_model": nullableString, "embedding_dimensions": nullableInteger,
            "embedded_at": nullableTimestamp,
            "phash": [
                "type": ["string", "null"], "pattern": "^[0-9a-f]{16}$",
                "description": "The perceptual hash (imagehash's phash as 16 hex digits), computed during processing",
            ],
            "exif": ["type": "object", "additionalProperties": ["type": "string"]],
            "created_at": timestamp, "updated_at": timestamp,
        ]
        let progress: [String: JSONValue] = [
            "model": ["type": "string", "description": "The current embedder's model id."],
            "total": ["type": "integer"], "current": ["type": "integer"], "stale": ["type": "integer"],
            "pending": ["type": "integer"], "processing": ["type": "integer"], "failed": ["type": "integer"],
        ]
        return [
            "EmbeddingProgress": object(progress, required: progress.keys.sorted()),
            "ReprocessAll": object(
                [
                    "scope": ["type": "string", "enum": ["stale", "all"]], "queued": ["type": "integer"],
                    "progress": ref("EmbeddingProgress"),
                ], required: ["scope", "queued", "progress"]),
            "Image": object(image, required: image.keys.sorted()),
            "ImageList": list("images", "Image"),
            "Collection": object(
                [
                    "id": uuid, "name": ["type": ["string", "null"]], "description": ["type": ["string", "null"]],
                    "image_count": ["type": "integer", "minimum": 0], "cover_image_id": nullableUUID,
                    "created_at": nullableTimestamp, "updated_at": nullableTimestamp,
                ],
                required: ["id", "name", "description", "image_count", "cover_image_id", "created_at", "updated_at"]),
            "CollectionList": list("collections", "Collection"),
            "CreateCollection": object(["name": name, "description": description], required: ["name"]),
            "UpdateCollection": object(
                ["name": name, "description": description, "cover_image_id": nullableUUID], required: []),
            "NearDuplicates": object(
                [
                    "image_id": uuid, "max_distance": ["type": "integer"],
                    "duplicates": [
                        "type": "array",
                        "items": object(
                            ["image": ref("Image"), "distance": ["type": "integer", "minimum": 0, "maximum": 64]],
                            required: ["image", "distance"]),
                    ],
                    "total": ["type": "integer"], "skip": ["type": "integer"], "limit": ["type": "integer"],
                ], required: ["image_id", "max_distance", "duplicates", "total", "skip", "limit"]),
            "NearDuplicateGroups": object(
                [
                    "max_distance": ["type": "integer"],
                    "groups": [
                        "type": "array",
                        "items": object(
                            [
                                "size": ["type": "integer", "minimum": 2],
                                "images": ["type": "array", "items": ref("Image"), "maxItems": 20],
                            ], required: ["size", "images"]),
                    ],
                    "total": ["type": "integer"], "skip": ["type": "integer"], "limit": ["type": "integer"],
                ], required: ["max_distance", "groups", "total", "skip", "limit"]),
            "DeadLetter": object(
                [
                    "message_id": ["type": "string"], "topic": ["type": "string"], "image_id": uuid,
                    "reason": ["type": "string"], "attempts": ["type": "integer"], "last_error": ["type": "string"],
                    "source": ["type": "string", "enum": ["handler", "delivery"]], "dead_at": timestamp,
                ],
                required: [
                    "message_id", "topic", "image_id", "reason", "attempts", "last_error", "source", "dead_at",
                ]),
            "DeadLetterList": list("dead_letters", "DeadLetter"),
            "ImageUpload": object(
                [
                    "file": ["type": "string", "format": "binary", "minLength": 1], "description": description,
                    "tags": [
                        "type": "string",
                        "description":
                            "Comma-separated, at most 50 tags of at most 50 characters; the field may repeat.",
                        "allOf": [["pattern": .string(plainText)], ["pattern": "^[^,]{0,50}(,[^,]{0,50}){0,49}$"]],
                    ],
                    "collection_id": uuid, "allow_duplicate": ["type": "boolean"],
                ], required: ["file"]),
            "UpdateImage": object(
                ["description": description, "tags": nullableTags, "collection_id": nullableUUID], required: []),
            "SearchRequest": object(
                [
                    // `null` anywhere means "not given"; exactly one of query and image_id is given.
                    "query": orNull(searchText), "image_id": nullableUUID,
                    "skip": ["type": ["integer", "null"], "minimum": 0, "maximum": 2_147_483_647, "default": 0],
                    "limit": ["type": ["integer", "null"], "minimum": 1, "maximum": 50, "default": 10],
                    "similarity_threshold": [
                        "type": ["number", "null"], "minimum": 0, "maximum": 1, "default": .decimal(0.7),
                    ],
                    "collection_id": nullableUUID, "tags": nullableTags, "uploaded_from": nullableInputTimestamp,
                    "uploaded_to": nullableInputTimestamp,
                    "mode": [
                        "type": ["string", "null"], "pattern": "^(hybrid|semantic|text|similar)$",
                        "description": .string(searchModeText + "; with image_id, similar (or null)"),
                    ],
                ], required: [],
                oneOf: [
                    [
                        // A text (image_id absent or null), in a text mode.
                        "required": ["query"],
                        "properties": [
                            "query": searchText, "image_id": ["type": "null"],
                            "mode": ["type": ["string", "null"], "pattern": "^(hybrid|semantic|text)$"],
                        ],
                    ],
                    [
                        // An image (query absent or null), in mode similar.
                        "required": ["image_id"],
                        "properties": [
                            "image_id": uuid, "query": ["type": "null"],
                            "mode": ["type": ["string", "null"], "pattern": "^similar$"],
                        ],
                    ],
                ]),
            "SearchResults": object(
                [
                    "results": [
                        "type": "array",
                        "items": object(
                            [
                                "image": ref("Image"), "score": ["type": "number", "minimum": 0, "maximum": 1],
                                "semantic_score": ["type": ["number", "null"], "minimum": 0, "maximum": 1],
                                "semantic_rank": ["type": ["integer", "null"], "minimum": 1],
                                "text_score": ["type": ["number", "null"], "minimum": 0, "maximum": 1],
                                "text_rank": ["type": ["integer", "null"], "minimum": 1],
                            ],
                            required: ["image", "score", "semantic_score", "semantic_rank", "text_score", "text_rank"]),
                    ],
                    "total": ["type": "integer"], "skip": ["type": "integer"], "limit": ["type": "integer"],
                    "similarity_threshold": ["type": "number"], "query": nullableString, "image_id": nullableUUID,
                    "mode": ["type": "string", "enum": ["hybrid", "semantic", "text", "similar"]],
                    "model": nullableString,
                    "notice": [
                        "type": ["string", "null"],
                        "description":
                            "Set when a text query could only search words (mode text): why, and how to enable semantic search.",
                    ],
                ],
                required: [
                    "results", "total", "skip", "limit", "similarity_threshold", "query", "image_id", "mode", "model",
                    "notice",
                ]),
        ]
    }
}
