//===- LLMOps.cpp - verifiers and costs of the llm ops -------------------===//
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace seq1f1b::llm;

#include "seq1f1b/Dialect/LLM/IR/LLMOpsEnums.cpp.inc"

//===----------------------------------------------------------------------===//
// Shape helpers shared by the verifiers
//===----------------------------------------------------------------------===//

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Checks that `v` is a static tensor of the given rank; `what` names it.
static LogicalResult verifyStaticRank(Operation *op, Value v, int64_t rank,
                                      StringRef what) {
  RankedTensorType type = tensorOf(v);
  if (type.getRank() != rank)
    return op->emitOpError() << "expects " << what << " of rank " << rank
                             << ", got " << type;
  if (!type.hasStaticShape())
    return op->emitOpError() << "expects " << what
                             << " to have a static shape, got " << type;
  return success();
}

/// Activations are [batch, sequence, features].
static LogicalResult verifyActivation(Operation *op, Value v, StringRef what) {
  return verifyStaticRank(op, v, 3, what);
}

static LogicalResult verifySameElementType(Operation *op, Value a, Value b,
                                           StringRef whatA, StringRef whatB) {
  if (tensorOf(a).getElementType() != tensorOf(b).getElementType())
    return op->emitOpError()
           << "expects " << whatA << " and " << whatB
           << " to have the same element type, got "
           << tensorOf(a).getElementType() << " and "
           << tensorOf(b).getElementType();
  return success();
}

/// A per-feature vector (norm weight, bias) of `features` elements.
static LogicalResult verifyFeatureVector(Operation *op, Value v, int64_t features,
                                         StringRef what,
                                         StringRef size = "the feature size") {
  if (failed(verifyStaticRank(op, v, 1, what)))
    return failure();
  if (tensorOf(v).getDimSize(0) != features)
    return op->emitOpError() << "expects " << what << " of size " << features
                             << " (" << size << "), got " << tensorOf(v);
  return success();
}

/// `value` > 0 (NaN is not), else an error naming `what` and the value.
static LogicalResult verifyPositive(Operation *op, StringRef what,
                                    double value) {
  if (value > 0)
    return success();
  return op->emitOpError() << "expects " << what << " > 0, got " << value;
}

//===----------------------------------------------------------------------===//
// Cost helpers
//===----------------------------------------------------------------------===//

static double elementBytes(Type type) {
  return std::max<unsigned>(1, type.getIntOrFloatBitWidth() / 8);
}

/// Bytes of `v` restricted to a chunk of `chunkLen` tokens (axis 1 is the
/// sequence of activations and token ids).
static double chunkBytes(Value v, int64_t chunkLen) {
  RankedTensorType type = tensorOf(v);
  double bytes = elementBytes(type.getElementType());
  for (int64_t i = 0; i < type.getRank(); ++i)
    bytes *= (i == 1) ? chunkLen : type.getDimSize(i);
  return bytes;
}

static double fullBytes(Value v) {
  RankedTensorType type = tensorOf(v);
  return elementBytes(type.getElementType()) * type.getNumElements();
}

/// Batch times chunk tokens: the rows of every token-local op.
static double chunkRows(Value activation, int64_t chunkLen) {
  return static_cast<double>(tensorOf(activation).getDimSize(0)) * chunkLen;
}

/// A memory-bound op: no FLOPs, its operands and results cross memory once.
static OpCost elementwiseCost(Operation *op, int64_t chunkLen) {
  OpCost cost;
  for (Value v : op->getOperands())
    cost.forwardBytes += chunkBytes(v, chunkLen);
  for (Value v : op->getResults())
    cost.forwardBytes += chunkBytes(v, chunkLen);
  return cost;
}

//===----------------------------------------------------------------------===//
// ParamOp / ParamRefOp
//===----------------------------------------------------------------------===//

int64_t ParamOp::getNumElements() {
  return cast<RankedTensorType>(getParamType()).getNumElements();
}

LogicalResult ParamOp::verify() {
  auto type = cast<RankedTensorType>(getParamType());
  if (!type.hasStaticShape())
    return emitOpError() << "expects a static shape, got " << type;
  if (type.getRank() < 1 || type.getRank() > 2)
    return emitOpError() << "expects a vector or a matrix, got " << type;
  if (llvm::any_of(type.getShape(), [](int64_t d) { return d <= 0; }))
    return emitOpError() << "expects every dimension to be positive, got "
                         << type;
  if (getInit() == ParamInit::normal) {
    if (!getStdAttr())
      return emitOpError() << "with init normal needs a std";
    if (!(getStdAttr().getValueAsDouble() > 0))
      return emitOpError() << "expects std > 0, got "
                           << getStdAttr().getValueAsDouble();
  } else if (getStdAttr()) {
    return emitOpError() << "std is only meaningful with init normal";
  }
  return success();
}

LogicalResult ParamRefOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto param = symbols.lookupNearestSymbolFrom<ParamOp>(*this, getParamAttr());
  if (!param)
    return emitOpError() << "refers to " << getParamAttr()
                         << ", which is not an llm.param";
  if (param.getParamType() != getType())
    return emitOpError() << "result type " << getType()
                         << " does not match the type of " << getParamAttr()
                         << ": " << param.getParamType();
  return success();
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  if (failed(verifyStaticRank(*this, getIds(), 2, "ids [batch, seq]")) ||
      failed(verifyStaticRank(*this, getTable(), 2, "table [vocab, hidden]")) ||
      failed(verifyActivation(*this, getResult(), "result")) ||
      failed(verifySameElementType(*this, getTable(), getResult(), "table",
                                   "result")))
    return failure();
  ArrayRef<int64_t> ids = tensorOf(getIds()).getShape();
  ArrayRef<int64_t> table = tensorOf(getTable()).getShape();
  ArrayRef<int64_t> out = tensorOf(getResult()).getShape();
  if (out[0] != ids[0] || out[1] != ids[1] || out[2] != table[1])
    return emitOpError() << "expects result shape [" << ids[0] << ", "
                         << ids[1] << ", " << table[1] << "], got "
                         << getResult().getType();
  return success();
}

OpCost EmbeddingOp::getChunkCost(int64_t chunkLen, int64_t) {
  OpCost cost;
  cost.forwardBytes = chunkBytes(getIds(), chunkLen) +
                      2 * chunkBytes(getResult(), chunkLen);
  cost.category = CostCategory::EmbeddingHead;
  return cost;
}

SmallVector<Value> EmbeddingOp::getSavedForBackward() { return {getIds()}; }

//===----------------------------------------------------------------------===//
// PositionEmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult PositionEmbeddingOp::verify() {
  if (failed(verifyStaticRank(*this, getTable(), 2,
                              "table [positions, hidden]")) ||
      failed(verifyActivation(*this, getResult(), "result")) ||
      failed(verifySameElementType(*this, getTable(), getResult(), "table",
                                   "result")))
    return failure();
  ArrayRef<int64_t> table = tensorOf(getTable()).getShape();
  ArrayRef<int64_t> out = tensorOf(getResult()).getShape();
  if (out[2] != table[1])
    return emitOpError() << "expects result hidden size " << table[1]
                         << " (the table's), got " << out[2];
  if (out[1] > table[0])
    return emitOpError() << "sequence length " << out[1]
                         << " exceeds the " << table[0]
                         << " positions of the table";
  return success();
}

OpCost PositionEmbeddingOp::getChunkCost(int64_t chunkLen, int64_t) {
  OpCost cost;
  cost.forwardBytes = 2 * chunkBytes(getResult(), chunkLen);
  cost.category = CostCategory::EmbeddingHead;
  return cost;
}

SmallVector<Value> PositionEmbeddingOp::getSavedForBackward() { return {}; }

//===----------------------------------------------------------------------===//
// LayerNormOp / RMSNormOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyNorm(Operation *op, Value input, Value weight,
                                double eps, int64_t heads = 1) {
  if (failed(verifyActivation(op, input, "input")))
    return failure();
  int64_t features = tensorOf(input).getDimSize(2);
  if (heads <= 0 || features % heads != 0)
    return op->emitOpError() << "expects heads that divide the " << features
                             << " features, got " << heads;
  features /= heads;
  StringRef size = heads > 1 ? "one head" : "the feature size";
  if (failed(verifyFeatureVector(op, weight, features, "weight", size)) ||
      failed(verifySameElementType(op, input, weight, "input", "weight")))
    return failure();
  return verifyPositive(op, "eps", eps);
}

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getInput(), getWeight(), getEps().convertToDouble());
}

OpCost LayerNormOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}

SmallVector<Value> LayerNormOp::getSavedForBackward() { return {getInput()}; }

LogicalResult RMSNormOp::verify() {
  return verifyNorm(*this, getInput(), getWeight(), getEps().convertToDouble(),
                    getNumHeads().value_or(1));
}

OpCost RMSNormOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}

SmallVector<Value> RMSNormOp::getSavedForBackward() { return {getInput()}; }

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  if (failed(verifyActivation(*this, getInput(), "input")) ||
      failed(verifyStaticRank(*this, getWeight(), 2, "weight [out, in]")) ||
      failed(verifyActivation(*this, getResult(), "result")) ||
      failed(verifySameElementType(*this, getInput(), getWeight(), "input",
                                   "weight")) ||
      failed(verifySameElementType(*this, getInput(), getResult(), "input",
                                   "result")))
    return failure();
  ArrayRef<int64_t> in = tensorOf(getInput()).getShape();
  ArrayRef<int64_t> w = tensorOf(getWeight()).getShape();
  ArrayRef<int64_t> out = tensorOf(getResult()).getShape();
  if (w[1] != in[2])
    return emitOpError() << "weight " << getWeight().getType()
                         << " expects " << w[1] << " input features, got "
                         << in[2];
  if (out[0] != in[0] || out[1] != in[1] || out[2] != w[0])
    return emitOpError() << "expects result shape [" << in[0] << ", " << in[1]
                         << ", " << w[0] << "], got " << getResult().getType();
  if (getBias()) {
    if (failed(verifyFeatureVector(*this, getBias(), w[0], "bias")) ||
        failed(verifySameElementType(*this, getInput(), getBias(), "input",
                                     "bias")))
      return failure();
  }
  return success();
}

OpCost LinearOp::getChunkCost(int64_t chunkLen, int64_t) {
  ArrayRef<int64_t> w = tensorOf(getWeight()).getShape();
  double gemm = 2.0 * chunkRows(getInput(), chunkLen) * w[0] * w[1];
  OpCost cost;
  cost.forwardFlops = gemm;
  cost.backwardInputFlops = gemm;  // dX = dY W
  cost.backwardWeightFlops = gemm; // dW = dY^T X
  cost.forwardBytes = chunkBytes(getInput(), chunkLen) + fullBytes(getWeight()) +
                      chunkBytes(getResult(), chunkLen) +
                      (getBias() ? fullBytes(getBias()) : 0.0);
  cost.category = CostCategory::Other;
  if (std::optional<LinearRole> role = getRole()) {
    switch (*role) {
    case LinearRole::attention:
      cost.category = CostCategory::Projection;
      break;
    case LinearRole::mlp:
      cost.category = CostCategory::MLP;
      break;
    case LinearRole::head:
      cost.category = CostCategory::EmbeddingHead;
      break;
    }
  }
  return cost;
}

SmallVector<Value> LinearOp::getSavedForBackward() { return {getInput()}; }

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  if (failed(verifyActivation(*this, getInput(), "input")))
    return failure();
  int64_t heads = getNumHeadsAttr().getInt();
  int64_t features = tensorOf(getInput()).getDimSize(2);
  if (heads <= 0)
    return emitOpError() << "expects heads > 0, got " << heads;
  if (features % heads != 0)
    return emitOpError() << heads << " heads do not divide the " << features
                         << " features";
  if ((features / heads) % 2 != 0)
    return emitOpError() << "expects an even head dimension, got "
                         << features / heads;
  if (failed(verifyPositive(*this, "theta", getTheta().convertToDouble())))
    return failure();
  if (std::optional<uint64_t> rotary = getRotaryDim();
      rotary &&
      (*rotary == 0 || *rotary % 2 != 0 || int64_t(*rotary) > features / heads))
    return emitOpError() << "expects an even rotary dimension count in [2, "
                         << features / heads << "], got " << int64_t(*rotary);
  std::optional<APFloat> factor = getScalingFactor();
  if (factor && failed(verifyPositive(*this, "a scaling factor",
                                      factor->convertToDouble())))
    return failure();
  const bool llama3 = bool(getLowFreqFactorAttr()),
             yarn = bool(getBetaFastAttr());
  if ((llama3 || yarn) && !factor)
    return emitOpError() << (llama3 ? "llama3" : "yarn")
                         << " scaling needs a scaling factor";
  if (llama3) {
    double low = getLowFreqFactorAttr().getValueAsDouble();
    double high = getHighFreqFactorAttr().getValueAsDouble();
    if (!(low > 0 && high > low))
      return emitOpError() << "expects 0 < low < high frequency factors, got "
                           << low << " and " << high;
  }
  if (yarn) {
    double fast = getBetaFastAttr().getValueAsDouble();
    double slow = getBetaSlowAttr().getValueAsDouble();
    if (!(slow > 0 && fast > slow))
      return emitOpError() << "expects 0 < beta_slow < beta_fast, got "
                           << "beta_fast " << fast << " and beta_slow "
                           << slow;
  }
  if (std::optional<ArrayRef<double>> factors = getFrequencyFactors()) {
    const int64_t turned = getRotaryDim() ? int64_t(*getRotaryDim())
                                          : features / heads;
    if (int64_t(factors->size()) != turned / 2)
      return emitOpError() << "expects one longrope factor per frequency ("
                           << turned / 2 << "), got " << factors->size();
    if (!llvm::all_of(*factors, [](double f) { return f > 0; }))
      return emitOpError() << "expects longrope factors > 0";
  }
  if ((llama3 || yarn) && getOriginalContextAttr().getInt() <= 0)
    return emitOpError() << "expects an original context > 0, got "
                         << getOriginalContextAttr().getInt();
  if (FloatAttr a = getAttentionFactorAttr())
    return verifyPositive(*this, "an attention factor", a.getValueAsDouble());
  return success();
}

OpCost RopeOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}

SmallVector<Value> RopeOp::getSavedForBackward() { return {}; }

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

int64_t AttentionOp::getHeadDim() {
  return tensorOf(getQuery()).getDimSize(2) / getNumHeadsAttr().getInt();
}

LogicalResult AttentionOp::verify() {
  if (failed(verifyActivation(*this, getQuery(), "query")) ||
      failed(verifyActivation(*this, getKey(), "key")) ||
      failed(verifySameElementType(*this, getQuery(), getKey(), "query",
                                   "key")))
    return failure();
  int64_t heads = getNumHeadsAttr().getInt();
  int64_t kvHeads = getNumKvHeadsAttr().getInt();
  ArrayRef<int64_t> q = tensorOf(getQuery()).getShape();
  ArrayRef<int64_t> k = tensorOf(getKey()).getShape();
  if (heads <= 0 || kvHeads <= 0)
    return emitOpError() << "expects heads > 0 and kv_heads > 0, got "
                         << heads << " and " << kvHeads;
  if (q[2] % heads != 0)
    return emitOpError() << heads << " heads do not divide the query's "
                         << q[2] << " features";
  if (heads % kvHeads != 0)
    return emitOpError() << kvHeads << " kv heads do not divide the " << heads
                         << " query heads";
  if (std::optional<uint64_t> window = getWindow();
      window && int64_t(*window) <= 0)
    return emitOpError() << "expects a window of at least one token, got "
                         << int64_t(*window);
  for (auto [name, value] : {std::pair{"scale", getScale()},
                             std::pair{"softcap", getSoftcap()}})
    if (value && failed(verifyPositive(*this, name, value->convertToDouble())))
      return failure();
  if (q[0] != k[0] || q[1] != k[1])
    return emitOpError() << "expects query and key with the same batch and "
                            "sequence sizes, got "
                         << getQuery().getType() << " and " << getKey().getType();
  int64_t headDim = q[2] / heads;
  if (k[2] != kvHeads * headDim)
    return emitOpError() << "expects key features " << kvHeads * headDim
                         << " (" << kvHeads << " kv heads x head dim "
                         << headDim << "), got " << k[2];
  return success();
}

SequenceDependence AttentionOp::getSequenceDependence() {
  return SequenceDependence::CausalPrefix;
}

OpCost AttentionOp::getChunkCost(int64_t chunkLen, int64_t chunkEnd) {
  // The Seq1F1B paper's count: per head and (query, key) pair, 2d for QK^T,
  // 2d for PV and 3 for the softmax; a chunk of s queries ending at e sees
  // s*e - s^2/2 pairs under the causal mask: the integral of x over the
  // query positions [e-s, e]. A window w caps each query's keys at w.
  double s = chunkLen, e = chunkEnd, b = e - s;
  double batch = tensorOf(getQuery()).getDimSize(0);
  double heads = getNumHeadsAttr().getInt();
  double pairs = s * e - s * s / 2;
  if (std::optional<uint64_t> window = getWindow()) {
    const double w = double(*window);
    if (w <= b)
      pairs = w * s;
    else if (w < e)
      pairs = (w * w - b * b) / 2 + w * (e - w);
  }
  OpCost cost;
  cost.forwardFlops = batch * heads * (4.0 * getHeadDim() + 3) * pairs;
  cost.backwardInputFlops = 2 * cost.forwardFlops;
  // Reads the chunk's queries and the K/V prefix it sees (with a window,
  // the last w keys before the chunk), writes the output.
  int64_t keys = chunkEnd;
  if (std::optional<uint64_t> window = getWindow())
    keys = std::min<int64_t>(chunkEnd, chunkLen + int64_t(*window));
  cost.forwardBytes =
      2 * chunkBytes(getQuery(), chunkLen) + 2 * chunkBytes(getKey(), keys);
  cost.category = CostCategory::Attention;
  return cost;
}

SmallVector<Value> AttentionOp::getSavedForBackward() {
  return {getQuery(), getKey(), getValue(), getResult()};
}

//===----------------------------------------------------------------------===//
// Element-wise ops
//===----------------------------------------------------------------------===//

LogicalResult GeluOp::verify() {
  return verifyActivation(*this, getInput(), "input");
}
OpCost GeluOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> GeluOp::getSavedForBackward() { return {getInput()}; }

LogicalResult SiluOp::verify() {
  return verifyActivation(*this, getInput(), "input");
}
OpCost SiluOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> SiluOp::getSavedForBackward() { return {getInput()}; }

LogicalResult SwigluOp::verify() {
  return verifyActivation(*this, getLhs(), "operands");
}
OpCost SwigluOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> SwigluOp::getSavedForBackward() {
  return {getLhs(), getRhs()};
}

LogicalResult GegluOp::verify() {
  return verifyActivation(*this, getLhs(), "operands");
}
OpCost GegluOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> GegluOp::getSavedForBackward() {
  return {getLhs(), getRhs()};
}

//===----------------------------------------------------------------------===//
// MoeOp
//===----------------------------------------------------------------------===//

int64_t MoeOp::getNumExperts() { return tensorOf(getRouter()).getDimSize(0); }

int64_t MoeOp::getExpertWidth() {
  return tensorOf(getGate()).getDimSize(0) / getNumExperts();
}

LogicalResult MoeOp::verify() {
  if (failed(verifyActivation(*this, getInput(), "input")) ||
      failed(verifyActivation(*this, getResult(), "result")) ||
      failed(verifyStaticRank(*this, getRouter(), 2, "router [E, D]")) ||
      failed(verifyStaticRank(*this, getGate(), 2, "gate [E*F, D]")) ||
      failed(verifyStaticRank(*this, getUp(), 2, "up [E*F, D]")) ||
      failed(verifyStaticRank(*this, getDown(), 2, "down [E*D, F]")))
    return failure();
  for (auto [v, what] :
       {std::pair{getRouter(), "router"}, {getGate(), "gate"}, {getUp(), "up"},
        {getDown(), "down"}, {getResult(), "result"}})
    if (failed(verifySameElementType(*this, getInput(), v, "input", what)))
      return failure();
  const int64_t d = tensorOf(getInput()).getDimSize(2);
  const int64_t e = getNumExperts();
  ArrayRef<int64_t> router = tensorOf(getRouter()).getShape();
  ArrayRef<int64_t> gate = tensorOf(getGate()).getShape();
  ArrayRef<int64_t> down = tensorOf(getDown()).getShape();
  if (router[1] != d)
    return emitOpError() << "expects router [E, " << d << "], got "
                         << getRouter().getType();
  if (gate[1] != d || gate[0] % e != 0)
    return emitOpError() << "expects gate [E*F, " << d << "] with E = " << e
                         << " (the router's rows), got " << getGate().getType();
  if (getUp().getType() != getGate().getType())
    return emitOpError() << "expects up of the gate's type "
                         << getGate().getType() << ", got "
                         << getUp().getType();
  const int64_t f = getExpertWidth();
  if (down[0] != e * d || down[1] != f)
    return emitOpError() << "expects down [" << e * d << ", " << f
                         << "] (E*D, F), got " << getDown().getType();
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "expects the result type " << getInput().getType()
                         << ", got " << getResult().getType();
  if (getTopK() < 1 || int64_t(getTopK()) > e)
    return emitOpError() << "expects top_k in [1, " << e << "] (experts), got "
                         << getTopK();
  return success();
}

double MoeOp::getExpertFlops(int64_t chunkLen) {
  return double(getTopK()) * chunkRows(getInput(), chunkLen) * 3 * 2 *
         tensorOf(getInput()).getDimSize(2) * getExpertWidth();
}

OpCost MoeOp::getChunkCost(int64_t chunkLen, int64_t) {
  const double rows = chunkRows(getInput(), chunkLen);
  const double d = tensorOf(getInput()).getDimSize(2);
  const double e = getNumExperts(), f = getExpertWidth(), k = getTopK();
  // The router, then each token's k experts: gate, up and down GEMMs.
  const double gemm = 2 * rows * d * e + getExpertFlops(chunkLen);
  OpCost cost;
  cost.forwardFlops = gemm;
  cost.backwardInputFlops = gemm;
  cost.backwardWeightFlops = gemm;
  const double act = elementBytes(tensorOf(getInput()).getElementType());
  cost.forwardBytes = chunkBytes(getInput(), chunkLen) * (1 + k) +
                      chunkBytes(getResult(), chunkLen) * (1 + k) +
                      rows * k * 3 * f * act + fullBytes(getRouter()) +
                      fullBytes(getGate()) + fullBytes(getUp()) +
                      fullBytes(getDown());
  cost.category = CostCategory::MLP;
  return cost;
}

SmallVector<Value> MoeOp::getSavedForBackward() { return {getInput()}; }

double MoeOp::getInternalSavedBytes(int64_t chunkLen) {
  // Each routed copy's gate and up activations, and the routing: the
  // router's fp32 probabilities, the chosen experts (i32) and their weights.
  const double rows = chunkRows(getInput(), chunkLen);
  const double act = elementBytes(tensorOf(getInput()).getElementType());
  const double e = getNumExperts(), k = getTopK();
  return rows * (2 * k * getExpertWidth() * act + 4 * (e + 2 * k));
}

//===----------------------------------------------------------------------===//
// SigmoidGateOp
//===----------------------------------------------------------------------===//

LogicalResult SigmoidGateOp::verify() {
  if (failed(verifyActivation(*this, getValue(), "value")) ||
      failed(verifyActivation(*this, getGate(), "gate")) ||
      failed(verifyStaticRank(*this, getWeight(), 2, "weight [1, H]")) ||
      failed(verifySameElementType(*this, getGate(), getWeight(), "gate",
                                   "weight")))
    return failure();
  ArrayRef<int64_t> value = tensorOf(getValue()).getShape();
  ArrayRef<int64_t> gate = tensorOf(getGate()).getShape();
  ArrayRef<int64_t> weight = tensorOf(getWeight()).getShape();
  if (gate[0] != value[0] || gate[1] != value[1])
    return emitOpError() << "expects the gate's batch and sequence to be the "
                            "value's, got "
                         << getGate().getType() << " and "
                         << getValue().getType();
  if (weight[0] != 1 || weight[1] != gate[2])
    return emitOpError() << "expects weight [1, " << gate[2] << "], got "
                         << getWeight().getType();
  return success();
}

OpCost SigmoidGateOp::getChunkCost(int64_t chunkLen, int64_t) {
  OpCost cost;
  cost.forwardBytes = chunkBytes(getValue(), chunkLen) +
                      chunkBytes(getGate(), chunkLen) + fullBytes(getWeight()) +
                      chunkBytes(getResult(), chunkLen);
  const double gemv = 2 * chunkRows(getGate(), chunkLen) *
                      tensorOf(getGate()).getDimSize(2);
  cost.forwardFlops = gemv;
  cost.backwardInputFlops = gemv;
  cost.backwardWeightFlops = gemv;
  cost.category = CostCategory::MLP;
  return cost;
}

SmallVector<Value> SigmoidGateOp::getSavedForBackward() {
  return {getValue(), getGate()};
}

LogicalResult SoftcapOp::verify() {
  if (failed(verifyActivation(*this, getInput(), "input")))
    return failure();
  return verifyPositive(*this, "cap", getCap().convertToDouble());
}
OpCost SoftcapOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> SoftcapOp::getSavedForBackward() { return {getInput()}; }

LogicalResult ScaleOp::verify() {
  if (failed(verifyActivation(*this, getInput(), "input")))
    return failure();
  const double factor = getFactor().convertToDouble();
  if (!std::isfinite(factor) || factor == 0)
    return emitOpError() << "expects a finite, nonzero factor, got " << factor;
  return success();
}
OpCost ScaleOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> ScaleOp::getSavedForBackward() { return {}; }

LogicalResult AddOp::verify() {
  return verifyActivation(*this, getLhs(), "operands");
}
OpCost AddOp::getChunkCost(int64_t chunkLen, int64_t) {
  return elementwiseCost(*this, chunkLen);
}
SmallVector<Value> AddOp::getSavedForBackward() { return {}; }

//===----------------------------------------------------------------------===//
// CrossEntropyOp
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyOp::verify() {
  if (failed(verifyActivation(*this, getLogits(), "logits [batch, seq, vocab]")) ||
      failed(verifyStaticRank(*this, getTargets(), 2, "targets [batch, seq]")))
    return failure();
  ArrayRef<int64_t> logits = tensorOf(getLogits()).getShape();
  ArrayRef<int64_t> targets = tensorOf(getTargets()).getShape();
  if (logits[0] != targets[0] || logits[1] != targets[1])
    return emitOpError() << "expects targets of shape [" << logits[0] << ", "
                         << logits[1] << "], got " << getTargets().getType();
  return success();
}

SequenceDependence CrossEntropyOp::getSequenceDependence() {
  return SequenceDependence::SumReduction;
}

OpCost CrossEntropyOp::getChunkCost(int64_t chunkLen, int64_t) {
  OpCost cost = elementwiseCost(*this, chunkLen);
  cost.category = CostCategory::EmbeddingHead;
  return cost;
}

SmallVector<Value> CrossEntropyOp::getSavedForBackward() {
  return {getLogits(), getTargets()};
}

//===----------------------------------------------------------------------===//
// RoPE scaling rules: `llama3(low, high, context)` or `yarn(beta_fast,
// beta_slow, context)`, sharing the original context attribute, or
// `longrope([f0, f1, ...])`. Optional: absent when no keyword is there.
//===----------------------------------------------------------------------===//

static OptionalParseResult
parseRopeBands(OpAsmParser &parser, FloatAttr &low, FloatAttr &high,
               FloatAttr &betaFast, FloatAttr &betaSlow, IntegerAttr &context,
               DenseF64ArrayAttr &factors) {
  Builder &b = parser.getBuilder();
  if (succeeded(parser.parseOptionalKeyword("longrope"))) {
    SmallVector<double> values;
    auto one = [&]() { return parser.parseFloat(values.emplace_back()); };
    if (parser.parseLParen() ||
        parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Square, one) ||
        parser.parseRParen())
      return failure();
    factors = b.getDenseF64ArrayAttr(values);
    return success();
  }
  FloatAttr *first = nullptr, *second = nullptr;
  if (succeeded(parser.parseOptionalKeyword("llama3"))) {
    first = &low;
    second = &high;
  } else if (succeeded(parser.parseOptionalKeyword("yarn"))) {
    first = &betaFast;
    second = &betaSlow;
  } else {
    return std::nullopt;
  }
  if (parser.parseLParen() || parser.parseAttribute(*first, b.getF64Type()) ||
      parser.parseComma() ||
      parser.parseAttribute(*second, b.getF64Type()) || parser.parseComma() ||
      parser.parseAttribute(context, b.getI64Type()) || parser.parseRParen())
    return failure();
  return success();
}

static void printRopeBands(OpAsmPrinter &printer, Operation *op, FloatAttr low,
                           FloatAttr high, FloatAttr betaFast,
                           FloatAttr betaSlow, IntegerAttr context,
                           DenseF64ArrayAttr factors) {
  auto bands = [&](StringRef kind, FloatAttr first, FloatAttr second) {
    printer << kind << "(";
    printer.printAttributeWithoutType(first);
    printer << ", ";
    printer.printAttributeWithoutType(second);
    printer << ", ";
    printer.printAttributeWithoutType(context);
    printer << ")";
  };
  if (low) {
    bands("llama3", low, high);
  } else if (betaFast) {
    bands("yarn", betaFast, betaSlow);
  } else if (factors) {
    printer << "longrope([";
    llvm::interleaveComma(factors.asArrayRef(), printer, [&](double f) {
      printer.printAttributeWithoutType(
          FloatAttr::get(Float64Type::get(op->getContext()), f));
    });
    printer << "])";
  }
}

#define GET_OP_CLASSES
#include "seq1f1b/Dialect/LLM/IR/LLMOps.cpp.inc"
