"""Safe image loading and lossless, atomic saving."""

from .io import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    ImageInfo,
    LoadedImage,
    OutputExistsError,
    array_mismatch,
    atomic_write,
    check_not_input,
    encode_image,
    has_deep_samples,
    header_size,
    open_image,
    output_format,
    probe_image,
    save_image,
    webp_is_lossy,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "ImageInfo",
    "LoadedImage",
    "OutputExistsError",
    "array_mismatch",
    "atomic_write",
    "check_not_input",
    "encode_image",
    "has_deep_samples",
    "header_size",
    "open_image",
    "output_format",
    "probe_image",
    "save_image",
    "webp_is_lossy",
]
