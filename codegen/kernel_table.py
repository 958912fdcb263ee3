"""Codegen's half of the registry's kernel table (jitflow/ops/registry.py).

An op record names its library kernel by a key (`extra["kernel"]`); jitflow.ops cannot import
codegen, so this module registers the emitters under (target, key), adapting each emitter
module's own calling convention to the target's one:
- "cpu": (name, schedule, kernel, declarations, blas) -> (text, buffers, returns_status, info);
- "gpu": (gpu_module, name, schedule, kernel) -> None.
codegen/cpu.py and codegen/gpu.py call `register_cpu_kernels` / `register_gpu_kernels` at import
and then find a kernel's emitter with `jitflow.ops.registry.kernel_emitter(node, target)`.
Adding a library op: give its record `extra={"kernel": key}` and register the key's emitters here.
"""
from __future__ import annotations

from jitflow.errors import UnsupportedError
from jitflow.ops.registry import register_kernel

_done: set = set()


def _pair(emit, returns_status=False):
    """An emitter returning (text, buffers) as the CPU convention's 4-tuple."""
    def emitter(name, schedule, kernel, declarations, blas):
        text, buffers = emit(name, schedule, kernel, declarations)
        return text, buffers, returns_status, None
    return emitter


def _with_status(emit):
    """An emitter returning (text, buffers, returns_status) (codegen/array_kernels.py)."""
    def emitter(name, schedule, kernel, declarations, blas):
        return (*emit(name, schedule, kernel, declarations), None)
    return emitter


def _concrete(emit):
    """The conv / depthwise / pooling kernels (4-tuple already) need concrete shapes."""
    def emitter(name, schedule, kernel, declarations, blas):
        node = kernel.root.node
        if not all(type(d) is int for v in list(node.operands) + [kernel.root] for d in v.shape):
            raise UnsupportedError(f"{node.op}: the CPU convolution and pooling kernels need concrete shapes, "
                                   f"got {[tuple(v.shape) for v in node.operands]}")
        return emit(name, schedule, kernel, declarations, blas)
    return emitter


def register_cpu_kernels() -> None:
    if "cpu" in _done:
        return
    from . import array_kernels, conv_kernels, library, pool_kernels, slab_kernels
    from . import parallel_gemm     # a big GEMM: ranged by rows, split on the thread pool
    register_kernel("cpu", "matmul", parallel_gemm.emit_matmul)
    register_kernel("cpu", "matrix_inverse", _pair(library.emit_inverse, returns_status=True))  # 1: singular
    register_kernel("cpu", "concat", _pair(slab_kernels.emit_concat_kernel))
    register_kernel("cpu", "scatter_slice", _pair(slab_kernels.emit_scatter_kernel))
    for key, emit in array_kernels.EMITTERS.items():
        register_kernel("cpu", key, _with_status(emit))
    from . import conv_pool_kernels     # conv2d + max-pool epilogue (jitflow/passes/conv_pool_fusion.py)
    for key, emit in {**conv_kernels.EMITTERS, **pool_kernels.EMITTERS, **conv_pool_kernels.EMITTERS}.items():
        register_kernel("cpu", key, _concrete(emit))
    from . import lstm_kernels      # the fused LSTM recurrence, forward and backward (ops/lstm_block.py)
    register_kernel("cpu", "lstm_block", lstm_kernels.emit_lstm_block)
    register_kernel("cpu", "lstm_block_grad", lstm_kernels.emit_lstm_block_grad)
    register_kernel("cpu", "lstm_block_inputs", lstm_kernels.emit_lstm_block_inputs)
    register_kernel("cpu", "lstm_block_weight_grad", lstm_kernels.emit_lstm_block_weight_grad)
    _done.add("cpu")


def register_gpu_kernels() -> None:
    if "gpu" in _done:
        return
    from . import ptx_array, ptx_conv, ptx_kernels, ptx_library
    register_kernel("gpu", "matmul", ptx_library.emit_matmul)
    register_kernel("gpu", "matrix_inverse", ptx_library.emit_inverse)
    register_kernel("gpu", "concat", ptx_kernels.emit_concat)
    register_kernel("gpu", "scatter_slice", ptx_kernels.emit_scatter)
    from . import ptx_conv_pool
    for key, emit in {**ptx_array.EMITTERS, **ptx_conv.EMITTERS, **ptx_conv_pool.EMITTERS}.items():
        register_kernel("gpu", key, emit)
    from .lstm_kernels import emit_gpu_unsupported     # no PTX kernel: a clear UnsupportedError
    register_kernel("gpu", "lstm_block", emit_gpu_unsupported)
    register_kernel("gpu", "lstm_block_grad", emit_gpu_unsupported)
    register_kernel("gpu", "lstm_block_inputs", emit_gpu_unsupported)
    register_kernel("gpu", "lstm_block_weight_grad", emit_gpu_unsupported)
    _done.add("gpu")
