import ImageHosting
import UploadImage

// Uploads and reprocessing write the outbox: this process delivers it.
await ImageHost.main(relaysOutbox: true) { services, images in
    [UploadImageFunction(api: services.api, images: images), CollectionsFunction(api: services.api, images: images)]
}
