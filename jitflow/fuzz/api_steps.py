"""Program steps that go through the user API functions of the issue-15 categories: integer
division and modulo (`tf.floordiv`, `//`, `%`, ...), sparse softmax cross-entropy, calls with an
out-of-range axis (which must raise when the graph is built), and registry ops reached through
their TF functions (tf.gather, tf.pad, tf.reverse, tf.slice, tf.cumsum)."""
from __future__ import annotations



INT_DIV_FNS = ("floordiv", "floormod", "mod", "math.floordiv", "math.floormod", "//", "%")
SPARSE_XENT_FNS = ("nn", "losses", "keras")
# fn -> (whether the op inserts an axis, TF's error class(es) at graph building)
BAD_AXIS_FNS = {"argmax": (False, ("ValueError",)), "argmin": (False, ("ValueError",)),
                "unstack": (False, ("ValueError",)), "squeeze": (False, ("ValueError",)),
                "softmax": (False, ("InvalidArgumentError",)), "log_softmax": (False, ("InvalidArgumentError",)),
                "softmax_xent": (False, ("InvalidArgumentError", "ValueError")),
                "reduce_sum": (False, ("ValueError",)), "reduce_max": (False, ("ValueError",)),
                "concat": (False, ("ValueError",)), "reverse": (False, ("ValueError",)),
                "expand_dims": (True, ("ValueError",)), "stack": (True, ("ValueError",)),
                "one_hot": (None, ("ValueError",))}
FLOAT_ONLY_BAD_AXIS = ("softmax", "log_softmax", "softmax_xent")
_BAD_AXIS_SOURCE = {"argmax": "tf.argmax({x}, axis={axis})", "argmin": "tf.argmin({x}, axis={axis})",
                    "unstack": "tf.unstack({x}, axis={axis})[0]", "squeeze": "tf.squeeze({x}, [{axis}])",
                    "softmax": "tf.nn.softmax({x}, axis={axis})", "log_softmax": "tf.nn.log_softmax({x}, axis={axis})",
                    "softmax_xent": "tf.nn.softmax_cross_entropy_with_logits_v2(labels={x}, logits={x}, axis={axis})",
                    "reduce_sum": "tf.reduce_sum({x}, axis={axis})", "reduce_max": "tf.reduce_max({x}, axis={axis})",
                    "concat": "tf.concat([{x}, {x}], {axis})", "reverse": "tf.reverse({x}, [{axis}])",
                    "expand_dims": "tf.expand_dims({x}, {axis})", "stack": "tf.stack([{x}, {x}], {axis})",
                    "one_hot": "tf.one_hot({x}, 3, axis={axis})"}


def _int_div(tf, fn, x, y):
    if fn == "//":
        return x // y
    if fn == "%":
        return x % y
    owner = tf.math if fn.startswith("math.") else tf
    return getattr(owner, fn.split(".")[-1])(x, y)


def _bad_axis(tf, fn, x, axis):
    if fn in ("argmax", "argmin"):
        return getattr(tf, fn)(x, axis=axis)
    if fn == "unstack":
        return tf.unstack(x, axis=axis)[0]
    if fn == "squeeze":
        return tf.squeeze(x, [axis])
    if fn in ("softmax", "log_softmax"):
        return getattr(tf.nn, fn)(x, axis=axis)
    if fn == "softmax_xent":
        return tf.nn.softmax_cross_entropy_with_logits_v2(labels=x, logits=x, axis=axis)
    if fn in ("reduce_sum", "reduce_max"):
        return getattr(tf, fn)(x, axis=axis)
    if fn in ("concat", "stack"):
        return getattr(tf, fn)([x, x], axis)
    if fn == "reverse":
        return tf.reverse(x, [axis])
    if fn == "expand_dims":
        return tf.expand_dims(x, axis)
    if fn == "one_hot":
        return tf.one_hot(x, 3, axis=axis)
    raise ValueError(f"unknown bad-axis function {fn!r}")


def apply_api_step(tf, builder, xs, p):
    if builder == "int_div":
        return _int_div(tf, p["fn"], xs[0], xs[1])
    if builder == "sparse_xent":
        labels, logits = xs
        if p["fn"] == "nn":
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        if p["fn"] == "losses":
            return tf.losses.sparse_softmax_cross_entropy(labels, logits)
        return tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    if builder == "bad_axis":
        return _bad_axis(tf, p["fn"], xs[0], p["axis"])
    if builder == "gather":
        return tf.gather(xs[0], xs[1], axis=p["axis"])
    if builder == "pad":
        return tf.pad(xs[0], [list(q) for q in p["paddings"]], mode=p["mode"], constant_values=p["value"])
    if builder == "reverse":
        return tf.reverse(xs[0], list(p["axes"]))
    if builder == "tf_slice":
        return tf.slice(xs[0], list(p["begin"]), list(p["size"]))
    if builder == "cumsum":
        return tf.cumsum(xs[0], axis=p["axis"], exclusive=p["exclusive"], reverse=p["reverse"])
    if builder in ("conv2d", "depthwise_conv2d", "avg_pool"):
        from .steps_conv import apply_conv_step
        return apply_conv_step(tf, builder, xs, p)
    raise ValueError(f"unknown fuzz builder {builder!r}")


def api_step_source(builder, names, p) -> str:
    a = ", ".join(names)
    if builder == "int_div":
        fn = p["fn"]
        return f"{names[0]} {fn} {names[1]}" if fn in ("//", "%") else f"tf.{fn}({a})"
    if builder == "sparse_xent":
        labels, logits = names
        return {"nn": f"tf.nn.sparse_softmax_cross_entropy_with_logits(labels={labels}, logits={logits})",
                "losses": f"tf.losses.sparse_softmax_cross_entropy({labels}, {logits})",
                "keras": f"tf.keras.losses.sparse_categorical_crossentropy({labels}, {logits}, from_logits=True)"
                }[p["fn"]]
    if builder == "bad_axis":
        return f"{_BAD_AXIS_SOURCE[p['fn']].format(x=a, axis=p['axis'])}  # TF raises {' or '.join(p['error'])}"
    if builder == "gather":
        return f"tf.gather({a}, axis={p['axis']})"
    if builder == "pad":
        return f"tf.pad({a}, {[list(q) for q in p['paddings']]}, mode={p['mode']!r}, constant_values={p['value']})"
    if builder == "reverse":
        return f"tf.reverse({a}, {list(p['axes'])})"
    if builder == "tf_slice":
        return f"tf.slice({a}, {list(p['begin'])}, {list(p['size'])})"
    if builder == "cumsum":
        return f"tf.cumsum({a}, axis={p['axis']}, exclusive={p['exclusive']}, reverse={p['reverse']})"
    if builder in ("conv2d", "depthwise_conv2d", "avg_pool"):
        from .steps_conv import conv_step_source
        return conv_step_source(builder, names, p)
    return f"{builder}({a}, {p!r})"
