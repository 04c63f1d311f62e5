import Foundation
import FunctionsFramework

/// The OpenAPI 3.1 description of every route the emulator serves, which is also the union of
/// the routes the deployed functions serve. A test compares its paths and methods with the
/// registered routes, so the two cannot drift apart.
public enum OpenAPIDocument {
    /// The whole document.
    public static var document: JSONValue {
        [
            "openapi": "3.1.0",
            "info": [
                "title": "Image Management API",
                "version": "1.0.0",
                "description": """
                Teams, users, API keys, images and search for the self-hostable image management API. Management \
                endpoints are public when ENVIRONMENT=development and need an admin key when \
                ENVIRONMENT=production. Errors are JSON: {"detail": "..."}, or for 422 a list of \
                {loc, msg, type}.
                """,
            ],
            "servers": [["url": "/"]],
            "security": [["apiKeyHeader": []], ["bearer": []]],
            "tags": [
                ["name": "teams"], ["name": "users"], ["name": "api-keys"], ["name": "images"], ["name": "collections"],
                ["name": "search"],
                ["name": "events"], ["name": "operations"],
            ],
            "paths": .object(paths.merging(imagePaths) { $1 }),
            "components": [
                "schemas": .object(schemas.merging(imageSchemas) { $1 }), "securitySchemes": securitySchemes,
            ],
        ]
    }

    /// Every `(method, path)` pair the document describes, methods upper-case.
    public static var operations: Set<String> {
        var result: Set<String> = []
        for (path, item) in paths.merging(imagePaths, uniquingKeysWith: { $1 }) {
            for method in (item.object ?? [:]).keys where method != "parameters" {
                result.insert("\(method.uppercased()) \(path)")
            }
        }
        return result
    }

    // MARK: Paths

    static let teamID = pathParameter("team_id", "The team's id.")
    static let userID = pathParameter("user_id", "The user's id.")
    static let keyID = pathParameter("key_id", "The key's id.")
    static let skip: JSONValue = [
        "name": "skip", "in": "query", "required": false, "description": "How many items to skip.",
        "schema": ["type": "integer", "minimum": 0, "maximum": 2_147_483_647, "default": 0],
    ]
    static let limit: JSONValue = [
        "name": "limit", "in": "query", "required": false, "description": "How many items to return.",
        "schema": ["type": "integer", "minimum": 1, "maximum": 100, "default": 50],
    ]

    static var paths: [String: JSONValue] {
        [
            "/healthz": ["get": operation("operations", "Liveness", public: true, responses: ["200": status])],
            "/metrics": [
                "get": operation(
                    "operations",
                    """
                    The process's metrics in the Prometheus text format: open in development; in production \
                    only with METRICS_TOKEN as a bearer token, and not served without it
                    """,
                    public: true,
                    responses: [
                        "200": [
                            "description": "The metrics",
                            "content": ["text/plain; version=0.0.4; charset=utf-8": ["schema": ["type": "string"]]],
                        ],
                        "401": error("METRICS_TOKEN is set and the bearer token is not it"),
                    ])
            ],
            "/readyz": [
                "get": operation(
                    "operations", "Readiness: the metadata store answers", public: true,
                    responses: ["200": status, "503": error("Storage unreachable")])
            ],
            "/openapi.json": [
                "get": operation(
                    "operations", "This document", public: true,
                    responses: ["200": ["description": "The OpenAPI document", "content": json(["type": "object"])]])
            ],
            "/docs": [
                "get": operation(
                    "operations", "Interactive documentation (Swagger UI)", public: true,
                    responses: [
                        "200": ["description": "HTML page", "content": ["text/html": ["schema": ["type": "string"]]]]
                    ])
            ],
            "/api/v1/teams": [
                "post": operation(
                    "teams", "Create a team", management: true, body: ref("CreateTeam"),
                    responses: ["201": ok("Team", "The team")]),
                "get": operation(
                    "teams", "List teams, oldest first", management: true, parameters: [skip, limit],
                    responses: ["200": ok("TeamList", "A page of teams")]),
            ],
            "/api/v1/teams/{team_id}": [
                "get": operation(
                    "teams", "Read a team", management: true, parameters: [teamID],
                    responses: ["200": ok("Team", "The team"), "404": error("No such team")]),
                "put": operation(
                    "teams", "Update a team's name or description", management: true, parameters: [teamID],
                    body: ref("UpdateTeam"), responses: ["200": ok("Team", "The team"), "404": error("No such team")]),
                "delete": operation(
                    "teams", "Delete a team that has no users or images", management: true, parameters: [teamID],
                    responses: [
                        "204": ["description": "Deleted"], "404": error("No such team"),
                        "409": error("The team still has users or images"),
                    ]),
            ],
            "/api/v1/users": [
                "post": operation(
                    "users", "Create a user", management: true, body: ref("CreateUser"),
                    responses: [
                        "201": ok("User", "The user"), "404": error("No such team"),
                        "409": error("E-mail already used (compared without case)"),
                    ]),
                "get": operation(
                    "users", "List users, oldest first", management: true,
                    parameters: [
                        skip, limit,
                        [
                            "name": "team_id", "in": "query", "required": false,
                            "description": "Only this team's users.",
                            "schema": uuid,
                        ],
                    ],
                    responses: ["200": ok("UserList", "A page of users")]),
            ],
            "/api/v1/users/me": [
                "get": operation(
                    "users", "Read the caller's own user (development: or the user given by user_id, without a key)",
                    management: true, parameters: [meUserID],
                    responses: ["200": ok("User", "The user"), "404": error("No such user")]),
                "put": operation(
                    "users",
                    "Change the caller's own name or e-mail (development: or the user_id's, without a key)",
                    management: true, parameters: [meUserID], body: ref("UpdateMe"),
                    responses: [
                        "200": ok("User", "The user"), "404": error("No such user"),
                        "409": error("E-mail already used"),
                    ]),
            ],
            "/api/v1/users/{user_id}": [
                "get": operation(
                    "users", "Read a user", management: true, parameters: [userID],
                    responses: ["200": ok("User", "The user"), "404": error("No such user")]),
                "put": operation(
                    "users", "Update a user", management: true, parameters: [userID], body: ref("UpdateUser"),
                    responses: [
                        "200": ok("User", "The user"), "404": error("No such user or team"),
                        "409": error("E-mail already used"),
                    ]),
                "delete": operation(
                    "users", "Delete a user and revoke all of their keys", management: true, parameters: [userID],
                    responses: ["204": ["description": "Deleted"], "404": error("No such user")]),
            ],
            "/api/v1/auth/api-keys": [
                "post": operation(
                    "api-keys", "Create a key for a user of a team; the key text is shown once", management: true,
                    parameters: [
                        queryUUID("user_id", "The key's owner.", required: true),
                        queryUUID("team_id", "The owner's team.", required: true),
                    ],
                    body: ref("CreateAPIKey"),
                    responses: [
                        "201": ok("CreatedAPIKey", "The key, with its text in `key`"),
                        "404": error("No such team, or the user is not in it"),
                        "409": error("The user is deactivated"),
                    ]),
                "get": operation(
                    "api-keys",
                    "List the caller's own keys, or (admin) any user's with user_id; never their text",
                    parameters: [
                        skip, limit, queryUUID("user_id", "Whose keys (admin; default: the caller).", required: false),
                    ],
                    responses: [
                        "200": ok("APIKeyList", "A page of keys"),
                        "403": error("user_id names another user and the caller is not an admin"),
                        "404": error("No such user"),
                    ]),
            ],
            "/api/v1/auth/api-keys/{key_id}": [
                "delete": operation(
                    "api-keys", "Revoke one of the caller's keys, or, for an admin, any key of any team",
                    parameters: [keyID],
                    responses: ["204": ["description": "Revoked"], "404": error("No such key visible to the caller")])
            ],
            "/api/v1/auth/admin/api-keys/{user_id}": [
                "post": operation(
                    "api-keys", "Create a key for any user (admin key required)", parameters: [userID],
                    body: ref("CreateAPIKey"),
                    responses: [
                        "201": ok("CreatedAPIKey", "The key, with its text in `key`"),
                        "403": error("The caller is not an admin"), "404": error("No such user"),
                        "409": error("The user is deactivated"),
                    ])
            ],
            "/api/v1/auth/verify": [
                "get": operation(
                    "api-keys", "Tell who the presented key belongs to",
                    responses: ["200": ok("KeyVerification", "The key's owner")])
            ],
        ]
    }

    static let meUserID: JSONValue = [
        "name": "user_id", "in": "query", "required": false,
        "description":
            "Development: the user to act as (or send a key instead). Production: optional, must be the key owner.",
        "schema": uuid,
    ]

    static let status: JSONValue = [
        "description": "OK",
        "content": json(["type": "object", "properties": ["status": ["type": "string"]], "required": ["status"]]),
    ]

    static func operation(
        _ tag: String, _ summary: String, public isPublic: Bool = false, management: Bool = false,
        parameters: [JSONValue] = [], body: JSONValue? = nil, responses: [String: JSONValue],
        multipart: JSONValue? = nil
    ) -> JSONValue {
        var responses = responses
        if !isPublic {
            responses["401"] = error("Missing, malformed, unknown, revoked or expired key")
            responses["429"] = error("Too many failed authentications from this client (see Retry-After)")
            if management && responses["403"] == nil {
                responses["403"] = error("Production only: the key's owner is not an admin")
            }
        }
        if body != nil {
            responses["415"] = error("The body is not sent as Content-Type: application/json")
        }
        if body != nil || multipart != nil || !parameters.isEmpty {
            responses["422"] = [
                "description": "Invalid input", "content": json(ref("ValidationError")),
            ]
        }
        var result: [String: JSONValue] = [
            "tags": [.string(tag)], "summary": .string(summary), "responses": .object(responses),
        ]
        if isPublic || management {
            // Management routes are public in development; the security list keeps both options.
            result["security"] = isPublic ? [] : [[:], ["apiKeyHeader": []], ["bearer": []]]
        }
        if !parameters.isEmpty { result["parameters"] = .array(parameters) }
        if let body { result["requestBody"] = ["required": true, "content": json(body)] }
        if let multipart {
            result["requestBody"] = ["required": true, "content": ["multipart/form-data": ["schema": multipart]]]
        }
        return .object(result)
    }

    static func pathParameter(_ name: String, _ description: String) -> JSONValue {
        [
            "name": .string(name), "in": "path", "required": true, "description": .string(description),
            "schema": uuid,
        ]
    }

    static func queryUUID(_ name: String, _ description: String, required: Bool) -> JSONValue {
        [
            "name": .string(name), "in": "query", "required": .bool(required), "description": .string(description),
            "schema": uuid,
        ]
    }

    static func json(_ schema: JSONValue) -> JSONValue { ["application/json": ["schema": schema]] }
    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }
    static func ok(_ schema: String, _ description: String) -> JSONValue {
        ["description": .string(description), "content": json(ref(schema))]
    }
    static func error(_ description: String) -> JSONValue {
        ["description": .string(description), "content": json(ref("Error"))]
    }

    // MARK: Schemas

    /// Identifiers: UUIDs, in either case.
    static let uuidPattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    static let uuid: JSONValue = ["type": "string", "format": "uuid", "pattern": .string(uuidPattern)]
    /// Text without control, bidirectional-control or invisible format characters (what
    /// ``InputRules`` refuses; the tag characters U+E0000 to U+E007F, beyond the BMP, are refused
    /// too but a pattern of UTF-16 units cannot name them).
    static let plainText =
        #"^[^\u0000-\u001F\u007F-\u009F\u00AD\u180E\u200B-\u200F\u061C\u202A-\u202E\u2060-\u2064\u2066-\u2069\u2028\u2029\uFEFF\uFFFE\uFFFF]*$"#
    /// The same, with tab and line breaks allowed (descriptions).
    static let multilineText =
        #"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u180E\u200B-\u200F\u061C\u202A-\u202E\u2060-\u2064\u2066-\u2069\u2028\u2029\uFEFF\uFFFE\uFFFF]*$"#
    /// RFC 3339 timestamps as the server writes them (any day of the month).
    static let timestampPattern =
        #"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"#
    static let timestamp: JSONValue = ["type": "string", "format": "date-time", "pattern": .string(timestampPattern)]
    static let nullableTimestamp: JSONValue = [
        "type": ["string", "null"], "format": "date-time", "pattern": .string(timestampPattern),
    ]
    /// Timestamps a client sends: days 01-28 only, so that every string the pattern admits is a
    /// real date (a generator would otherwise send February 30th, which the server refuses).
    static let inputTimestampPattern =
        #"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"#
    static let inputTimestamp: JSONValue = [
        "type": "string", "format": "date-time", "pattern": .string(inputTimestampPattern),
    ]
    static let nullableInputTimestamp: JSONValue = [
        "type": ["string", "null"], "format": "date-time", "pattern": .string(inputTimestampPattern),
    ]

    /// The same schema with `null` allowed too: optional body fields where `null` means "not given".
    static func orNull(_ schema: JSONValue) -> JSONValue {
        guard var object = schema.object, case .string(let type) = object["type"] else { return schema }
        object["type"] = [.string(type), "null"]
        return .object(object)
    }
    static let name: JSONValue = [
        "type": "string", "minLength": 1, "maxLength": 100, "pattern": .string(plainText),
    ]
    static let description: JSONValue = [
        "type": ["string", "null"], "maxLength": 1000, "pattern": .string(multilineText),
    ]
    static let email: JSONValue = [
        "type": "string", "format": "email", "maxLength": 254, "pattern": .string(plainText),
    ]

    static func object(_ properties: [String: JSONValue], required: [String], oneOf: [JSONValue]? = nil) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) }),
        ]
        if let oneOf { schema["oneOf"] = .array(oneOf) }
        return .object(schema)
    }

    static func list(_ itemsName: String, _ item: String) -> JSONValue {
        object(
            [
                itemsName: ["type": "array", "items": ref(item)], "total": ["type": "integer"],
                "skip": ["type": "integer"], "limit": ["type": "integer"],
            ], required: [itemsName, "total", "skip", "limit"])
    }

    static let keyProperties: [String: JSONValue] = [
        "id": uuid, "name": name, "description": description, "prefix": ["type": "string"], "user_id": uuid,
        "team_id": uuid, "created_at": timestamp, "expires_at": timestamp, "last_used_at": nullableTimestamp,
        "is_active": ["type": "boolean"],
    ]
    static let keyRequired = [
        "id", "name", "description", "prefix", "user_id", "team_id", "created_at", "expires_at", "last_used_at",
        "is_active",
    ]

    static var schemas: [String: JSONValue] {
        var createdKey = keyProperties
        createdKey["key"] = ["type": "string", "description": "The key text. Shown only in this answer."]
        return [
            "Error": object(["detail": ["type": "string"]], required: ["detail"]),
            "ValidationError": object(
                [
                    "detail": [
                        "type": "array",
                        "items": object(
                            [
                                "loc": ["type": "array", "items": ["type": "string"]], "msg": ["type": "string"],
                                "type": ["type": "string"],
                            ], required: ["loc", "msg", "type"]),
                    ]
                ], required: ["detail"]),
            "Team": object(
                [
                    "id": uuid, "name": name, "description": description, "created_at": timestamp,
                    "updated_at": timestamp,
                ],
                required: ["id", "name", "description", "created_at", "updated_at"]),
            "TeamList": list("teams", "Team"),
            "CreateTeam": object(["name": name, "description": description], required: ["name"]),
            "UpdateTeam": object(
                [
                    "name": [
                        "type": ["string", "null"], "minLength": 1, "maxLength": 100, "pattern": .string(plainText),
                    ], "description": description,
                ],
                required: []),
            "User": object(
                [
                    "id": uuid, "email": email, "name": name, "team_id": uuid, "is_admin": ["type": "boolean"],
                    "is_active": ["type": "boolean"], "created_at": timestamp, "updated_at": timestamp,
                ],
                required: ["id", "email", "name", "team_id", "is_admin", "is_active", "created_at", "updated_at"]),
            "UserList": list("users", "User"),
            "CreateUser": object(
                [
                    "email": email, "name": name, "team_id": uuid,
                    "is_admin": ["type": ["boolean", "null"], "default": false],
                ],
                required: ["email", "name", "team_id"]),
            "UpdateUser": object(
                [
                    "email": orNull(email), "name": orNull(name), "team_id": orNull(uuid),
                    "is_admin": ["type": ["boolean", "null"]], "is_active": ["type": ["boolean", "null"]],
                ], required: []),
            "UpdateMe": object(["email": orNull(email), "name": orNull(name)], required: []),
            "CreateAPIKey": object(["name": name, "description": description], required: ["name"]),
            "APIKey": object(keyProperties, required: keyRequired),
            "CreatedAPIKey": object(createdKey, required: keyRequired + ["key"]),
            "APIKeyList": list("api_keys", "APIKey"),
            "KeyVerification": object(
                [
                    "user_id": uuid, "team_id": uuid, "is_admin": ["type": "boolean"], "key_id": uuid,
                    "expires_at": timestamp,
                ], required: ["user_id", "team_id", "is_admin", "key_id", "expires_at"]),
        ]
    }

    static let securitySchemes: JSONValue = [
        "apiKeyHeader": ["type": "apiKey", "in": "header", "name": "X-API-Key"],
        "bearer": ["type": "http", "scheme": "bearer", "description": "The API key as a bearer token"],
    ]
}
