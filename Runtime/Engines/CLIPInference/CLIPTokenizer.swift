import Foundation
import Locking

/// CLIP's byte-level BPE tokenizer, as Hugging Face's fast CLIP tokenizer applies it: NFC
/// normalisation, whitespace runs collapsed to one space, lower-casing, CLIP's pre-tokenisation
/// pattern, UTF-8 bytes mapped to printable characters, BPE merges with an end-of-word `</w>`
/// marker, then start and end tokens around at most `maxLength - 2` tokens.
public final class CLIPTokenizer: Sendable {
    /// The start-of-text token id.
    public let startID: Int32
    /// The end-of-text token id.
    public let endID: Int32
    /// The vocabulary size.
    public var vocabularySize: Int { vocabulary.count }
    private let vocabulary: [String: Int32]
    private let mergeRanks: [String: Int]
    private let byteCharacters: [String]
    private let cache = Locked<[String: [Int32]]>([:])

    /// Builds a tokenizer from `vocab.json` and `merges.txt` contents.
    /// - Parameters:
    ///   - vocabularyJSON: The `vocab.json` bytes (token → id).
    ///   - merges: The `merges.txt` text (a `#version` line, then one merge per line).
    /// - Throws: ``CLIPModelError`` when either file is malformed or lacks the special tokens.
    public convenience init(vocabularyJSON: Data, merges: String) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: vocabularyJSON)) as? [String: Any] else {
            throw CLIPModelError(file: "vocab.json", "not a JSON object of token ids")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(object.count)
        for (token, value) in object {
            guard let id = (value as? NSNumber)?.int32Value else {
                throw CLIPModelError(file: "vocab.json", "the id of \(token) is not an integer")
            }
            vocabulary[token] = id
        }
        var ranks: [String: Int] = [:]
        for line in merges.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix("#version") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw CLIPModelError(file: "merges.txt", "line \"\(line)\" is not two symbols")
            }
            ranks[parts[0] + " " + parts[1]] = ranks.count
        }
        guard !ranks.isEmpty else { throw CLIPModelError(file: "merges.txt", "no merges") }
        try self.init(vocabulary: vocabulary, mergeRanks: ranks)
    }

    /// Builds a tokenizer from the original CLIP `bpe_simple_vocab_16e6.txt` text: the vocabulary
    /// is the 256 byte characters, the same with `</w>`, one token per merge, and the two
    /// special tokens, in that order.
    /// - Parameter originalMerges: The decompressed file's text.
    /// - Throws: ``CLIPModelError`` when it has too few merges.
    public convenience init(originalMerges: String) throws {
        let lines = originalMerges.split(separator: "\n", omittingEmptySubsequences: false)
        let mergeCount = 49152 - 256 - 2
        guard lines.count > mergeCount else {
            throw CLIPModelError(file: "bpe_simple_vocab_16e6.txt.gz", "has \(lines.count) lines, too few merges")
        }
        let merges = lines[1...mergeCount].map { $0.split(separator: " ").map(String.init) }
        // The byte characters in the table's own order: printable bytes first, then the rest.
        let printable = Self.printableBytes
        let byteOrder = printable + (0..<256).filter { !printable.contains($0) }
        var tokens = byteOrder.map { Self.byteToCharacter[$0] }
        tokens += tokens.map { $0 + "</w>" }
        var ranks: [String: Int] = [:]
        for (rank, merge) in merges.enumerated() {
            guard merge.count == 2 else {
                throw CLIPModelError(file: "bpe_simple_vocab_16e6.txt.gz", "merge \(rank + 1) is not two symbols")
            }
            tokens.append(merge[0] + merge[1])
            ranks[merge[0] + " " + merge[1]] = rank
        }
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        var vocabulary: [String: Int32] = [:]
        for (id, token) in tokens.enumerated() { vocabulary[token] = Int32(id) }
        try self.init(vocabulary: vocabulary, mergeRanks: ranks)
    }

    private init(vocabulary: [String: Int32], mergeRanks: [String: Int]) throws {
        guard let start = vocabulary["<|startoftext|>"], let end = vocabulary["<|endoftext|>"] else {
            throw CLIPModelError(file: "vocab.json", "<|startoftext|> or <|endoftext|> is missing")
        }
        for character in Self.byteToCharacter where vocabulary[character + "</w>"] == nil {
            throw CLIPModelError(file: "vocab.json", "the byte token \(character)</w> is missing")
        }
        self.vocabulary = vocabulary
        self.mergeRanks = mergeRanks
        self.byteCharacters = Self.byteToCharacter
        self.startID = start
        self.endID = end
    }

    /// The token ids of a text: start token, at most `maxLength - 2` text tokens, end token.
    /// - Parameters:
    ///   - text: Any text.
    ///   - maxLength: The model's longest sequence (77 for CLIP).
    /// - Returns: Between 2 and `maxLength` ids.
    public func encode(_ text: String, maxLength: Int = 77) -> [Int32] {
        var ids: [Int32] = [startID]
        for piece in Self.pretokenize(Self.normalize(text)) {
            ids += bpe(piece)
            if ids.count >= maxLength - 1 { break }
        }
        if ids.count > maxLength - 1 { ids.removeLast(ids.count - (maxLength - 1)) }
        ids.append(endID)
        return ids
    }

    /// NFC, every run of white space to one space, lower case.
    static func normalize(_ text: String) -> String {
        let composed = text.precomposedStringWithCanonicalMapping
        var result = String.UnicodeScalarView()
        var inSpace = false
        for scalar in composed.unicodeScalars {
            if isSpace(scalar) {
                if !inSpace { result.append(" ") }
                inSpace = true
            } else {
                result.append(scalar)
                inSpace = false
            }
        }
        return String(result).lowercased()
    }

    /// CLIP's pattern `'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`, leftmost first.
    static func pretokenize(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var pieces: [String] = []
        var index = 0
        func piece(_ range: Range<Int>) -> String {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[range])
            return String(view)
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "'", let length = contractionLength(scalars, at: index) {
                pieces.append(piece(index..<index + length))
                index += length
            } else if isLetter(scalar) {
                var end = index + 1
                while end < scalars.count, isLetter(scalars[end]) { end += 1 }
                pieces.append(piece(index..<end))
                index = end
            } else if isNumber(scalar) {
                pieces.append(piece(index..<index + 1))
                index += 1
            } else if isSpace(scalar) {
                index += 1
            } else {
                var end = index + 1
                while end < scalars.count, !isSpace(scalars[end]), !isLetter(scalars[end]), !isNumber(scalars[end]) {
                    end += 1
                }
                pieces.append(piece(index..<end))
                index = end
            }
        }
        return pieces
    }

    private static func contractionLength(_ scalars: [Unicode.Scalar], at index: Int) -> Int? {
        for suffix in ["s", "t", "re", "ve", "m", "ll", "d"] {
            let tail = Array(suffix.unicodeScalars)
            guard index + tail.count < scalars.count else { continue }
            if Array(scalars[(index + 1)...(index + tail.count)]) == tail { return tail.count + 1 }
        }
        return nil
    }

    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    static func isNumber(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x09...0x0D).contains(scalar.value)
    }

    /// Byte-level BPE of one piece, with a cache.
    private func bpe(_ piece: String) -> [Int32] {
        if let cached = cache.withLock({ $0[piece] }) { return cached }
        var symbols = piece.utf8.map { byteCharacters[Int($0)] }
        symbols[symbols.count - 1] += "</w>"
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for index in 0..<(symbols.count - 1) {
                if let rank = mergeRanks[symbols[index] + " " + symbols[index + 1]], rank < best?.rank ?? .max {
                    best = (rank, index)
                }
            }
            guard let best else { break }
            let first = symbols[best.index]
            let second = symbols[best.index + 1]
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var index = 0
            while index < symbols.count {
                if index < symbols.count - 1, symbols[index] == first, symbols[index + 1] == second {
                    merged.append(first + second)
                    index += 2
                } else {
                    merged.append(symbols[index])
                    index += 1
                }
            }
            symbols = merged
        }
        let unknown = endID
        let ids = symbols.map { vocabulary[$0] ?? unknown }
        cache.withLock { cache in
            if cache.count > 50_000 { cache.removeAll() }
            cache[piece] = ids
        }
        return ids
    }

    /// CLIP's table from bytes to printable characters: the printable Latin-1 bytes map to
    /// themselves, the rest to U+0100 onwards in byte order.
    static let printableBytes = Array(33...126) + Array(161...172) + Array(174...255)

    static let byteToCharacter: [String] = {
        let printable = printableBytes
        var table = [String](repeating: "", count: 256)
        for byte in printable { table[byte] = String(Character(Unicode.Scalar(UInt8(byte)))) }
        var next = 256
        for byte in 0..<256 where table[byte].isEmpty {
            table[byte] = String(Character(Unicode.Scalar(UInt32(next))!))
            next += 1
        }
        return table
    }()
}
