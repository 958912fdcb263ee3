"""jitflow.codegen: IR schedules -> LLVM IR (via llvmlite) -> native code.
The only package that imports llvmlite."""
