"""GPU target: LLVM IR -> PTX through llvmlite's NVPTX back end.

The target is `nvptx64-nvidia-cuda` with an `sm_XX` arch (default sm_90, or what
`JITFLOW_GPU_ARCH` says; the runtime passes the arch of the device it runs on)
and a PTX ISA version new enough for it. Transcendentals come from libdevice
(`libdevice.10.bc`, found in the CUDA toolkit or the `nvidia-cuda-nvcc` wheel):
it is linked into the module only when a kernel calls an `__nv_*` function, and
every function except the kernels is internalized so unused libdevice code is
dropped. Kernels run with float32 denormals flushed to zero (libdevice's
`__CUDA_FTZ` reflect flag and the kernels' denormal mode), as the CPU entry point
does. `ptxas` (when on PATH) assembles the result for tests and `check_ptx`.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

TRIPLE = "nvptx64-nvidia-cuda"
DEFAULT_ARCH = "sm_90"
KERNEL_ATTRS = '"denormal-fp-math-f32"="preserve-sign"'

# libdevice names of the scalar primitives LLVM cannot lower on NVPTX (ScalarLowering.math_functions)
LIBDEVICE_MATH = {(prim, dtype): f"__nv_{prim}{'f' if dtype == 'float32' else ''}"
                  for prim in ("exp", "log", "tanh", "pow", "sin", "cos", "tan", "log1p", "expm1", "erf")
                  for dtype in ("float32", "float64")}

_lock = threading.Lock()
_machines: dict = {}
_libdevice: dict = {}


class LibdeviceNotFoundError(RuntimeError):
    """libdevice.10.bc is needed (a kernel calls exp/log/tanh/pow/cos) and was not found."""


def default_arch() -> str:
    return os.environ.get("JITFLOW_GPU_ARCH", DEFAULT_ARCH)


def ptx_version(arch: str) -> int:
    """The PTX ISA version (x10) used for an arch: 8.0 covers sm_50..sm_90a; newer archs need newer PTX."""
    number = int("".join(ch for ch in arch.split("_")[1] if ch.isdigit()))
    if number >= 120:
        return 87
    if number >= 100:
        return 86
    return 80


def target_machine(arch: str):
    with _lock:
        if arch not in _machines:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            target = llvm.Target.from_triple(TRIPLE)
            _machines[arch] = target.create_target_machine(cpu=arch, features=f"+ptx{ptx_version(arch)}", opt=3)
        return _machines[arch]


def libdevice_candidates() -> list[str]:
    roots = [os.environ.get(name) for name in ("JITFLOW_LIBDEVICE", "CUDA_HOME", "CUDA_PATH")]
    found = []
    for root in roots:
        if root and root.endswith(".bc"):
            found.append(root)
        elif root:
            found += glob.glob(os.path.join(root, "nvvm", "libdevice", "libdevice*.bc"))
    found += sorted(glob.glob("/usr/local/cuda*/nvvm/libdevice/libdevice*.bc"), reverse=True)
    found += glob.glob("/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice*.bc")
    for site in sys.path:   # the nvidia-cuda-nvcc wheels (cu12 and cu13 layouts)
        if site and os.path.isdir(os.path.join(site, "nvidia")):
            found += glob.glob(os.path.join(site, "nvidia", "*", "nvvm", "libdevice", "libdevice*.bc"))
            found += glob.glob(os.path.join(site, "nvidia", "*", "*", "nvvm", "libdevice", "libdevice*.bc"))
    return [path for path in found if os.path.isfile(path)]


def find_libdevice() -> str:
    """Path of libdevice.10.bc, or a LibdeviceNotFoundError saying where it was looked for."""
    candidates = libdevice_candidates()
    if not candidates:
        raise LibdeviceNotFoundError(
            "jitflow: the GPU kernels need CUDA's libdevice (libdevice.10.bc) for exp/log/tanh/pow/cos and it "
            "was not found. Looked in $JITFLOW_LIBDEVICE, $CUDA_HOME/nvvm/libdevice, $CUDA_PATH/nvvm/libdevice, "
            "/usr/local/cuda*/nvvm/libdevice and the nvidia-cuda-nvcc wheel (site-packages/nvidia/*/nvvm/"
            "libdevice). Install the CUDA toolkit or `pip install nvidia-cuda-nvcc-cu12`, or set "
            "JITFLOW_LIBDEVICE to the file.")
    return candidates[0]


def _libdevice_bitcode() -> tuple[bytes, str]:
    with _lock:
        if "data" not in _libdevice:
            path = find_libdevice()
            with open(path, "rb") as f:
                data = f.read()
            _libdevice.update(data=data, path=path, sha=hashlib.sha256(data).hexdigest()[:16])
        return _libdevice["data"], _libdevice["sha"]


def target_fingerprint(arch: str) -> str:
    """The GPU part of the kernel-cache key: triple, arch, PTX version, toolchain, libdevice."""
    try:
        _, libdevice = _libdevice_bitcode()
    except LibdeviceNotFoundError:
        libdevice = "absent"
    return f"{TRIPLE}|{arch}|ptx{ptx_version(arch)}|llvmlite {llvmlite.__version__}|" \
           f"llvm {'.'.join(map(str, llvm.llvm_version_info))}|libdevice {libdevice}"


@dataclass
class CompiledPtx:
    llvm_ir: str
    optimized_ir: str
    ptx: str
    arch: str
    compile_seconds: float


def compile_ptx(text: str, kernels: list[str], arch: str | None = None) -> CompiledPtx:
    """LLVM IR text (kernels use the ptx_kernel calling convention) -> optimized module -> PTX."""
    arch = arch or default_arch()
    start = time.perf_counter()
    tm = target_machine(arch)
    module = llvm.parse_assembly(text)
    module.triple = TRIPLE
    module.data_layout = str(tm.target_data)
    if "@__nv_" in text:
        data, _ = _libdevice_bitcode()
        libdevice = llvm.parse_bitcode(data)
        libdevice.triple = TRIPLE
        libdevice.data_layout = str(tm.target_data)
        module.link_in(libdevice)
    keep = set(kernels)
    for fn in module.functions:
        if not fn.is_declaration and fn.name not in keep:
            fn.linkage = llvm.Linkage.internal
    for gv in module.global_variables:
        if not gv.is_declaration:
            gv.linkage = llvm.Linkage.internal
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    pass_builder = llvm.create_pass_builder(tm, tuning)
    pass_builder.getModulePassManager().run(module, pass_builder)
    ptx = tm.emit_assembly(module)
    return CompiledPtx(text, str(module), ptx, arch, time.perf_counter() - start)


def module_header() -> str:
    """Flags every GPU module carries: libdevice's flush-to-zero reflect flag."""
    return ('!llvm.module.flags = !{!0}\n'
            '!0 = !{i32 4, !"nvvm-reflect-ftz", i32 1}\n')


def ptxas_path() -> str | None:
    return shutil.which("ptxas")


def check_ptx(ptx: str, arch: str | None = None) -> tuple[bool, str]:
    """Assembles PTX with `ptxas -arch=<arch>`: (accepted, ptxas messages). Needs ptxas on PATH."""
    arch = arch or default_arch()
    exe = ptxas_path()
    if exe is None:
        raise FileNotFoundError("ptxas is not on PATH")
    with tempfile.TemporaryDirectory(prefix="jitflow-ptx-") as tmp:
        source, target = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(source, "w") as f:
            f.write(ptx)
        proc = subprocess.run([exe, f"-arch={arch}", source, "-o", target], capture_output=True, text=True)
        return proc.returncode == 0, (proc.stdout + proc.stderr).strip()
