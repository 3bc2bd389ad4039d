//===- moe.h - A mixture of SwiGLU experts (Mixtral's sparse MLP) -*- C++ -*-===//
//
// Forward and backward of the `moe` op for N tokens of width D: a router
// [E, D] scores E experts, p = softmax(x router^T); each token goes to its K
// most probable experts (ties to the lower index) with weights p,
// renormalized to sum to 1 when `normalized`. Expert e computes
// down_e (silu(gate_e x) * up_e x) with gate_e, up_e [F, D] rows
// [e*F, (e+1)*F) of the stacked gate and up [E*F, D], and down_e [D, F] rows
// [e*D, (e+1)*D) of down [E*D, F]; y is the weighted sum.
//
// Expert parallelism: X ranks (an ExpertParallel group) each hold E/X of
// the experts, rank q experts [q*E/X, (q+1)*E/X) (gate, up and down are then
// those experts' rows). Every rank routes its own tokens, sends each routed
// copy to the rank holding its expert and gets the expert's output back (an
// all-to-all each way); the backward sends the output gradient the same way
// and gets the input gradient and the routing weight's gradient back. With
// one rank the same code runs without messages.
//
// The GEMMs and the gate go through a kernel set (the CPU's or the GPU's),
// one call per expert over the rows routed to it, gathered; routing,
// gathering and scattering are host loops. What the forward keeps for the
// backward, as floats (so the stage executor can count them as it counts
// norm statistics):
//   routing [N, E + 2K]: the probabilities, the chosen experts, their weights;
//   acts: how many rows each rank sent each local expert (X * E/X counts),
//     then each row the rank's experts ran: its gate and up activations (2F).
// The backward recomputes the gate's output rather than keeping it, and
// gets each row's input again from the rank that routed it.
//
//===----------------------------------------------------------------------===//

#ifndef SEQ1F1B_RUNTIME_MOE_H
#define SEQ1F1B_RUNTIME_MOE_H

#include "seq1f1b/runtime/communicator.h"
#include "seq1f1b/runtime/cpu_kernels.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace s1f::rt::moe {

struct Dims {
  int64_t N = 0, D = 0, E = 0, F = 0, K = 0;
  bool normalized = false;
  int64_t routingSize() const { return N * (E + 2 * K); }
};

/// The kernels the MoE calls, over the CPU reference at any T (a KernelSet
/// serves at T = float).
template <typename T> struct CpuKernels {
  void linear_fwd(const T *x, const T *W, const T *bias, T *y, int64_t N,
                  int64_t in, int64_t out) const {
    cpu::linear_fwd(x, W, bias, y, N, in, out);
  }
  void linear_bwd(const T *x, const T *W, const T *dy, T *dx, T *dW, T *db,
                  int64_t N, int64_t in, int64_t out) const {
    cpu::linear_bwd(x, W, dy, dx, dW, db, N, in, out);
  }
  void swiglu_fwd(const T *gate, const T *up, T *y, int64_t n) const {
    cpu::swiglu_fwd(gate, up, y, n);
  }
  void swiglu_bwd(const T *gate, const T *up, const T *dy, T *dgate, T *dup,
                  int64_t n) const {
    cpu::swiglu_bwd(gate, up, dy, dgate, dup, n);
  }
};

/// The expert-parallel group of a moe op: `comm` over its X ranks (null:
/// one rank holding every expert); messages are tagged by op index `op`.
/// fp32 only when X > 1.
struct ExpertParallel {
  Communicator *comm = nullptr;
  int op = 0;
};

/// Tensor parallelism splits every expert's width F over the ranks (gate
/// and up by rows, down by columns): each rank's y is a partial sum, and
/// so is each routing weight's gradient, which `sumOverRanks` adds up
/// before the router's backward. The router runs whole on every rank; only
/// the rank with `routerInputGrad` adds its input gradient, so that the
/// ranks' dx sum to the whole.
struct TensorParallel {
  std::function<void(float *, int64_t)> sumOverRanks;
  bool routerInputGrad = true;
};

/// y [N, D] (written); routing and acts as above (resized and written).
/// gate, up and down are this rank's experts'.
template <typename T, typename Kernels>
void forward(const Kernels &k, const Dims &d, const T *x, const T *router,
             const T *gate, const T *up, const T *down, T *y,
             std::vector<T> &routing, std::vector<T> &acts,
             const ExpertParallel &ep = {});

/// dx [N, D] (written) from dy; the weight gradients are added to drouter
/// and to dgate, dup and ddown (this rank's experts'). `probGrad` [E], when
/// given, is added to every token's gradient of its router probabilities
/// (the load-balancing loss's).
template <typename T, typename Kernels>
void backward(const Kernels &k, const Dims &d, const T *x, const T *router,
              const T *gate, const T *up, const T *down, const T *routing,
              const T *acts, const T *dy, T *dx, T *drouter, T *dgate,
              T *dup, T *ddown, const TensorParallel &tp = {},
              const ExpertParallel &ep = {}, const T *probGrad = nullptr);

/// Megatron's load-balancing loss of one layer over the T tokens of a
/// micro-batch (Switch Transformer's, for top k):
///   aux = coef * E / (k * T^2) * sum_e P_e * c_e,
/// P_e the sum of the tokens' router probabilities of expert e, c_e the
/// routed copies expert e got. Its gradient with respect to token t's
/// probability of e is coef * E * c_e / (k * T^2) (c_e counts as a constant,
/// as routing has no gradient). A micro-batch's chunks add their sums
/// (addRoutingSums) before the loss and its gradient are known.
struct Balance {
  std::vector<double> probSums, counts; ///< P_e, c_e
  /// Adds N tokens' probabilities and routed copies from `routing`.
  template <typename T> void addRoutingSums(const Dims &d, const T *routing);
  /// Adds another part's sums (another chunk's, say).
  Balance &operator+=(const Balance &o);
  double loss(double coef, int64_t k, double tokens) const;
  /// d aux / d p_te, times `scale`, for every expert.
  std::vector<double> probGrad(double coef, int64_t k, double tokens,
                               double scale) const;
};

} // namespace s1f::rt::moe

#endif // SEQ1F1B_RUNTIME_MOE_H
