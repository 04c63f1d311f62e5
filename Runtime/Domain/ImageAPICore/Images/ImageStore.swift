/// Everything a backend keeps about images: their metadata, their processing, the search over
/// their text and their named collections. A metadata backend implements the four ports;
/// functions that need all of them take an `ImageStore`.
public typealias ImageStore = ImageRepository & EmbeddingJobs & ImageTextSearch & CollectionRepository
