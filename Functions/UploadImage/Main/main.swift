import FunctionHosting
import UploadImage

await FunctionHost.main { services in [UploadImageFunction(api: services.api, images: services.images)] }
