import Foundation
import FunctionHosting
import FunctionsFramework
import ImageAPICore
import ImageAPIHTTP
import ImageHosting
import Logging
import Testing

@testable import Emulator

@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    func servedEndpoints() async throws -> Set<String> {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let configuration = try HostConfiguration(EnvironmentVariables(["DATA_DIR": folder]))
        let services = try await FunctionHost.makeServices(configuration, logger: Logger(label: "openapi-test"))
        let images = try await ImageHost.makeImageServices(services)
        let (_, routes) = FunctionServer.buildRouter(
            functions: Emulator.functions(services, images: images), configuration: ServerConfiguration(), readiness: {}
        )
        return Set(routes.endpoints.map(\.description))
    }

    @Test("documents exactly the routes the emulator registers")
    func matchesRoutes() async throws {
        let served = try await servedEndpoints()
        let documented = OpenAPIDocument.operations
        #expect(
            served.subtracting(documented).isEmpty,
            "served but undocumented: \(served.subtracting(documented).sorted())")
        #expect(
            documented.subtracting(served).isEmpty,
            "documented but not served: \(documented.subtracting(served).sorted())")
        #expect(served.count >= 20)
    }

    @Test("is OpenAPI 3.1 and every $ref points at a defined schema")
    func referencesResolve() throws {
        let data = try JSONEncoder().encode(OpenAPIDocument.document)
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        var references: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let reference = object["$ref"] as? String { references.append(reference) }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(document)
        #expect(!references.isEmpty)
        for reference in references {
            let name = reference.replacingOccurrences(of: "#/components/schemas/", with: "")
            #expect(schemas[name] != nil, "unresolved \(reference)")
        }
    }

    @Test("response timestamps match the documented pattern on every day of the month")
    func responseTimestampsMatch() throws {
        let data = try JSONEncoder().encode(OpenAPIDocument.document)
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let team = try #require((schemas["Team"] as? [String: Any])?["properties"] as? [String: Any])
        let pattern = try #require((team["created_at"] as? [String: Any])?["pattern"] as? String)
        let expression = try NSRegularExpression(pattern: pattern)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for (month, day) in [(1, 1), (2, 28), (2, 29), (11, 30), (12, 31)] {
            let date = try #require(
                calendar.date(
                    from: DateComponents(year: 2028, month: month, day: day, hour: 23, minute: 59, second: 58)))
            let text = JSONCoding.timestamp(date.addingTimeInterval(0.123))
            let range = NSRange(text.startIndex..., in: text)
            #expect(expression.firstMatch(in: text, range: range) != nil, "\(text) does not match \(pattern)")
        }
    }
}

@Suite("OpenAPI document: text patterns")
struct OpenAPITextPatternTests {
    @Test("the document's text patterns refuse exactly the characters the input rules refuse, across the BMP")
    func patternsMatchInputRules() throws {
        for (pattern, lineBreaks) in [(OpenAPIDocument.plainText, false), (OpenAPIDocument.multilineText, true)] {
            let expression = try NSRegularExpression(pattern: pattern)
            var disagreements: [String] = []
            for value in UInt32(0)...0xFFFF where !(0xD800...0xDFFF).contains(value) {
                let scalar = try #require(Unicode.Scalar(value))
                let text = "a" + String(Character(scalar)) + "b"
                let range = NSRange(text.startIndex..., in: text)
                let admitted = expression.firstMatch(in: text, range: range) != nil
                if admitted == InputRules.isForbidden(scalar, allowsLineBreaks: lineBreaks) {
                    disagreements.append("U+" + String(value, radix: 16, uppercase: true))
                }
            }
            #expect(disagreements.isEmpty, "line breaks \(lineBreaks): \(disagreements.prefix(20))")
        }
    }
}
