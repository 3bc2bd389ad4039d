//===- staged_kernels.h - The CUDA kernels as a KernelSet -------*- C++ -*-===//
//
// A KernelSet (kernel_set.h) whose every operation runs the fp32 CUDA kernel
// on the GPU: operands are copied to the device, the kernel runs, results
// (and accumulated parameter gradients) come back. The stage executor, the
// schedule and the optimizer are unchanged, so a pipelined step on this set
// checks the CUDA kernels against the CPU reference end to end (the fp32
// mode of docs/cuda.md). Slow by design: two copies per operand per call;
// calls from several rank threads are serialized. The KV cache row copies
// (kv_cache_write and its backward) stay on the host: they compute nothing.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_CUDA_STAGED_KERNELS_H
#define SEQ1F1B_RUNTIME_CUDA_STAGED_KERNELS_H

#include "seq1f1b/runtime/kernel_set.h"

namespace s1f::rt::cuda {

/// The process-wide set; the GPU is first touched at the first call.
const KernelSet &stagedKernels();

} // namespace s1f::rt::cuda

#endif // SEQ1F1B_RUNTIME_CUDA_STAGED_KERNELS_H
