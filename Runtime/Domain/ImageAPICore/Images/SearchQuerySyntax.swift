import Foundation

/// What a text query says, read the way people type queries:
/// - `"a red car"`: a phrase; a words match must hold its words in that order;
/// - `-word` (or `-"a phrase"`): an exclusion; no words match may hold a word beginning with it
///   (or the phrase);
/// - `tag:x` (or `tag:"two words"`): only images tagged `x`, in every mode (a filter);
/// - `camera:x`: only words matches whose camera make or model holds a word beginning with `x`;
/// - anything else: words.
///
/// Phrases and exclusions are operators of the words search: the semantic search embeds
/// ``semanticText`` (the words and phrases, without quotes, exclusions or fields). Nothing of the
/// syntax reaches a backend: the words search gets letters-and-digits words only
/// (``ImageSearch/words(of:)``), and the operators are applied to the records it returns.
public struct SearchQuerySyntax: Sendable, Equatable {
    /// The words and phrases, in order, as one text (what the semantic search embeds).
    public private(set) var semanticText = ""
    /// Each phrase's words.
    public private(set) var phrases: [[String]] = []
    /// Each exclusion's words (one for a word, several for a phrase).
    public private(set) var exclusions: [[String]] = []
    /// `tag:` values, as tags are stored (lower case).
    public private(set) var tags: [String] = []
    /// `camera:` values' words.
    public private(set) var cameras: [String] = []

    /// Reads a query.
    /// - Parameter query: What was typed.
    public init(_ query: String) {
        var free: [String] = []
        var scanner = Substring(query)
        while let token = Self.nextToken(&scanner) {
            switch token {
            case .text(let text, quoted: let quoted):
                free.append(text)
                if quoted { phrases.append(Self.words(text)) }
            case .excluded(let text):
                let words = Self.words(text)
                if !words.isEmpty { exclusions.append(words) }
            case .field("tag", let value):
                let tag = value.trimmingCharacters(in: .whitespaces).lowercased()
                if !tag.isEmpty, !tags.contains(tag) { tags.append(tag) }
            case .field("camera", let value):
                cameras += Self.words(value)
            case .field(let name, let value):
                // Not a field this search knows: the text as typed.
                free.append("\(name):\(value)")
            }
        }
        semanticText = free.joined(separator: " ")
        phrases.removeAll { $0.isEmpty }
    }

    /// Whether the query asks for nothing but exclusions (nothing to rank by).
    public var onlyExcludes: Bool {
        semanticText.trimmingCharacters(in: .whitespaces).isEmpty && tags.isEmpty && cameras.isEmpty
    }

    /// The words the words search looks for: those of the words and phrases, or, when there are
    /// none, of the fields' values.
    public var searchWords: [String] {
        let words = ImageSearch.words(of: semanticText)
        return words.isEmpty ? ImageSearch.words(of: (tags + cameras).joined(separator: " ")) : words
    }

    /// The text the semantic search embeds: the words and phrases, or, when there are none, the
    /// fields' values.
    public var embeddedText: String {
        let text = semanticText.trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? (tags + cameras).joined(separator: " ") : text
    }

    /// Whether a words match passes the phrases, exclusions and cameras (tags are a filter of
    /// the search itself).
    /// - Parameter image: The matching image.
    /// - Returns: `true` when it stays.
    public func admits(_ image: ImageRecord) -> Bool {
        guard !phrases.isEmpty || !exclusions.isEmpty || !cameras.isEmpty else { return true }
        let text = Self.words(
            ([image.filename, image.description ?? ""] + image.tags
                + image.exif.keys.sorted().compactMap { image.exif[$0] })
                .joined(separator: " "))
        for phrase in phrases where !Self.contains(text, phrase) { return false }
        for exclusion in exclusions {
            if exclusion.count == 1 {
                if text.contains(where: { $0.hasPrefix(exclusion[0]) }) { return false }
            } else if Self.contains(text, exclusion) {
                return false
            }
        }
        if !cameras.isEmpty {
            let camera = Self.words(
                [image.exif["camera_make"], image.exif["camera_model"]].compactMap { $0 }.joined(separator: " "))
            for wanted in cameras where !camera.contains(where: { $0.hasPrefix(wanted) }) { return false }
        }
        return true
    }

    // MARK: Reading

    private enum Token {
        case text(String, quoted: Bool)
        case excluded(String)
        case field(String, String)
    }

    /// The next token, skipping spaces; `nil` at the end.
    private static func nextToken(_ rest: inout Substring) -> Token? {
        rest = rest.drop(while: \.isWhitespace)
        guard let first = rest.first else { return nil }
        if first == "\"" {
            rest = rest.dropFirst()
            return .text(quoted(&rest), quoted: true)
        }
        if first == "-", let next = rest.dropFirst().first, !next.isWhitespace, next != "-" {
            rest = rest.dropFirst()
            if rest.first == "\"" {
                rest = rest.dropFirst()
                return .excluded(quoted(&rest))
            }
            return .excluded(bare(&rest))
        }
        let word = bare(&rest)
        if let colon = word.firstIndex(of: ":"), colon != word.startIndex {
            let name = word[..<colon].lowercased()
            if name == "tag" || name == "camera" {
                var value = String(word[word.index(after: colon)...])
                if value.isEmpty, rest.first == "\"" {
                    rest = rest.dropFirst()
                    value = quoted(&rest)
                } else if value.hasPrefix("\"") {
                    // `tag:"two words"`: the quote opened inside the word.
                    var inside = Substring(value.dropFirst()) + rest
                    value = quoted(&inside)
                    rest = inside
                }
                return .field(name, value)
            }
        }
        return .text(word, quoted: false)
    }

    /// Up to the closing quote (or the end), which is consumed.
    private static func quoted(_ rest: inout Substring) -> String {
        let end = rest.firstIndex(of: "\"") ?? rest.endIndex
        let text = String(rest[..<end])
        rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
        return text
    }

    /// Up to the next space.
    private static func bare(_ rest: inout Substring) -> String {
        let end = rest.firstIndex(where: \.isWhitespace) ?? rest.endIndex
        let text = String(rest[..<end])
        rest = rest[end...]
        return text
    }

    /// A text's lower-case letter-and-digit runs, repeats kept.
    static func words(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
    }

    /// Whether `words` holds `phrase` as a run.
    private static func contains(_ words: [String], _ phrase: [String]) -> Bool {
        guard !phrase.isEmpty, words.count >= phrase.count else { return phrase.isEmpty }
        for start in 0...(words.count - phrase.count) where Array(words[start..<start + phrase.count]) == phrase {
            return true
        }
        return false
    }
}
