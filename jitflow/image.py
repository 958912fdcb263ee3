"""`tf.image`: TF 1.x image functions (re-exports only; code in jitflow/api/image_resize.py and
jitflow/api/image_ops.py). decode_jpeg/decode_png and other string-tensor functions are not provided."""
from .api.image_ops import (adjust_brightness, adjust_contrast, central_crop, convert_image_dtype,  # noqa: F401
                            crop_to_bounding_box, flip_left_right, flip_up_down, grayscale_to_rgb,
                            pad_to_bounding_box, per_image_standardization, random_brightness,
                            random_contrast, random_crop, random_flip_left_right, random_flip_up_down,
                            resize_image_with_crop_or_pad, rgb_to_grayscale, rot90, transpose_image)
from .api.image_crop_resize import crop_and_resize  # noqa: F401
from .api.image_resize import (ResizeMethod, resize_bilinear, resize_images,  # noqa: F401
                               resize_nearest_neighbor)

transpose = transpose_image  # noqa: F401  (TF 1.15 has both names)

from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.image")  # PEP 562: a missing name says so
