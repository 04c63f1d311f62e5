import Foundation
import ImageAPICore

/// The words of an image that text search looks at, split and folded as SQLite FTS5's
/// `unicode61` tokenizer does (letters and digits, lower case, without diacritics), and a BM25
/// relevance over them.
enum TextIndex {
    /// The words of a text.
    static func words(in text: String) -> [String] {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).lowercased()
            .split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    /// The searchable words of an image: file name, description, tags and EXIF values.
    static func words(of image: ImageRecord) -> [String] {
        words(in: image.filename) + words(in: image.description ?? "") + image.tags.flatMap(words(in:))
            + image.exif.values.sorted().flatMap(words(in:))
    }

    /// Okapi BM25 (k1 = 1.2, b = 0.75) of prefix terms over a set of documents; each term's
    /// inverse document frequency is counted once, when the scorer is made.
    struct BM25 {
        let terms: [(prefix: String, inverse: Double)]
        let averageLength: Double

        init(terms: [String], documents: [[String]]) {
            let count = Double(documents.count)
            self.terms = terms.map { term in
                let holders = Double(documents.filter { $0.contains { $0.hasPrefix(term) } }.count)
                return (term, log((count - holders + 0.5) / (holders + 0.5) + 1))
            }
            let total = documents.reduce(0) { $0 + $1.count }
            averageLength = documents.isEmpty ? 1 : max(1, Double(total) / Double(documents.count))
        }

        /// The relevance of `words`; larger is better, 0 when no term matches.
        func score(_ words: [String]) -> Double {
            let length = Double(words.count) / averageLength
            return terms.reduce(0) { sum, term in
                let frequency = Double(words.filter { $0.hasPrefix(term.prefix) }.count)
                guard frequency > 0 else { return sum }
                return sum + term.inverse * frequency * 2.2 / (frequency + 1.2 * (0.25 + 0.75 * length))
            }
        }
    }
}
