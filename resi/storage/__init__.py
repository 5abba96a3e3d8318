"""Object storage: presigned uploads, lists and downloads (clients), presigning (server), local S3."""

from resi.storage.presigned import (
    Listing,
    ObjectInfo,
    ObjectTooLarge,
    StorageError,
    download,
    list_objects,
    upload_post,
)

__all__ = ["Listing", "ObjectInfo", "ObjectTooLarge", "StorageError", "download", "list_objects", "upload_post"]
