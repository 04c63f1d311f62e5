import Crypto
import Foundation
import FunctionsFramework
import Hummingbird
import ImageAPICore
import ImageAPIHTTP
import MultipartKit
import NIOCore

/// A `multipart/form-data` upload read as it arrives: the `file` part is streamed into a staged
/// local file (hashed and size-checked on the way), the small text fields are kept in memory.
struct MultipartUpload {
    /// The file part, staged locally; not yet stored.
    let file: StagedFile
    /// The file name the client gave.
    let filename: String?
    /// The file's size in bytes.
    let size: Int
    /// Lower-case hex SHA-256 of the file.
    let sha256: String
    /// The file's first bytes, for format sniffing.
    let prefix: [UInt8]
    /// Text fields by name; repeated fields keep every value.
    let fields: [String: [String]]

    /// The largest text field accepted.
    static let maxFieldBytes = 16 * 1024

    /// Reads the request body.
    /// - Throws: 413 when the file exceeds `maxFileBytes`, 422 when the form is malformed or has
    ///   no `file` part. The staged file is removed on any error.
    static func read(_ call: FunctionRequest, staging: StagingFolder, maxFileBytes: Int) async throws -> MultipartUpload
    {
        guard let boundary = boundary(call.headers[.contentType]) else {
            throw ValidationError(
                loc: ["body"], msg: "Expected a multipart/form-data body with a boundary", type: "multipart_expected")
        }
        let events = EventBuffer()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in events.items.append(.header(name, value)) }
        parser.onBody = { buffer in events.items.append(.body(buffer)) }
        parser.onPartComplete = { events.items.append(.partComplete) }

        var state = ReadState()
        do {
            for try await chunk in call.request.body {
                do {
                    try parser.execute(chunk)
                } catch {
                    throw ValidationError(loc: ["body"], msg: "Malformed multipart body", type: "multipart_invalid")
                }
                let items = events.items
                events.items.removeAll(keepingCapacity: true)
                for item in items {
                    try await state.handle(item, staging: staging, maxFileBytes: maxFileBytes)
                }
            }
        } catch {
            await state.blob?.remove()
            throw error
        }
        guard let blob = state.blob, state.fileComplete else {
            await state.blob?.remove()
            throw ValidationError(loc: ["body", "file"], msg: "Field required", type: "missing")
        }
        return MultipartUpload(
            file: blob, filename: state.filename, size: state.fileSize,
            sha256: state.hasher.finalize().map { String(format: "%02x", $0) }.joined(), prefix: state.prefix,
            fields: state.fields)
    }

    /// The boundary parameter of a `multipart/form-data` content type.
    static func boundary(_ contentType: String?) -> String? {
        guard let contentType else { return nil }
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty || value.count > 200 ? nil : value
            }
        }
        return nil
    }

    /// Reads a parameter of a `Content-Disposition` header, such as `name` or `filename`.
    static func dispositionParameter(_ name: String, in header: String) -> String? {
        var rest = Substring(header)
        while let semicolon = rest.firstIndex(of: ";") {
            rest = rest[rest.index(after: semicolon)...]
            let trimmed = rest.drop(while: { $0 == " " })
            guard let equals = trimmed.firstIndex(of: "=") else { return nil }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = trimmed[trimmed.index(after: equals)...]
            var result: String
            if value.first == "\"" {
                value = value.dropFirst()
                var text = ""
                var escaped = false
                var end = value.endIndex
                for index in value.indices {
                    let character = value[index]
                    if escaped {
                        text.append(character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        end = index
                        break
                    } else {
                        text.append(character)
                    }
                }
                result = text
                rest = end < value.endIndex ? value[value.index(after: end)...] : ""
            } else {
                let end = value.firstIndex(of: ";") ?? value.endIndex
                result = value[..<end].trimmingCharacters(in: .whitespaces)
                rest = value[end...]
            }
            if key == name { return result }
        }
        return nil
    }

    private final class EventBuffer {
        var items: [Event] = []
    }

    private enum Event {
        case header(String, String)
        case body(ByteBuffer)
        case partComplete
    }

    private struct ReadState {
        var partName: String?
        var partFilename: String?
        var fieldBytes: [UInt8] = []
        var blob: StagedFile?
        var filename: String?
        var fileSize = 0
        var fileComplete = false
        var prefix: [UInt8] = []
        var hasher = SHA256()
        var fields: [String: [String]] = [:]

        mutating func handle(_ event: Event, staging: StagingFolder, maxFileBytes: Int) async throws {
            switch event {
            case .header(let name, let value):
                if name.lowercased() == "content-disposition" {
                    partName = MultipartUpload.dispositionParameter("name", in: value)
                    partFilename = MultipartUpload.dispositionParameter("filename", in: value)
                }
            case .body(let buffer):
                if partName == "file" {
                    guard blob == nil || !fileComplete else {
                        throw ValidationError(
                            loc: ["body", "file"], msg: "Only one file may be sent", type: "too_many_files")
                    }
                    if blob == nil {
                        blob = try await staging.begin()
                        filename = partFilename
                    }
                    fileSize += buffer.readableBytes
                    if fileSize > maxFileBytes {
                        throw FunctionError(
                            .contentTooLarge,
                            "File is larger than the limit of \(maxFileBytes) bytes (MAX_UPLOAD_BYTES)")
                    }
                    buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    if prefix.count < ImageFormat.sniffLength {
                        prefix +=
                            buffer.getBytes(
                                at: buffer.readerIndex,
                                length: min(buffer.readableBytes, ImageFormat.sniffLength - prefix.count)) ?? []
                    }
                    try await blob!.write(Data(buffer.readableBytesView))
                } else if partName != nil {
                    fieldBytes += buffer.readableBytesView
                    if fieldBytes.count > MultipartUpload.maxFieldBytes {
                        throw ValidationError(
                            loc: ["body", partName ?? ""],
                            msg: "Field is longer than \(MultipartUpload.maxFieldBytes) bytes", type: "string_too_long")
                    }
                }
            case .partComplete:
                if partName == "file" {
                    if blob == nil {  // an empty file part
                        blob = try await staging.begin()
                        filename = partFilename
                    }
                    fileComplete = true
                } else if let partName {
                    fields[partName, default: []].append(String(decoding: fieldBytes, as: UTF8.self))
                }
                partName = nil
                partFilename = nil
                fieldBytes = []
            }
        }
    }
}
