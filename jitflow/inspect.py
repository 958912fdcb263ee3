"""What a `Session.run` signature compiles to: the IR before and after the
passes, the fused schedule, the LLVM IR (generated and optimized) and the
native assembly. `Session.inspect(fetches, feed_dict)` returns one of these."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Inspection:
    ir_before_passes: str
    ir: str
    schedule: str
    llvm_ir: str
    optimized_llvm_ir: str
    ptx: str = ""            # the GPU code, for `Session.inspect(..., device='gpu')`

    def asm(self) -> str:
        """Host assembly, or the PTX of a GPU inspection."""
        if self.ptx:
            return self.ptx
        from .codegen.cpu import native_assembly
        return native_assembly(self.optimized_llvm_ir)

    def __str__(self) -> str:
        return "\n".join(["== IR (lowered) ==", self.ir_before_passes, "== IR (after passes) ==", self.ir,
                          "== fused kernels ==", self.schedule, "== LLVM IR ==", self.llvm_ir])


def describe_schedule(schedule) -> str:
    lines = []
    for i, kernel in enumerate(schedule.kernels):
        node = kernel.root.node
        where = f"  # {node.loc}" if node is not None and node.loc else ""
        what = node.op if node is not None else "copy"
        update = f" ({kernel.update})" if kernel.update != "set" else ""
        update += f" [row group {kernel.group}]" if kernel.group is not None else ""
        lines.append(f"k{i}: {kernel.kind:8s} {what}{update} -> {kernel.out.kind} buffer "
                     f"{kernel.out.dtype.short}{list(kernel.out.shape)}{where}")
    lines.append(f"workspace: {schedule.workspace_bytes} bytes")
    return "\n".join(lines)
