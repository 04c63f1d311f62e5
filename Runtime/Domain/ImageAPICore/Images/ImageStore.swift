/// Everything a backend keeps about images: their metadata, their processing and the search over
/// their text. A metadata backend implements the three ports; functions that need all of them
/// take an `ImageStore`.
public typealias ImageStore = ImageRepository & EmbeddingJobs & ImageTextSearch
