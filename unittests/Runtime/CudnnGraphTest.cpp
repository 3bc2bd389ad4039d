//===- CudnnGraphTest.cpp - The cudnn engine's graphs, on the host --------===//
//
// The cudnn attention engine (attention_cudnn.cpp) hands cuDNN operation
// graphs that spell attention out. Two checks that need no GPU:
//
//  * What the graphs compute: the recorded graphs (cudnnAttentionGraph) are
//    evaluated here in fp64, operation by operation with cuDNN's semantics
//    (broadcast and grouped batch dimensions, reductions onto smaller
//    shapes, reshapes as views of the same memory), on memory laid out as
//    the engine binds it, and must give the fp64 CPU reference's output,
//    log-sum-exp, dQ and prefix dK/dV. This is what catches a reversed mask,
//    a misplaced scale or a wrong view of the KV cache. Engine cudnn-split's
//    two graphs per chunk are evaluated too, and merged by log-sum-exp.
//  * That cuDNN takes them: every operation finalized by cuDNN on the host,
//    and plans built for an H200 described by its properties
//    (data/h200-cudnn-device.json), with the toolkit's stub driver standing
//    in for the missing one. cuDNN's heuristics must pick an engine and
//    generate its kernel; only loading the kernel needs a GPU (the stub
//    refuses), so that is where the check ends. With a GPU visible the
//    CudaAttentionCudnn tests do all this for real, so only the operations
//    are checked here.
//
//===----------------------------------------------------------------------===//

#include "attention_cudnn.h"

#include "CudaTestUtil.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace cpu = s1f::rt::cpu;
using namespace s1f::rt::cuda;
using namespace s1f::rt::cuda::detail;
using namespace s1f::rt::cuda::test;

namespace {

using Dims = std::vector<int64_t>;

//===----------------------------------------------------------------------===//
// An fp64 evaluator of recorded graphs.
//===----------------------------------------------------------------------===//

int64_t count(const Dims &dims) {
  int64_t n = 1;
  for (int64_t x : dims)
    n *= x;
  return n;
}

/// The multi-index of element `flat` of a row-major `dims`.
Dims unflatten(int64_t flat, const Dims &dims) {
  Dims idx(dims.size());
  for (size_t a = dims.size(); a-- > 0;) {
    idx[a] = flat % dims[a];
    flat /= dims[a];
  }
  return idx;
}

int64_t offset(const Dims &idx, const Dims &strides) {
  int64_t o = 0;
  for (size_t a = 0; a < idx.size(); ++a)
    o += idx[a] * strides[a];
  return o;
}

/// Index along an axis of size `from` that an index `i` along `to` reads:
/// equal sizes map straight, size 1 broadcasts, and a smaller size is a
/// grouped dimension (grouped-query heads: `to` = `from` x group, row-major).
int64_t mapIndex(int64_t i, int64_t to, int64_t from) {
  if (from == to)
    return i;
  if (from == 1)
    return 0;
  return i / (to / from);
}

Dims mapped(const Dims &idx, const Dims &to, const Dims &from) {
  Dims r(idx.size());
  for (size_t a = 0; a < idx.size(); ++a)
    r[a] = mapIndex(idx[a], to[a], from[a]);
  return r;
}

class Evaluator {
public:
  /// `memory`: uid -> host buffer of the tensors in memory, addressed with
  /// their strides.
  explicit Evaluator(std::map<int64_t, double *> memory)
      : memory_(std::move(memory)) {}

  void run(const GraphTrace &g) {
    for (const GraphOp &op : g.ops) {
      SCOPED_TRACE("operation " + op.name);
      put(op.out, eval(op));
    }
  }

private:
  /// A tensor's values, row-major over its dims.
  Vec get(const GraphTensor *t) {
    if (t->byValue)
      return Vec(count(t->dims), t->value);
    if (t->isVirtual) {
      EXPECT_TRUE(values_.count(t)) << t->name << " read before written";
      return values_[t];
    }
    const double *mem = bound(t);
    Vec v(count(t->dims));
    for (int64_t i = 0; i < int64_t(v.size()); ++i)
      v[i] = mem[offset(unflatten(i, t->dims), t->strides)];
    return v;
  }

  void put(const GraphTensor *t, Vec v) {
    if (t->isVirtual) {
      values_[t] = std::move(v);
      return;
    }
    double *mem = bound(t);
    for (int64_t i = 0; i < int64_t(v.size()); ++i)
      mem[offset(unflatten(i, t->dims), t->strides)] = v[i];
  }

  double *bound(const GraphTensor *t) {
    auto it = memory_.find(t->uid);
    EXPECT_NE(it, memory_.end()) << "no memory bound to " << t->name;
    return it == memory_.end() ? scratch_.data() : it->second;
  }

  Vec eval(const GraphOp &op) {
    const GraphTensor *out = op.out;
    Vec y(count(out->dims));
    switch (op.kind) {
    case GraphOp::Matmul: {
      const GraphTensor *a = op.in[0], *b = op.in[1];
      const Vec av = get(a), bv = get(b);
      const size_t r = out->dims.size();
      const int64_t K = a->dims[r - 1];
      EXPECT_EQ(K, b->dims[r - 2]) << op.name;
      for (int64_t i = 0; i < int64_t(y.size()); ++i) {
        const Dims idx = unflatten(i, out->dims);
        Dims ai(r), bi(r); // batch dimensions broadcast, then [M, K] x [K, N]
        for (size_t x = 0; x + 2 < r; ++x) {
          ai[x] = mapIndex(idx[x], out->dims[x], a->dims[x]);
          bi[x] = mapIndex(idx[x], out->dims[x], b->dims[x]);
        }
        ai[r - 2] = idx[r - 2], bi[r - 1] = idx[r - 1];
        double s = 0;
        for (int64_t k = 0; k < K; ++k) {
          ai[r - 1] = k, bi[r - 2] = k;
          s += av[offset(ai, rowMajor(a->dims))] *
               bv[offset(bi, rowMajor(b->dims))];
        }
        y[i] = s;
      }
      return y;
    }
    case GraphOp::Pointwise: {
      std::vector<Vec> in;
      for (const GraphTensor *t : op.in)
        in.push_back(get(t));
      for (int64_t i = 0; i < int64_t(y.size()); ++i) {
        const Dims idx = unflatten(i, out->dims);
        auto arg = [&](size_t n) {
          const GraphTensor *t = op.in[n];
          return in[n]
                   [offset(mapped(idx, out->dims, t->dims), rowMajor(t->dims))];
        };
        y[i] = pointwise(cudnnPointwiseMode_t(op.mode), op, idx, arg);
      }
      return y;
    }
    case GraphOp::Reduction: {
      const GraphTensor *x = op.in[0];
      const Vec xv = get(x);
      const bool max = op.mode == CUDNN_REDUCE_TENSOR_MAX;
      EXPECT_TRUE(max || op.mode == CUDNN_REDUCE_TENSOR_ADD) << op.name;
      std::fill(y.begin(), y.end(),
                max ? -std::numeric_limits<double>::infinity() : 0.0);
      for (int64_t i = 0; i < int64_t(xv.size()); ++i) {
        const Dims xi = unflatten(i, x->dims);
        Dims yi(xi.size());
        for (size_t a = 0; a < xi.size(); ++a) // onto size 1, or groups
          yi[a] = out->dims[a] == 1 ? 0 : xi[a] / (x->dims[a] / out->dims[a]);
        double &acc = y[offset(yi, rowMajor(out->dims))];
        acc = max ? std::max(acc, xv[i]) : acc + xv[i];
      }
      return y;
    }
    case GraphOp::Reshape: {
      // The same memory seen through other dims and strides.
      const GraphTensor *x = op.in[0];
      std::vector<double> image;
      const double *mem;
      if (x->isVirtual) {
        const Vec xv = get(x);
        int64_t span = 1;
        for (size_t a = 0; a < x->dims.size(); ++a)
          span += (x->dims[a] - 1) * x->strides[a];
        image.assign(span, std::nan(""));
        for (int64_t i = 0; i < int64_t(xv.size()); ++i)
          image[offset(unflatten(i, x->dims), x->strides)] = xv[i];
        mem = image.data();
      } else {
        mem = bound(x);
      }
      for (int64_t i = 0; i < int64_t(y.size()); ++i)
        y[i] = mem[offset(unflatten(i, out->dims), out->strides)];
      return y;
    }
    }
    return y;
  }

  template <typename Arg>
  static double pointwise(cudnnPointwiseMode_t mode, const GraphOp &op,
                          const Dims &idx, Arg arg) {
    switch (mode) {
    case CUDNN_POINTWISE_ADD:
      return arg(0) + arg(1);
    case CUDNN_POINTWISE_SUB:
      return arg(0) - arg(1);
    case CUDNN_POINTWISE_MUL:
      return arg(0) * arg(1);
    case CUDNN_POINTWISE_DIV:
      return arg(0) / arg(1);
    case CUDNN_POINTWISE_EXP:
      return std::exp(arg(0));
    case CUDNN_POINTWISE_LOG:
      return std::log(arg(0));
    case CUDNN_POINTWISE_IDENTITY:
      return arg(0);
    case CUDNN_POINTWISE_GEN_INDEX:
      return double(idx[op.axis]);
    case CUDNN_POINTWISE_CMP_GE:
      return arg(0) >= arg(1) ? 1.0 : 0.0;
    case CUDNN_POINTWISE_BINARY_SELECT: // t ? x : b
      return arg(2) != 0 ? arg(0) : arg(1);
    default:
      ADD_FAILURE() << op.name << ": pointwise mode " << int(mode)
                    << " is not evaluated here";
      return std::nan("");
    }
  }

  static Dims rowMajor(const Dims &dims) {
    Dims s(dims.size(), 1);
    for (size_t a = dims.size() - 1; a-- > 0;)
      s[a] = s[a + 1] * dims[a + 1];
    return s;
  }

  std::map<int64_t, double *> memory_;
  std::map<const GraphTensor *, Vec> values_;
  std::vector<double> scratch_ = std::vector<double>(1 << 20);
};

//===----------------------------------------------------------------------===//
// The cases.
//===----------------------------------------------------------------------===//

using Case = AttentionCase;

double relErr(const Vec &got, const Vec &want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

/// Rows [r0, r1) of every sequence of a [B, rows, stride] buffer, `width`
/// columns from column 0.
Vec rows(const Vec &v, int64_t B, int64_t nrows, int64_t stride, int64_t width,
         int64_t r0, int64_t r1) {
  Vec out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = r0; r < r1; ++r)
      out.insert(out.end(), v.begin() + (b * nrows + r) * stride,
                 v.begin() + (b * nrows + r) * stride + width);
  return out;
}

/// Copies a packed [n, width] matrix into rows of `stride`.
Vec strided(const Vec &packed, int64_t n, int64_t width, int64_t stride) {
  Vec out(n * stride, std::nan(""));
  for (int64_t r = 0; r < n; ++r)
    std::copy_n(packed.begin() + r * width, width, out.begin() + r * stride);
  return out;
}

/// fp64 throughout, but the graphs' scale is an fp32 scalar (as cuDNN takes
/// it): 1/sqrt(8) is off by 1e-8 relative. A wrong graph is off by O(1).
constexpr double kTol = 1e-6;

/// The recorded forward and backward graphs evaluated in fp64 against the
/// CPU reference (cpu::attention_fwd/_bwd at double) on the same inputs.
void checkGraphsCompute(const Case &c, uint32_t seed) {
  SCOPED_TRACE(c.name());
  const cpu::AttentionDims d = c.dims();
  const AttentionStrides s = c.strides();
  const int64_t B = c.batch, L = c.len, skv = c.start + c.len;
  const int64_t qw = c.heads * c.headDim, kvw = c.kvHeads * c.headDim;

  Rng rng(seed);
  const Vec q = rng.uniform(B * L * qw, -2, 2);
  const Vec k = rng.uniform(B * c.maxSeq * kvw, -2, 2);
  const Vec v = rng.uniform(B * c.maxSeq * kvw);
  const Vec dout = rng.uniform(B * L * qw);

  // The KV-gradient caches start at zero, so they end up holding exactly
  // this chunk's share of keys [0, start+len).
  const Vec zeros(B * c.maxSeq * kvw, 0.0);
  const AttentionReference ref =
      attentionReference(q, k, v, dout, zeros, zeros, d);
  const Vec &out = ref.out, &lse = ref.lse, &dq = ref.dq;
  const Vec &dkRef = ref.dk, &dvRef = ref.dv;

  // The graphs, on memory laid out as the engine binds it.
  Vec gq = strided(q, B * L, qw, s.q), gk = k, gv = v;
  Vec gout(B * L * s.out, std::nan("")), glse(B * c.heads * L, std::nan(""));
  Evaluator fwd({{uid::Q, gq.data()},
                 {uid::K, gk.data()},
                 {uid::V, gv.data()},
                 {uid::O, gout.data()},
                 {uid::Lse, glse.data()}});
  fwd.run(cudnnAttentionGraph(false, d, s));
  EXPECT_LT(relErr(rows(gout, B, L, s.out, qw, 0, L), out), kTol) << "out";
  EXPECT_LT(relErr(glse, lse), kTol) << "lse";

  Vec gdout = strided(dout, B * L, qw, s.out), gdq(B * L * s.dq, std::nan(""));
  Vec dkPart(B * skv * kvw, std::nan("")), dvPart(B * skv * kvw, std::nan(""));
  Vec delta(B * c.heads * L, std::nan("")), dqAcc(B * L * qw, std::nan(""));
  Evaluator bwd({{uid::Q, gq.data()},
                 {uid::K, gk.data()},
                 {uid::V, gv.data()},
                 {uid::O, gout.data()},
                 {uid::Dout, gdout.data()},
                 {uid::Lse, glse.data()},
                 {uid::Dq, gdq.data()},
                 {uid::DkPart, dkPart.data()},
                 {uid::DvPart, dvPart.data()},
                 {uid::Delta, delta.data()},
                 {uid::DqAccum, dqAcc.data()}});
  bwd.run(cudnnAttentionGraph(true, d, s));
  EXPECT_LT(relErr(rows(gdq, B, L, s.dq, qw, 0, L), dq), kTol) << "dq";
  EXPECT_LT(relErr(dkPart, rows(dkRef, B, c.maxSeq, kvw, kvw, 0, skv)), kTol)
      << "dk of the prefix";
  EXPECT_LT(relErr(dvPart, rows(dvRef, B, c.maxSeq, kvw, kvw, 0, skv)), kTol)
      << "dv of the prefix";
  if (c.start == 0)
    return; // engine cudnn-split runs the same graphs then

  // Engine cudnn-split: the Own and Prefix graphs, bound as the engine binds
  // them (attention_cudnn.h), and merged here as its kernels merge them.
  SCOPED_TRACE("cudnn-split");
  const int64_t kvAt = c.start * kvw, H = c.heads, Dh = c.headDim;
  Vec sout(B * L * s.out, std::nan("")), slse(B * H * L, std::nan(""));
  Vec pout(B * L * qw, std::nan("")), plse(B * H * L, std::nan(""));
  Evaluator({{uid::Q, gq.data()},
             {uid::K, gk.data() + kvAt},
             {uid::V, gv.data() + kvAt},
             {uid::O, sout.data()},
             {uid::Lse, slse.data()}})
      .run(cudnnAttentionGraph(false, d, s, CudnnKeys::Own));
  Evaluator({{uid::Q, gq.data()},
             {uid::K, gk.data()},
             {uid::V, gv.data()},
             {uid::O, pout.data()},
             {uid::Lse, plse.data()}})
      .run(cudnnAttentionGraph(false, d, s, CudnnKeys::Prefix));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < L; ++r)
      for (int64_t h = 0; h < H; ++h) {
        double &own = slse[(b * H + h) * L + r];
        const double prefix = plse[(b * H + h) * L + r];
        const double lseAll = std::log(std::exp(own) + std::exp(prefix));
        for (int64_t j = 0; j < Dh; ++j) {
          double &o = sout[(b * L + r) * s.out + h * Dh + j];
          o = std::exp(own - lseAll) * o +
              std::exp(prefix - lseAll) * pout[(b * L + r) * qw + h * Dh + j];
        }
        own = lseAll;
      }
  EXPECT_LT(relErr(rows(sout, B, L, s.out, qw, 0, L), out), kTol) << "out";
  EXPECT_LT(relErr(slse, lse), kTol) << "lse";

  Vec sdq(B * L * s.dq, std::nan("")), pdq(B * L * qw, std::nan(""));
  Vec sdk(B * skv * kvw, std::nan("")), sdv(B * skv * kvw, std::nan(""));
  for (CudnnKeys keys : {CudnnKeys::Own, CudnnKeys::Prefix}) {
    const bool own = keys == CudnnKeys::Own;
    const int64_t at = own ? kvAt : 0;
    Evaluator({{uid::Q, gq.data()},
               {uid::K, gk.data() + at},
               {uid::V, gv.data() + at},
               {uid::O, sout.data()},
               {uid::Dout, gdout.data()},
               {uid::Lse, slse.data()},
               {uid::Dq, own ? sdq.data() : pdq.data()},
               {uid::DkPart, sdk.data() + at},
               {uid::DvPart, sdv.data() + at},
               {uid::Delta, delta.data()},
               {uid::DqAccum, dqAcc.data()}})
        .run(cudnnAttentionGraph(true, d, s, keys));
  }
  Vec dqSum = rows(sdq, B, L, s.dq, qw, 0, L);
  for (size_t i = 0; i < dqSum.size(); ++i)
    dqSum[i] += pdq[i];
  EXPECT_LT(relErr(dqSum, dq), kTol) << "dq";
  EXPECT_LT(relErr(sdk, rows(dkRef, B, c.maxSeq, kvw, kvw, 0, skv)), kTol)
      << "dk of the prefix";
  EXPECT_LT(relErr(sdv, rows(dvRef, B, c.maxSeq, kvw, kvw, 0, skv)), kTol)
      << "dv of the prefix";
}

const Case kCases[] = {{1, 2, 2, 16, 24, 0, 24, false},
                       {2, 4, 2, 8, 40, 13, 17, false},
                       {1, 3, 3, 16, 30, 29, 1, false},
                       {1, 4, 1, 8, 50, 20, 30, true},
                       {2, 2, 2, 16, 33, 0, 20, false}};

TEST(CudnnGraph, ComputesAttention) {
  uint32_t seed = 1;
  for (const Case &c : kCases)
    checkGraphsCompute(c, seed++);
}

TEST(CudnnGraph, PlansForAnH200) {
  if (const std::string why = cudnn_unavailable_reason(); !why.empty())
    GTEST_SKIP() << why;
  std::string device;
  const std::string stub = S1F_CUDA_STUB_DRIVER;
  if (device_count() == 0 && !stub.empty() &&
      stub.find("NOTFOUND") == std::string::npos &&
      dlopen(stub.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
    std::ifstream f(S1F_TEST_DATA_DIR "/h200-cudnn-device.json");
    std::stringstream text;
    text << f.rdbuf();
    device = text.str();
    ASSERT_FALSE(device.empty()) << "no data/h200-cudnn-device.json";
  }
  // The GPU tests' layouts, and the 7B layer's last chunk at 32k.
  const Case cases[] = {{1, 2, 2, 64, 64, 0, 64, false},
                        {2, 4, 2, 64, 300, 0, 300, false},
                        {2, 4, 2, 128, 320, 130, 77, false},
                        {1, 3, 3, 64, 200, 199, 1, false},
                        {1, 4, 4, 128, 400, 96, 200, true},
                        {1, 32, 32, 128, 32768, 24576, 8192, true}};
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name() + (device.empty() ? ", operations only"
                                            : ", plans for an H200"));
    EXPECT_NO_THROW(cudnnCheckAttentionGraphs(c.dims(), c.strides(), device));
  }
}

} // namespace
