import ApiKeys
import FunctionHosting
import FunctionsFramework
import Hummingbird
import ImageAPICore
import ManageTeams
import ManageUsers
import ProcessEmbedding
import Search
import UploadImage

/// The local function emulator: every function on one port, with the routes the deployment
/// uses, plus the documentation endpoints.
public enum Emulator {
    /// Every function the emulator serves, in the order their routes are registered.
    /// - Parameters:
    ///   - services: The wired services.
    ///   - images: The image pipeline's ports.
    /// - Returns: The functions, documentation included.
    public static func functions(_ services: HostedServices, images: ImageServices) -> [any HTTPFunction] {
        [
            ManageTeamsFunction(services: services.api),
            ManageUsersFunction(services: services.api),
            ApiKeysFunction(services: services.api),
            UploadImageFunction(api: services.api, images: images),
            CollectionsFunction(api: services.api, images: images),
            CloudEventEndpoint(
                ProcessEmbeddingFunction(api: services.api, images: images),
                authenticator: services.eventAuthenticator),
            DeadLettersFunction(api: services.api, images: images),
            SearchFunction(api: services.api, images: images),
            DocumentationFunction(),
        ]
    }
}

/// Serves `/openapi.json` and a Swagger UI page at `/docs`.
public struct DocumentationFunction: HTTPFunction {
    /// The function's name.
    public let name = "docs"

    /// Creates the function.
    public init() {}

    /// Registers the two documentation endpoints.
    /// - Parameter routes: The route table.
    public func registerEndpoints(on routes: FunctionRoutes) {
        routes.on(.get, "/openapi.json") { _ in OpenAPIDocument.document }
        routes.on(.get, "/docs") { _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: Self.page)))
        }
    }

    /// Swagger UI, loaded by the browser from the jsDelivr CDN, reading `/openapi.json`.
    static let page = """
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <title>Image Management API</title>
          <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
        </head>
        <body>
          <div id="swagger-ui"></div>
          <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
          <script>
            window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
          </script>
        </body>
        </html>
        """
}
