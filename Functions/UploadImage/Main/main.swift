import ImageHosting
import UploadImage

await ImageHost.main { services, images in [UploadImageFunction(api: services.api, images: images)] }
