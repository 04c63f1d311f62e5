import Foundation
import ImageAPICore
import Testing

@Suite("SearchQuerySyntax: queries read as people type them")
struct SearchQuerySyntaxTests {
    @Test("phrases, exclusions and fields are told apart; the semantic text keeps the words and phrases")
    func reading() {
        let syntax = SearchQuerySyntax(
            #"a "red car" at night -truck -"parking lot" tag:Cars camera:"Acme Pocket" tag:"city, night""#)
        #expect(syntax.semanticText == "a red car at night")
        #expect(syntax.phrases == [["red", "car"]])
        #expect(syntax.exclusions == [["truck"], ["parking", "lot"]])
        #expect(syntax.tags == ["cars", "city, night"])
        #expect(syntax.cameras == ["acme", "pocket"])
        #expect(syntax.searchWords == ["a", "red", "car", "at", "night"])
        #expect(!syntax.onlyExcludes)
    }

    @Test("what is not syntax stays text: a lone dash, a double dash, unknown fields, an unclosed quote")
    func plainText() {
        #expect(SearchQuerySyntax("well - known").semanticText == "well - known")
        #expect(SearchQuerySyntax("--verbose").exclusions.isEmpty)
        #expect(SearchQuerySyntax("time:noon").semanticText == "time:noon")
        #expect(SearchQuerySyntax("http://x").tags.isEmpty)
        let unclosed = SearchQuerySyntax(#"say "hello there"#)
        #expect(unclosed.phrases == [["hello", "there"]] && unclosed.semanticText == "say hello there")
        #expect(SearchQuerySyntax("-only -words").onlyExcludes)
        let fieldsOnly = SearchQuerySyntax("tag:beach")
        #expect(fieldsOnly.embeddedText == "beach" && fieldsOnly.searchWords == ["beach"])
    }

    @Test("a words match passes when it holds every phrase in order, no exclusion and the camera")
    func admits() {
        var image = ImageRecord(
            id: ImageID(), teamID: TeamID(), uploaderID: UserID(), collectionID: nil, filename: "IMG_0042.jpg",
            contentType: "image/jpeg", format: "jpeg", fileSize: 1, width: 1, height: 1, orientation: nil,
            sha256: "x", description: "A red car at night, by the parking lot", tags: ["cars"],
            exif: ["camera_make": "Acme", "camera_model": "Acme Pocket 3"], createdAt: Date())
        #expect(SearchQuerySyntax(#""red car""#).admits(image))
        #expect(!SearchQuerySyntax(#""car red""#).admits(image))
        #expect(!SearchQuerySyntax("car -park").admits(image), "an exclusion is a word prefix")
        #expect(SearchQuerySyntax("car -truck").admits(image))
        #expect(!SearchQuerySyntax(#"car -"parking lot""#).admits(image))
        #expect(SearchQuerySyntax(#"car -"lot parking""#).admits(image))
        #expect(SearchQuerySyntax("camera:acme camera:pock").admits(image))
        #expect(!SearchQuerySyntax("camera:nikon").admits(image))
        #expect(SearchQuerySyntax(#""img 0042""#).admits(image), "the file name's words count")
        image.exif = [:]
        #expect(!SearchQuerySyntax("camera:acme").admits(image))
    }
}
