"""Generator steps for the convolution family (a mixin of Generator): tf.nn.conv2d,
tf.nn.depthwise_conv2d and tf.nn.avg_pool on a fresh or reshaped 4-D float value, with small random
images, windows larger than the image, strides larger than the window, dilations and explicit
padding. Their gradients (the backprop ops of jitflow/ops/conv.py and pooling.py) come with the
gradient cases. max_pool stays out: a max whose operands tie within rounding has no stable argmax."""
from __future__ import annotations

import numpy as np

from .common import FLOAT_NAMES


def apply_conv_step(tf, builder, xs, p):
    if builder == "conv2d":
        return tf.nn.conv2d(xs[0], xs[1], list(p["strides"]), _padding(p["padding"]), dilations=list(p["dilations"]))
    if builder == "depthwise_conv2d":
        return tf.nn.depthwise_conv2d(xs[0], xs[1], [1, *p["strides"], 1], p["padding"])
    return tf.nn.avg_pool(xs[0], list(p["ksize"]), list(p["strides"]), p["padding"])


def _padding(padding):
    return padding if isinstance(padding, str) else [[0, 0], list(padding[0]), list(padding[1]), [0, 0]]


def conv_step_source(builder, names, p) -> str:
    a = ", ".join(names)
    if builder == "conv2d":
        return f"tf.nn.conv2d({a}, {list(p['strides'])}, {_padding(p['padding'])!r}, dilations={list(p['dilations'])})"
    if builder == "depthwise_conv2d":
        return f"tf.nn.depthwise_conv2d({a}, {[1, *p['strides'], 1]}, {p['padding']!r})"
    return f"tf.nn.avg_pool({a}, {list(p['ksize'])}, {list(p['strides'])}, {p['padding']!r})"


class ConvSteps:
    def step_api_conv(self):
        d = self.d
        dtype = "float64" if self.grad else (self.main_dtype if self.main_dtype in FLOAT_NAMES else
                                             d.choice(FLOAT_NAMES))
        sized = [i for i in range(len(self.tensors)) if self.dtypes[i] == dtype and self.static_known[i]
                 and 1 <= int(np.prod(self.shapes[i], dtype=np.int64)) <= 48]
        if sized and d.bool(0.6):     # an earlier value as a one-channel image: gradients reach the program
            x = d.choice(sized)
            size = int(np.prod(self.shapes[x], dtype=np.int64))
            h = d.choice([k for k in range(1, size + 1) if size % k == 0])
            shape = (1, h, size // h, 1)
            x = self.emit("reshape", [x], {"shape": shape}, self.exact[x])
        else:
            shape = (d.choice((0, 1, 2)) if not self.grad else d.choice((1, 2)), d.int(1, 6), d.int(1, 6),
                     d.choice((1, 2, 3)))
            x = self.new_input(dtype, shape, unknown=False)
        c = shape[3]
        kh, kw = d.int(1, 4), d.int(1, 4)
        strides = (d.int(1, 3), d.int(1, 3))
        padding = d.weighted({"SAME": 3, "VALID": 1, "explicit": 1})
        if padding == "explicit":
            padding = ((d.int(0, 2), d.int(0, 2)), (d.int(0, 2), d.int(0, 2)))
        if padding == "VALID" or not isinstance(padding, str):
            extra = (0, 0) if padding == "VALID" else (sum(padding[0]), sum(padding[1]))
            kh, kw = min(kh, shape[1] + extra[0]), min(kw, shape[2] + extra[1])
        which = d.weighted({"conv2d": 3, "depthwise_conv2d": 1, "avg_pool": 1.5})
        if which == "avg_pool":
            if not isinstance(padding, str):
                padding = "SAME"
            return self.emit("avg_pool", [x], {"ksize": (kh, kw), "strides": strides, "padding": padding}, False)
        if which == "depthwise_conv2d":
            f = self.new_input(dtype, (kh, kw, c, d.int(1, 2)), unknown=False)
            pad = padding if isinstance(padding, str) else "SAME"
            return self.emit("depthwise_conv2d", [x, f], {"strides": (1, 1), "padding": pad}, False)
        dilations = (1, 1) if d.bool(0.7) else (d.int(1, 2), d.int(1, 2))
        if padding == "VALID" or not isinstance(padding, str):
            extra = (0, 0) if padding == "VALID" else (sum(padding[0]), sum(padding[1]))
            while (kh - 1) * dilations[0] + 1 > shape[1] + extra[0]:
                kh -= 1
            while (kw - 1) * dilations[1] + 1 > shape[2] + extra[1]:
                kw -= 1
        f = self.new_input(dtype, (max(kh, 1), max(kw, 1), c, d.int(1, 5)), unknown=False)
        return self.emit("conv2d", [x, f], {"strides": strides, "padding": padding, "dilations": dilations}, False)
