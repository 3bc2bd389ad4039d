//===- attention_cudnn.cpp - Attention through cuDNN's fused kernels ------===//
//
// The cuDNN engine of attention_fwd/_bwd (S1F_ATTENTION_ENGINE=cudnn;
// attention.h has the contract). cuDNN runs scaled dot-product attention as
// one fused flash-attention kernel when it is handed, through its backend
// graph API, the operation graph that spells attention out: matrix
// products, pointwise operations and row reductions, which its fusion
// engines recognize. The graphs below are the ones cuDNN's fused-attention
// support expects for causal attention aligned bottom-right (key j is kept
// for query i iff i + s_kv - s_q >= j):
//
//   forward   S = mask(scale * Q K^T); M = rowmax S; E = exp(S - M);
//             Z = rowsum E; lse = M + log Z; O = (E / Z) V
//   backward  delta = rowsum(dO * O); P = exp(mask(scale * Q K^T) - lse);
//             dV = P^T dO; dS = scale * P * (dO V^T - delta);
//             dK = dS^T Q; dQ = dS K (an fp32 accumulator, then bf16)
//
// With grouped-query heads dK and dV come per query head and are summed over
// each group. cuDNN writes dK/dV for every prefix key; mergeKvGrad
// (attention_cudnn_merge.cu) then adds the earlier keys' rows into the fp32
// KV-gradient buffers and finishes the chunk's own rows, as the contract
// says.
//
// Why the C API: cuDNN's own C++ front end is a header library that neither
// Debian nor the GPU machine carries. cuDNN itself is loaded at run time
// (dlopen of libcudnn.so.9, or $S1F_CUDNN_LIBRARY), so every binary starts,
// and the own engine runs, where cuDNN is missing. A plan is built once per
// shape (heuristics mode A, then the fallback list; the first engine
// configuration that finalizes) and cached; S1F_CUDNN_LOG=1 reports each
// build on stderr.
//
//===----------------------------------------------------------------------===//

#include "attention_cudnn.h"

#include "seq1f1b/runtime/cuda/check.h"

#include <cudnn_graph.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace s1f::rt::cuda::detail {
namespace {

constexpr const char *kWho = "attention (cudnn engine): ";

//===----------------------------------------------------------------------===//
// Loading cuDNN.
//===----------------------------------------------------------------------===//

/// Bottom-right causal masks for lengths that are not multiples of 64.
constexpr size_t kMinVersion = 90600;

struct Api {
  decltype(&::cudnnGetVersion) getVersion = nullptr;
  decltype(&::cudnnGetErrorString) errorString = nullptr;
  decltype(&::cudnnGetLastErrorString) lastErrorString = nullptr;
  decltype(&::cudnnCreate) create = nullptr;
  decltype(&::cudnnSetStream) setStream = nullptr;
  decltype(&::cudnnBackendCreateDescriptor) createDescriptor = nullptr;
  decltype(&::cudnnBackendDestroyDescriptor) destroyDescriptor = nullptr;
  decltype(&::cudnnBackendSetAttribute) setAttribute = nullptr;
  decltype(&::cudnnBackendGetAttribute) getAttribute = nullptr;
  decltype(&::cudnnBackendFinalize) finalize = nullptr;
  decltype(&::cudnnBackendExecute) execute = nullptr;
  size_t version = 0;
  std::string error; ///< why cuDNN cannot be used; empty when it can
};

std::string versionString(size_t v) {
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100);
}

Api loadApi() {
  Api a;
  const char *env = std::getenv("S1F_CUDNN_LIBRARY");
  const std::string path = env && *env ? env : "libcudnn.so.9";
  void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    a.error = "cannot load " + path + " (" + (why ? why : "unknown error") +
              "); put cuDNN 9 on the library path or set S1F_CUDNN_LIBRARY "
              "to its libcudnn.so.9";
    return a;
  }
  auto bind = [&](auto &fn, const char *name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
        dlsym(lib, name));
    if (!fn && a.error.empty())
      a.error = path + " has no " + name;
  };
  bind(a.getVersion, "cudnnGetVersion");
  bind(a.errorString, "cudnnGetErrorString");
  bind(a.lastErrorString, "cudnnGetLastErrorString");
  bind(a.create, "cudnnCreate");
  bind(a.setStream, "cudnnSetStream");
  bind(a.createDescriptor, "cudnnBackendCreateDescriptor");
  bind(a.destroyDescriptor, "cudnnBackendDestroyDescriptor");
  bind(a.setAttribute, "cudnnBackendSetAttribute");
  bind(a.getAttribute, "cudnnBackendGetAttribute");
  bind(a.finalize, "cudnnBackendFinalize");
  bind(a.execute, "cudnnBackendExecute");
  if (!a.error.empty())
    return a;
  a.version = a.getVersion();
  if (a.version < kMinVersion)
    a.error = path + " is cuDNN " + versionString(a.version) +
              "; the fused attention with a bottom-right causal mask needs " +
              versionString(kMinVersion) + " or newer";
  return a;
}

/// Loaded once per process (the handles and plans below live as long).
const Api &api() {
  static const Api a = loadApi();
  return a;
}

const Api &usableApi() {
  const Api &a = api();
  if (!a.error.empty())
    throw std::runtime_error(kWho + a.error);
  return a;
}

void check(cudnnStatus_t st, const std::string &what) {
  if (st == CUDNN_STATUS_SUCCESS)
    return;
  const Api &a = api();
  char detail[2048] = "";
  a.lastErrorString(detail, sizeof detail);
  throw std::runtime_error(kWho + what + " failed: " + a.errorString(st) +
                           (detail[0] ? std::string(" (") + detail + ")" : ""));
}

//===----------------------------------------------------------------------===//
// Backend descriptors.
//===----------------------------------------------------------------------===//

/// One backend descriptor, destroyed with its owner; `name` goes into errors.
class Desc {
public:
  Desc(cudnnBackendDescriptorType_t type, std::string name)
      : name_(std::move(name)) {
    check(usableApi().createDescriptor(type, &d_), "creating " + name_);
  }
  ~Desc() {
    if (d_)
      api().destroyDescriptor(d_);
  }
  Desc(const Desc &) = delete;
  Desc &operator=(const Desc &) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }

  Desc &set(cudnnBackendAttributeName_t attr, cudnnBackendAttributeType_t type,
            int64_t count, const void *value) {
    check(api().setAttribute(d_, attr, type, count, value),
          "setting attribute " + std::to_string(int(attr)) + " of " + name_);
    return *this;
  }
  Desc &setDesc(cudnnBackendAttributeName_t attr, const Desc &other) {
    const cudnnBackendDescriptor_t p = other.get();
    return set(attr, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &p);
  }
  Desc &setInt(cudnnBackendAttributeName_t attr, int64_t v) {
    return set(attr, CUDNN_TYPE_INT64, 1, &v);
  }
  Desc &setType(cudnnBackendAttributeName_t attr, cudnnDataType_t v) {
    return set(attr, CUDNN_TYPE_DATA_TYPE, 1, &v);
  }
  Desc &finalize() {
    check(api().finalize(d_), "finalizing " + name_);
    return *this;
  }

private:
  cudnnBackendDescriptor_t d_ = nullptr;
  std::string name_;
};

//===----------------------------------------------------------------------===//
// Operation graphs.
//===----------------------------------------------------------------------===//

using Dims = std::vector<int64_t>;

/// A tensor of the graph under construction: its record, and its cuDNN
/// descriptor (none when the graph is only recorded).
struct Tensor {
  const GraphTensor *info;
  const Desc *desc;
  const Dims &dims() const { return info->dims; }
};

Dims packedStrides(const Dims &dims) {
  Dims s(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;)
    s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/// The elementwise result shape of tensors that broadcast against each other.
Dims broadcast(const Dims &a, const Dims &b) {
  Dims r = a;
  for (size_t i = 0; i < r.size(); ++i)
    r[i] = std::max(a[i], b[i]);
  return r;
}

/// Builds one operation graph, finds an engine for it and runs it. Tensors
/// bound to memory have the caller's unique ids; virtual tensors and
/// by-value scalars get ids from 1000 up, and the scalars' values live here
/// (the variant pack points at them). Every tensor and operation is also
/// recorded (trace()); with `withCudnn` false only recorded, which needs no
/// cuDNN at all.
class Graph {
public:
  explicit Graph(std::string name, bool withCudnn = true)
      : name_(std::move(name)), cudnn_(withCudnn) {}

  int64_t workspaceBytes() const { return workspace_; }
  GraphTrace &trace() { return trace_; }

  /// A tensor in device memory, bound at execution by `uid`.
  Tensor data(int64_t uid, const char *name, Dims dims, Dims strides,
              cudnnDataType_t type) {
    return tensor(uid, name, std::move(dims), std::move(strides), type, false,
                  false);
  }
  Tensor virt(const char *name, Dims dims, cudnnDataType_t type,
              Dims strides = {}) {
    if (strides.empty())
      strides = packedStrides(dims);
    return tensor(nextUid_++, name, std::move(dims), std::move(strides), type,
                  true, false);
  }
  Tensor scalar(const char *name, float v) {
    scalars_.push_back({nextUid_, {}});
    scalars_.back().value.f = v;
    return tensor(nextUid_++, name, {1, 1, 1, 1}, {1, 1, 1, 1},
                  CUDNN_DATA_FLOAT, false, true, v);
  }
  Tensor scalar(const char *name, int32_t v) {
    scalars_.push_back({nextUid_, {}});
    scalars_.back().value.i = v;
    return tensor(nextUid_++, name, {1, 1, 1, 1}, {1, 1, 1, 1},
                  CUDNN_DATA_INT32, false, true, v);
  }

  void matmul(const char *name, const Tensor &a, const Tensor &b,
              const Tensor &c) {
    record(GraphOp::Matmul, name, 0, {a, b}, c);
    if (!cudnn_)
      return;
    Desc &m = keep(CUDNN_BACKEND_MATMUL_DESCRIPTOR, name);
    m.setType(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT).finalize();
    Desc &op = addOp(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, name);
    op.setDesc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, *a.desc)
        .setDesc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, *b.desc)
        .setDesc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, *c.desc)
        .setDesc(CUDNN_ATTR_OPERATION_MATMUL_DESC, m)
        .finalize();
  }

  /// y = mode(x[, b[, t]]) computed in `math`. GEN_INDEX takes `axis`.
  void pointwise(const char *name, cudnnPointwiseMode_t mode,
                 cudnnDataType_t math, const Tensor &x, const Tensor &y,
                 const Tensor *b = nullptr, const Tensor *t = nullptr,
                 int64_t axis = -1) {
    std::vector<Tensor> in{x};
    for (const Tensor *extra : {b, t})
      if (extra)
        in.push_back(*extra);
    record(GraphOp::Pointwise, name, mode, in, y, axis);
    if (!cudnn_)
      return;
    Desc &pw = keep(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, name);
    pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode)
        .setType(CUDNN_ATTR_POINTWISE_MATH_PREC, math);
    if (mode == CUDNN_POINTWISE_GEN_INDEX)
      pw.setInt(CUDNN_ATTR_POINTWISE_AXIS, axis);
    pw.finalize();
    Desc &op = addOp(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, name);
    op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw)
        .setDesc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, *x.desc)
        .setDesc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, *y.desc);
    if (b)
      op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b->desc);
    if (t)
      op.setDesc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t->desc);
    const float one = 1.0f;
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one)
        .set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one)
        .finalize();
  }

  /// A virtual fp32 result of a one- or two-input pointwise operation.
  Tensor apply(const char *name, cudnnPointwiseMode_t mode, const Tensor &x,
               const Tensor *b = nullptr) {
    Tensor y = virt(name, b ? broadcast(x.dims(), b->dims()) : x.dims(),
                    CUDNN_DATA_FLOAT);
    pointwise(name, mode, CUDNN_DATA_FLOAT, x, y, b);
    return y;
  }
  Tensor apply(const char *name, cudnnPointwiseMode_t mode, const Tensor &x,
               const Tensor &b) {
    return apply(name, mode, x, &b);
  }

  void reduction(const char *name, cudnnReduceTensorOp_t mode, const Tensor &x,
                 const Tensor &y) {
    record(GraphOp::Reduction, name, mode, {x}, y);
    if (!cudnn_)
      return;
    Desc &r = keep(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, name);
    r.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1,
          &mode)
        .setType(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT)
        .finalize();
    Desc &op = addOp(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, name);
    op.setDesc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, *x.desc)
        .setDesc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, *y.desc)
        .setDesc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, r)
        .finalize();
  }

  void reshape(const char *name, const Tensor &x, const Tensor &y) {
    record(GraphOp::Reshape, name, 0, {x}, y);
    if (!cudnn_)
      return;
    Desc &op = addOp(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, name);
    op.setDesc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, *x.desc)
        .setDesc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, *y.desc)
        .finalize();
  }

  /// Finalizes the operation graph and keeps the first engine configuration
  /// that cuDNN's heuristics offer and that builds into an execution plan:
  /// for the GPU of `handle`, or (handle null) for the device that `device`
  /// describes, which needs no GPU (cuDNN 9.8 and newer).
  void build(cudnnHandle_t handle, const Desc *device = nullptr);

  /// Runs the plan on `stream` with the memory tensors bound by uid.
  void execute(cudnnHandle_t handle, cudaStream_t stream,
               const std::vector<std::pair<int64_t, void *>> &bound,
               void *workspace) const;

private:
  struct Scalar {
    int64_t uid;
    union {
      float f;
      int32_t i;
    } value;
  };

  Desc &keep(cudnnBackendDescriptorType_t type, const std::string &name) {
    descs_.emplace_back(type, name_ + ": " + name);
    return descs_.back();
  }
  Desc &addOp(cudnnBackendDescriptorType_t type, const std::string &name) {
    Desc &op = keep(type, "operation " + name);
    ops_.push_back(op.get());
    return op;
  }
  void record(GraphOp::Kind kind, const char *name, int mode,
              const std::vector<Tensor> &in, const Tensor &out,
              int64_t axis = -1) {
    GraphOp op{kind, name, mode, axis, {}, out.info};
    for (const Tensor &t : in)
      op.in.push_back(t.info);
    trace_.ops.push_back(std::move(op));
  }
  Tensor tensor(int64_t uid, const char *name, Dims dims, Dims strides,
                cudnnDataType_t type, bool isVirtual, bool byValue,
                double value = 0) {
    trace_.tensors.push_back(
        {uid, name, dims, strides, type, isVirtual, byValue, value});
    const GraphTensor *info = &trace_.tensors.back();
    if (!cudnn_)
      return {info, nullptr};
    Desc &t =
        keep(CUDNN_BACKEND_TENSOR_DESCRIPTOR, std::string("tensor ") + name);
    t.setType(CUDNN_ATTR_TENSOR_DATA_TYPE, type)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64,
             int64_t(dims.size()), dims.data())
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64,
             int64_t(strides.size()), strides.data())
        .setInt(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid)
        .setInt(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
    const bool yes = true;
    if (isVirtual)
      t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &yes);
    if (byValue)
      t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes);
    t.finalize();
    return {info, &t};
  }

  std::string name_;
  bool cudnn_;
  GraphTrace trace_;
  std::deque<Desc> descs_; ///< everything the plan refers to (stable)
  std::vector<cudnnBackendDescriptor_t> ops_;
  std::deque<Scalar> scalars_;
  const Desc *plan_ = nullptr;
  int64_t workspace_ = 0;
  int64_t nextUid_ = 1000;
};

/// cuDNN's global index of the engine of an engine configuration (what its
/// logs and errors call engineId), or -1 if it cannot be read.
int64_t engineOf(cudnnBackendDescriptor_t config) {
  const Api &a = api();
  cudnnBackendDescriptor_t engine = nullptr;
  int64_t n = 0, id = -1;
  if (a.createDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) !=
      CUDNN_STATUS_SUCCESS)
    return -1;
  if (a.getAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE,
                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                     &engine) != CUDNN_STATUS_SUCCESS ||
      a.getAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64,
                     1, &n, &id) != CUDNN_STATUS_SUCCESS)
    id = -1;
  a.destroyDescriptor(engine);
  return id;
}

void Graph::build(cudnnHandle_t handle, const Desc *device) {
  const auto t0 = std::chrono::steady_clock::now();
  const Api &a = usableApi();
  Desc &graph =
      keep(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
  if (handle)
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  graph
      .set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
           int64_t(ops_.size()), ops_.data())
      .finalize();

  std::string tried; // why each candidate failed, for the error message
  auto note = [&](const std::string &what, cudnnStatus_t st) {
    char detail[4096] = "";
    a.lastErrorString(detail, sizeof detail);
    tried += "\n  " + what + ": " + a.errorString(st) +
             (detail[0] ? std::string(" (") + detail + ")" : "");
  };
  const std::pair<cudnnBackendHeurMode_t, const char *> modes[] = {
      {CUDNN_HEUR_MODE_A, "heuristics A"},
      {CUDNN_HEUR_MODE_FALLBACK, "fallback list"}};
  for (auto [mode, modeName] : modes) {
    Desc &heur = keep(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, modeName);
    heur.setDesc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
        .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (device)
      heur.setDesc(CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, *device);
    if (cudnnStatus_t st = a.finalize(heur.get()); st != CUDNN_STATUS_SUCCESS) {
      note(modeName, st);
      continue;
    }
    int64_t count = 0;
    check(a.getAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
          name_ + ": counting the engine configurations of " + modeName);
    std::vector<cudnnBackendDescriptor_t> configs;
    for (int64_t i = 0; i < count; ++i)
      configs.push_back(
          keep(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
               std::string(modeName) + " config " + std::to_string(i))
              .get());
    int64_t got = 0;
    check(a.getAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                         configs.data()),
          name_ + ": reading the engine configurations of " + modeName);
    if (got == 0)
      note(modeName, CUDNN_STATUS_NOT_SUPPORTED);
    for (int64_t i = 0; i < got; ++i) {
      Desc &plan = keep(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
                        "execution plan " + std::to_string(i));
      plan.set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &configs[i]);
      if (handle)
        plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                 &handle);
      if (device)
        plan.setDesc(CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP, *device);
      const cudnnStatus_t st = a.finalize(plan.get());
      // Without a GPU (no handle) a stub driver refuses to load the kernel
      // cuDNN has just generated for the plan: as far as such a machine gets.
      const bool offline =
          !handle && st == CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER;
      if (st != CUDNN_STATUS_SUCCESS && !offline) {
        note(std::string(modeName) + " config " + std::to_string(i), st);
        continue;
      }
      if (!offline) {
        int64_t n = 0;
        check(a.getAttribute(plan.get(),
                             CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                             CUDNN_TYPE_INT64, 1, &n, &workspace_),
              name_ + ": reading the plan's workspace size");
        plan_ = &plan;
      }
      if (const char *log = std::getenv("S1F_CUDNN_LOG"); log && *log) {
        const double ms = std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
        std::fprintf(
            stderr,
            "s1f cudnn: %s: engine %lld (%s config %lld of %lld), "
            "%s, built in %.0f ms%s\n",
            name_.c_str(), static_cast<long long>(engineOf(configs[i])),
            modeName, static_cast<long long>(i), static_cast<long long>(got),
            offline ? "kernel generated, not loaded (no GPU)"
                    : ("workspace " + std::to_string(workspace_) + " bytes")
                          .c_str(),
            ms, tried.c_str());
      }
      return;
    }
  }
  throw std::runtime_error(kWho + name_ +
                           ": no cuDNN engine runs this graph (cuDNN " +
                           versionString(a.version) + "):" + tried);
}

void Graph::execute(cudnnHandle_t handle, cudaStream_t stream,
                    const std::vector<std::pair<int64_t, void *>> &bound,
                    void *workspace) const {
  std::vector<int64_t> uids;
  std::vector<void *> ptrs;
  for (const auto &[uid, ptr] : bound)
    uids.push_back(uid), ptrs.push_back(ptr);
  for (const Scalar &s : scalars_)
    uids.push_back(s.uid),
        ptrs.push_back(const_cast<void *>(static_cast<const void *>(&s.value)));
  Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, name_ + ": variant pack");
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
           int64_t(uids.size()), uids.data())
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
           int64_t(ptrs.size()), ptrs.data())
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
           &workspace)
      .finalize();
  const Api &a = api();
  check(a.setStream(handle, stream), "cudnnSetStream");
  check(a.execute(handle, plan_->get(), pack.get()),
        name_ + ": cudnnBackendExecute");
}

//===----------------------------------------------------------------------===//
// The attention graphs.
//===----------------------------------------------------------------------===//

constexpr cudnnDataType_t kBf16 = CUDNN_DATA_BFLOAT16;
constexpr cudnnDataType_t kF32 = CUDNN_DATA_FLOAT;

/// Shape and layout of one graph, as it sees them (CudnnKeys says which
/// keys a graph covers and where its results go).
struct Shape {
  int64_t B, H, Hk, D, sq, skv, maxSeq;
  int64_t qStride, oStride, dqStride;
  int64_t partRows; ///< rows per sequence of the dK/dV parts: start+len
  bool masked;      ///< causal, aligned bottom-right; else every key

  Shape(const cpu::AttentionDims &d, const AttentionStrides &s,
        CudnnKeys keys = CudnnKeys::All, bool backward = false)
      : B(d.batch), H(d.heads), Hk(d.kv_heads), D(d.head_dim), sq(d.len),
        skv(d.start + d.len), maxSeq(d.max_seq), qStride(s.q), oStride(s.out),
        dqStride(s.dq), partRows(d.start + d.len), masked(true) {
    if (d.scale != 0 || d.softcap != 0)
      throw std::invalid_argument(std::string(kWho) +
                                  "rescaled or soft-capped scores (Gemma 2) "
                                  "run on the CPU kernels only");
    if (keys == CudnnKeys::Own)
      skv = d.len;
    if (keys == CudnnKeys::Prefix) {
      if (d.start == 0)
        throw std::logic_error(std::string(kWho) +
                               "a chunk at start 0 has no prefix keys");
      skv = d.start, masked = false;
      (backward ? dqStride : oStride) = H * D; // the packed temporary
    }
  }

  int64_t kvw() const { return Hk * D; }
  /// [B, heads, rows, D] over [B, rows, stride] memory.
  Dims rowsOf(int64_t heads, int64_t rows) const { return {B, heads, rows, D}; }
  Dims stridesOf(int64_t rows, int64_t stride) const {
    return {rows * stride, D, stride, 1};
  }
  std::string describe() const {
    return "B=" + std::to_string(B) + " heads=" + std::to_string(H) + "/" +
           std::to_string(Hk) + " head_dim=" + std::to_string(D) +
           " s_q=" + std::to_string(sq) + " s_kv=" + std::to_string(skv) +
           (masked ? " causal" : " unmasked") +
           " strides q/out/dq=" + std::to_string(qStride) + "/" +
           std::to_string(oStride) + "/" + std::to_string(dqStride) +
           " max_seq=" + std::to_string(maxSeq) +
           " part_rows=" + std::to_string(partRows);
  }
};

/// Q, K^T (the KV cache read in place), the lse.
struct Inputs {
  Tensor q, kt, lse;
};

Inputs inputs(Graph &g, const Shape &s) {
  const int64_t kvw = s.kvw();
  return {g.data(uid::Q, "Q", s.rowsOf(s.H, s.sq), s.stridesOf(s.sq, s.qStride),
                 kBf16),
          g.data(uid::K, "K^T", {s.B, s.Hk, s.D, s.skv},
                 {s.maxSeq * kvw, s.D, 1, kvw}, kBf16),
          g.data(uid::Lse, "lse", {s.B, s.H, s.sq, 1}, {s.H * s.sq, s.sq, 1, 1},
                 kF32)};
}

/// mask(scale * Q K^T): fp32 scores, -inf where key j > i + s_kv - s_q (no
/// mask for an unmasked shape).
Tensor maskedScores(Graph &g, const Shape &s, const Inputs &in) {
  const Dims dims{s.B, s.H, s.sq, s.skv};
  const Tensor raw = g.virt("Q K^T", dims, kF32);
  g.matmul("Q K^T", in.q, in.kt, raw);
  const Tensor scale = g.scalar("scale", float(1.0 / std::sqrt(double(s.D))));
  const Tensor scaled =
      g.apply("scaled scores", CUDNN_POINTWISE_MUL, raw, scale);
  if (!s.masked)
    return scaled;

  const Tensor row = g.virt("row index", dims, CUDNN_DATA_INT32);
  const Tensor col = g.virt("column index", dims, CUDNN_DATA_INT32);
  g.pointwise("row index", CUDNN_POINTWISE_GEN_INDEX, kF32, scaled, row,
              nullptr, nullptr, 2);
  g.pointwise("column index", CUDNN_POINTWISE_GEN_INDEX, kF32, scaled, col,
              nullptr, nullptr, 3);
  // A whole sequence (s_q = s_kv) needs no shift: it gets the plain causal
  // mask, the graph PyTorch's cuDNN attention runs (the same fused kernels).
  Tensor diag = row;
  if (s.sq != s.skv) {
    const Tensor skv = g.scalar("s_kv", int32_t(s.skv));
    const Tensor sq = g.scalar("s_q", int32_t(s.sq));
    const Tensor plusKv = g.virt("row + s_kv", dims, CUDNN_DATA_INT32);
    g.pointwise("row + s_kv", CUDNN_POINTWISE_ADD, CUDNN_DATA_INT32, row,
                plusKv, &skv);
    diag = g.virt("row + s_kv - s_q", dims, CUDNN_DATA_INT32);
    g.pointwise("row + s_kv - s_q", CUDNN_POINTWISE_SUB, CUDNN_DATA_INT32,
                plusKv, diag, &sq);
  }
  const Tensor keep = g.virt("causal keep", dims, CUDNN_DATA_BOOLEAN);
  g.pointwise("causal keep", CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, diag,
              keep, &col);
  const Tensor minusInf =
      g.scalar("-inf", -std::numeric_limits<float>::infinity());
  const Tensor masked = g.virt("masked scores", dims, kF32);
  g.pointwise("causal mask", CUDNN_POINTWISE_BINARY_SELECT, kF32, scaled,
              masked, &minusInf, &keep);
  return masked;
}

/// The graphs' operations, every one finalized (checked by cuDNN, which
/// needs no GPU for that); Graph::build then finds an engine.
std::unique_ptr<Graph> forwardGraph(const Shape &s, bool withCudnn = true) {
  auto g = std::make_unique<Graph>("forward [" + s.describe() + "]", withCudnn);
  const int64_t kvw = s.kvw();
  const Inputs in = inputs(*g, s);
  const Tensor v = g->data(uid::V, "V", s.rowsOf(s.Hk, s.skv),
                           {s.maxSeq * kvw, s.D, kvw, 1}, kBf16);
  const Tensor o = g->data(uid::O, "O", s.rowsOf(s.H, s.sq),
                           s.stridesOf(s.sq, s.oStride), kBf16);
  const Tensor scores = maskedScores(*g, s, in);

  const Dims rowDims{s.B, s.H, s.sq, 1};
  const Tensor max = g->virt("row max", rowDims, kF32);
  g->reduction("row max", CUDNN_REDUCE_TENSOR_MAX, scores, max);
  const Tensor shifted = g->apply("S - max", CUDNN_POINTWISE_SUB, scores, max);
  const Tensor e = g->apply("exp(S - max)", CUDNN_POINTWISE_EXP, shifted);
  const Tensor sum = g->virt("row sum", rowDims, kF32);
  g->reduction("row sum", CUDNN_REDUCE_TENSOR_ADD, e, sum);
  const Tensor logSum = g->apply("log(row sum)", CUDNN_POINTWISE_LOG, sum);
  g->pointwise("lse", CUDNN_POINTWISE_ADD, kF32, max, in.lse, &logSum);
  const Tensor p = g->virt("P", {s.B, s.H, s.sq, s.skv}, kBf16);
  g->pointwise("P", CUDNN_POINTWISE_DIV, kF32, e, p, &sum);
  g->matmul("P V", p, v, o);
  return g;
}

/// The backward's workspace: delta, the fp32 dQ accumulator, cuDNN's dK/dV
/// of the prefix (bf16), the Prefix graph's dQ (bf16, engine cudnn-split
/// with start > 0 only), then cuDNN's own; offsets in fp32 elements, each
/// rounded up to 256 bytes.
struct BwdLayout {
  int64_t delta = 0, dqAccum, dkPart, dvPart, dqPrefix, cudnn, total;
  BwdLayout(const cpu::AttentionDims &d, bool split, int64_t cudnnBytes) {
    auto next = [](int64_t at, int64_t floats) {
      return at + (floats + 63) / 64 * 64;
    };
    auto halves = [](int64_t n) { return (n + 1) / 2; }; // bf16 in floats
    const int64_t rows = d.batch * d.len, qw = d.heads * d.head_dim;
    dqAccum = next(delta, d.batch * d.heads * d.len);
    dkPart = next(dqAccum, rows * qw);
    const int64_t part =
        halves(d.batch * (d.start + d.len) * d.kv_heads * d.head_dim);
    dvPart = next(dkPart, part);
    dqPrefix = next(dvPart, part);
    cudnn = next(dqPrefix, split && d.start > 0 ? halves(rows * qw) : 0);
    total = next(cudnn, (cudnnBytes + 3) / 4);
  }
};

std::unique_ptr<Graph> backwardGraph(const Shape &s, bool withCudnn = true) {
  auto g =
      std::make_unique<Graph>("backward [" + s.describe() + "]", withCudnn);
  const int64_t kvw = s.kvw();
  const Dims qDims = s.rowsOf(s.H, s.sq), rowDims{s.B, s.H, s.sq, 1};
  const Inputs in = inputs(*g, s);
  const Tensor vt = g->data(uid::V, "V^T", {s.B, s.Hk, s.D, s.skv},
                            {s.maxSeq * kvw, s.D, 1, kvw}, kBf16);
  const Tensor o =
      g->data(uid::O, "O", qDims, s.stridesOf(s.sq, s.oStride), kBf16);
  const Tensor dout =
      g->data(uid::Dout, "dO", qDims, s.stridesOf(s.sq, s.oStride), kBf16);
  const Tensor dq =
      g->data(uid::Dq, "dQ", qDims, s.stridesOf(s.sq, s.dqStride), kBf16);
  const Dims partDims = s.rowsOf(s.Hk, s.skv),
             partStrides = s.stridesOf(s.partRows, kvw);
  const Tensor dk = g->data(uid::DkPart, "dK", partDims, partStrides, kBf16);
  const Tensor dv = g->data(uid::DvPart, "dV", partDims, partStrides, kBf16);
  const Tensor delta =
      g->data(uid::Delta, "delta", rowDims, packedStrides(rowDims), kF32);
  const Tensor dqAccum = g->data(uid::DqAccum, "dQ accumulator", qDims,
                                 packedStrides(qDims), kF32);

  // delta = rowsum(dO * O), materialized (the pattern has it pass through a
  // multiplication by the dropout scale, 1 here, into memory).
  const Tensor dOO = g->virt("dO * O", qDims, kF32,
                             {s.H * s.sq * s.D, s.sq * s.D, s.H * s.D, 1});
  g->pointwise("dO * O", CUDNN_POINTWISE_MUL, kF32, dout, dOO, &o);
  const Tensor rowSum = g->virt("rowsum(dO * O)", rowDims, kF32);
  g->reduction("rowsum(dO * O)", CUDNN_REDUCE_TENSOR_ADD, dOO, rowSum);
  const Tensor one = g->scalar("one", 1.0f);
  g->pointwise("delta", CUDNN_POINTWISE_MUL, kF32, rowSum, delta, &one);

  // P = exp(S - lse)
  const Tensor scores = maskedScores(*g, s, in);
  const Tensor shifted =
      g->apply("S - lse", CUDNN_POINTWISE_SUB, scores, in.lse);
  const Tensor p = g->apply("P", CUDNN_POINTWISE_EXP, shifted);

  // dK or dV = X^T Y, per query head, summed over each kv head's group.
  const Dims tDims{s.B, s.H, s.skv, s.sq},
      tStrides{s.H * s.sq * s.skv, s.sq * s.skv, 1, s.skv};
  auto keyGrad = [&](const char *name, const Tensor &x, const Tensor &y,
                     const Tensor &out) {
    const Tensor xt = g->virt(name, tDims, kBf16, tStrides);
    g->reshape(name, x, xt);
    if (s.H == s.Hk) {
      g->matmul(name, xt, y, out);
      return;
    }
    const Tensor perHead = g->virt(name, s.rowsOf(s.H, s.skv), kBf16);
    g->matmul(name, xt, y, perHead);
    g->reduction(name, CUDNN_REDUCE_TENSOR_ADD, perHead, out);
  };
  keyGrad("dV = P^T dO", p, dout, dv);

  // dS = scale * P * (dO V^T - delta)
  const Tensor dp = g->virt("dO V^T", {s.B, s.H, s.sq, s.skv}, kF32);
  g->matmul("dO V^T", dout, vt, dp);
  const Tensor centered =
      g->apply("dP - delta", CUDNN_POINTWISE_SUB, dp, delta);
  const Tensor dsRaw =
      g->apply("P * (dP - delta)", CUDNN_POINTWISE_MUL, centered, p);
  const Tensor scale = g->scalar("scale", float(1.0 / std::sqrt(double(s.D))));
  const Tensor ds = g->apply("dS", CUDNN_POINTWISE_MUL, dsRaw, scale);
  keyGrad("dK = dS^T Q", ds, in.q, dk);

  // dQ = dS K, accumulated in fp32.
  const Tensor k =
      g->virt("K", s.rowsOf(s.Hk, s.skv), kBf16, {s.maxSeq * kvw, s.D, kvw, 1});
  g->reshape("K", in.kt, k);
  g->matmul("dQ = dS K", ds, k, dqAccum);
  g->pointwise("dQ", CUDNN_POINTWISE_IDENTITY, kF32, dqAccum, dq);
  return g;
}

//===----------------------------------------------------------------------===//
// Handles and the plan cache.
//===----------------------------------------------------------------------===//

/// One cuDNN handle per device and the plans built on it. Plans are built,
/// and run (the handle's stream is set per call), under one lock; a run
/// only enqueues work. Handles and plans live until the process ends.
struct Cache {
  std::mutex mu;
  std::map<int, cudnnHandle_t> handles;
  std::map<std::string, std::unique_ptr<Graph>> graphs;

  cudnnHandle_t handle(int device) {
    cudnnHandle_t &h = handles[device];
    if (!h)
      check(usableApi().create(&h), "cudnnCreate");
    return h;
  }
};

Cache &cache() {
  static Cache *c = new Cache; // never destroyed: no teardown after CUDA's
  return *c;
}

enum class Pass { Forward, Backward };

/// The plan of `pass` for this shape on the current device; the cache's
/// lock must be held.
const Graph &graphFor(Pass pass, const Shape &s, int device) {
  Cache &c = cache();
  const std::string key = std::to_string(device) +
                          (pass == Pass::Forward ? " fwd " : " bwd ") +
                          s.describe();
  std::unique_ptr<Graph> &g = c.graphs[key];
  if (!g) {
    cudnnHandle_t h = c.handle(device);
    try {
      g = pass == Pass::Forward ? forwardGraph(s) : backwardGraph(s);
      g->build(h);
    } catch (...) {
      c.graphs.erase(key);
      throw;
    }
  }
  return *g;
}

int currentDevice() {
  int device = 0;
  S1F_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

/// Runs the forward graph of shape `s` with K/V bound at cache row `kvRow`.
void runForward(const Shape &s, int64_t kvRow, const bf16 *q,
                const bf16 *kcache, const bf16 *vcache, bf16 *out, float *lse,
                cudaStream_t stream) {
  const int device = currentDevice();
  std::lock_guard<std::mutex> lock(cache().mu);
  const Graph &g = graphFor(Pass::Forward, s, device);
  void *ws = nullptr;
  if (g.workspaceBytes() > 0) // rare for a forward: stream-ordered, per call
    S1F_CUDA_CHECK(cudaMallocAsync(&ws, size_t(g.workspaceBytes()), stream));
  const int64_t at = kvRow * s.kvw();
  g.execute(cache().handle(device), stream,
            {{uid::Q, const_cast<bf16 *>(q)},
             {uid::K, const_cast<bf16 *>(kcache + at)},
             {uid::V, const_cast<bf16 *>(vcache + at)},
             {uid::O, out},
             {uid::Lse, lse}},
            ws);
  if (ws)
    S1F_CUDA_CHECK(cudaFreeAsync(ws, stream));
}

/// One backward graph run of a call: which keys, its shape and plan.
struct BwdRun {
  CudnnKeys keys;
  Shape shape;
  const Graph *graph;
};

/// The backward's graphs for this call: one (All), or Own then Prefix. The
/// cache's lock must be held.
std::vector<BwdRun> backwardRuns(const cpu::AttentionDims &d,
                                 const AttentionStrides &st, bool split,
                                 int device) {
  std::vector<CudnnKeys> keys{CudnnKeys::All};
  if (split && d.start > 0)
    keys = {CudnnKeys::Own, CudnnKeys::Prefix};
  std::vector<BwdRun> runs;
  for (CudnnKeys k : keys) {
    const Shape shape(d, st, k, true);
    runs.push_back({k, shape, &graphFor(Pass::Backward, shape, device)});
  }
  return runs;
}

int64_t cudnnWorkspaceBytes(const std::vector<BwdRun> &runs) {
  int64_t bytes = 0;
  for (const BwdRun &r : runs)
    bytes = std::max(bytes, r.graph->workspaceBytes());
  return bytes;
}

} // namespace

std::string cudnnUnavailableReason() { return api().error; }

std::string cudnnDeviceJson() {
  const Api &a = usableApi();
  const int device = currentDevice();
  std::lock_guard<std::mutex> lock(cache().mu);
  cudnnHandle_t h = cache().handle(device);
  Desc props(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, "device properties");
  props.set(CUDNN_ATTR_DEVICEPROP_HANDLE, CUDNN_TYPE_HANDLE, 1, &h).finalize();
  int64_t n = 0;
  check(a.getAttribute(props.get(), CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                       CUDNN_TYPE_CHAR, 0, &n, nullptr),
        "sizing the device's JSON");
  std::string json(size_t(n), '\0');
  check(a.getAttribute(props.get(), CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                       CUDNN_TYPE_CHAR, n, &n, json.data()),
        "reading the device's JSON");
  json.resize(std::min(json.size(), size_t(n)));
  while (!json.empty() && json.back() == '\0')
    json.pop_back();
  return json;
}

GraphTrace cudnnAttentionGraph(bool backward, const cpu::AttentionDims &d,
                               const AttentionStrides &s, CudnnKeys keys) {
  const Shape shape(d, s, keys, backward);
  return std::move(
      (backward ? backwardGraph(shape, false) : forwardGraph(shape, false))
          ->trace());
}

void cudnnCheckAttentionGraphs(const cpu::AttentionDims &d,
                               const AttentionStrides &s,
                               const std::string &deviceJson) {
  usableApi();
  std::vector<std::unique_ptr<Graph>> graphs;
  for (CudnnKeys keys : {CudnnKeys::All, CudnnKeys::Own, CudnnKeys::Prefix}) {
    if (keys != CudnnKeys::All && d.start == 0)
      continue; // cudnn-split runs the All graphs then
    graphs.push_back(forwardGraph(Shape(d, s, keys, false)));
    graphs.push_back(backwardGraph(Shape(d, s, keys, true)));
  }
  if (deviceJson.empty())
    return;
  Desc device(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, "device properties");
  device
      .set(CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION, CUDNN_TYPE_CHAR,
           int64_t(deviceJson.size()), deviceJson.data())
      .finalize();
  std::string errors;
  for (auto &g : graphs) {
    try {
      g->build(nullptr, &device);
    } catch (const std::runtime_error &e) {
      errors += std::string(errors.empty() ? "" : "\n") + e.what();
    }
  }
  if (!errors.empty())
    throw std::runtime_error(errors);
}

void cudnnAttentionFwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                       bf16 *out, float *lse, const cpu::AttentionDims &d,
                       const AttentionStrides &st, bool split,
                       cudaStream_t stream) {
  usableApi();
  if (!split || d.start == 0)
    return runForward(Shape(d, st), 0, q, kcache, vcache, out, lse, stream);
  // The chunk's own keys into out/lse, the prefix into temporaries, merged.
  const int64_t rows = d.batch * d.len, qw = d.heads * d.head_dim;
  const size_t outBytes = (size_t(rows * qw) * sizeof(bf16) + 255) / 256 * 256;
  char *tmp = nullptr;
  S1F_CUDA_CHECK(cudaMallocAsync(
      reinterpret_cast<void **>(&tmp),
      outBytes + size_t(rows * d.heads) * sizeof(float), stream));
  bf16 *outPrefix = reinterpret_cast<bf16 *>(tmp);
  float *lsePrefix = reinterpret_cast<float *>(tmp + outBytes);
  runForward(Shape(d, st, CudnnKeys::Own), d.start, q, kcache, vcache, out, lse,
             stream);
  runForward(Shape(d, st, CudnnKeys::Prefix), 0, q, kcache, vcache, outPrefix,
             lsePrefix, stream);
  mergeAttentionParts(out, lse, outPrefix, lsePrefix, d, st.out, stream);
  S1F_CUDA_CHECK(cudaFreeAsync(tmp, stream));
}

int64_t cudnnAttentionBwdWorkspace(const cpu::AttentionDims &d,
                                   const AttentionStrides &st, bool split) {
  usableApi();
  const int device = currentDevice();
  std::lock_guard<std::mutex> lock(cache().mu);
  return BwdLayout(d, split,
                   cudnnWorkspaceBytes(backwardRuns(d, st, split, device)))
      .total;
}

void cudnnAttentionBwd(const bf16 *q, const bf16 *kcache, const bf16 *vcache,
                       const bf16 *out, const bf16 *dout, const float *lse,
                       bf16 *dq, bf16 *dk, bf16 *dv, float *dkbuf, float *dvbuf,
                       float *workspace, const cpu::AttentionDims &d,
                       const AttentionStrides &st, bool split,
                       cudaStream_t stream) {
  usableApi();
  const int device = currentDevice();
  // The parts' offsets do not depend on cuDNN's workspace, which comes last.
  const BwdLayout at(d, split, 0);
  bf16 *dkPart = reinterpret_cast<bf16 *>(workspace + at.dkPart);
  bf16 *dvPart = reinterpret_cast<bf16 *>(workspace + at.dvPart);
  bf16 *dqPrefix = reinterpret_cast<bf16 *>(workspace + at.dqPrefix);
  {
    std::lock_guard<std::mutex> lock(cache().mu);
    for (const BwdRun &r : backwardRuns(d, st, split, device)) {
      const Shape &s = r.shape;
      const bool prefix = r.keys == CudnnKeys::Prefix;
      const int64_t kv = (r.keys == CudnnKeys::Own ? d.start : 0) * s.kvw();
      // Before 9.6 cuDNN expected the dQ accumulator zeroed by the caller;
      // zeroing it anyway costs a few hundredths of a millisecond.
      S1F_CUDA_CHECK(cudaMemsetAsync(
          workspace + at.dqAccum, 0,
          size_t(s.B * s.H * s.sq * s.D) * sizeof(float), stream));
      r.graph->execute(cache().handle(device), stream,
                       {{uid::Q, const_cast<bf16 *>(q)},
                        {uid::K, const_cast<bf16 *>(kcache + kv)},
                        {uid::V, const_cast<bf16 *>(vcache + kv)},
                        {uid::O, const_cast<bf16 *>(out)},
                        {uid::Dout, const_cast<bf16 *>(dout)},
                        {uid::Lse, const_cast<float *>(lse)},
                        {uid::Dq, prefix ? dqPrefix : dq},
                        {uid::DkPart, dkPart + kv},
                        {uid::DvPart, dvPart + kv},
                        {uid::Delta, workspace + at.delta},
                        {uid::DqAccum, workspace + at.dqAccum}},
                       workspace + at.cudnn);
    }
  }
  if (split && d.start > 0)
    addRows(dq, dqPrefix, d, st.dq, stream);
  mergeKvGrad(dkPart, dvPart, dkbuf, dvbuf, dk, dv, d, st.dkv, stream);
}

} // namespace s1f::rt::cuda::detail
