import Foundation
import FunctionsFramework
import HTTPTypes
import Hummingbird
import ImageAPICore
import ImageAPIHTTP
import NIOCore

/// Streams a blob as an HTTP response with `ETag` revalidation (304) and single byte ranges
/// (206, or 416 when the range is outside the blob).
enum BlobResponse {
    /// `inline`, with the original file name.
    static func contentDisposition(filename: String) -> String {
        "inline; filename=\"\(quoted(filename))\""
    }

    static func make(
        _ call: FunctionRequest, blobs: any BlobStore, key: String, contentType: String, etag: String,
        filename: String?
    ) async throws -> Response {
        guard let size = try await blobs.size(at: key) else {
            throw FunctionError.notFound("Image data not found")
        }
        var headers: HTTPFields = [
            .eTag: etag, .acceptRanges: "bytes", .cacheControl: "private, max-age=3600",
        ]
        if let filename { headers[.contentDisposition] = contentDisposition(filename: filename) }
        if let match = call.headers[.ifNoneMatch], Self.matches(match, etag: etag) {
            return Response(status: .notModified, headers: headers)
        }
        var status = HTTPResponse.Status.ok
        var range: Range<Int>?
        if let header = call.headers[.range], Self.ifRangeAllows(call.headers[.ifRange], etag: etag) {
            switch ByteRange.parse(header, size: size) {
            case .none:
                break
            case .unsatisfiable:
                throw FunctionError(
                    .rangeNotSatisfiable, "Range \(header) is outside the \(size) bytes of the file",
                    headers: [.contentRange: "bytes */\(size)"])
            case .satisfiable(let bytes):
                status = .partialContent
                range = bytes
                headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound - 1)/\(size)"
            }
        }
        headers[.contentType] = contentType
        headers[.contentLength] = String(range?.count ?? size)
        let chunks = try await blobs.read(at: key, range: range).map { ByteBuffer(bytes: $0) }
        return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: chunks))
    }

    /// Whether an `If-None-Match` list names the entity (weak comparison, as RFC 9110 asks).
    static func matches(_ header: String, etag: String) -> Bool {
        let strong = etag.hasPrefix("W/") ? String(etag.dropFirst(2)) : etag
        return header.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == strong || tag == "W/" + strong
        }
    }

    /// A range is honoured without `If-Range`, or when `If-Range` carries the current ETag.
    static func ifRangeAllows(_ header: String?, etag: String) -> Bool {
        guard let header else { return true }
        return header.trimmingCharacters(in: .whitespaces) == etag
    }

    static func quoted(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.isASCII && $0 != "\"" && $0 != "\\" }.map(Character.init))
    }
}

/// A parsed `Range: bytes=...` header.
enum ByteRange: Equatable {
    /// No usable single range: serve the whole file.
    case none
    /// A syntactically valid range outside the file: 416.
    case unsatisfiable
    /// The bytes to serve.
    case satisfiable(Range<Int>)

    /// Parses a single byte range (`a-b`, `a-`, `-n`). Several ranges, other units or bad syntax
    /// give `.none`, so the whole file is sent, as RFC 9110 allows.
    static func parse(_ header: String, size: Int) -> ByteRange {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .none }
        let spec = trimmed.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .none }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        if first.isEmpty {
            guard let suffix = Int(last), suffix >= 0 else { return .none }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .satisfiable(max(0, size - suffix)..<size)
        }
        guard let start = Int(first), start >= 0 else { return .none }
        var end = size - 1
        if !last.isEmpty {
            guard let value = Int(last), value >= start else { return .none }
            end = min(value, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .satisfiable(start..<end + 1)
    }
}
