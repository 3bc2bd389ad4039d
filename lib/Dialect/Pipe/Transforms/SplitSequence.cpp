//===- SplitSequence.cpp - choose the sequence chunk bounds ---------------===//
#include "seq1f1b/Analysis/PipelineModel.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"
#include "seq1f1b/Schedule/Partition.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

namespace seq1f1b {
#define GEN_PASS_DEF_SPLITSEQUENCE
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;
namespace json = llvm::json;

/// Every op the chunks run through must say how it depends on the tokens.
static LogicalResult checkSequenceDependence(func::FuncOp model) {
  WalkResult walk = model.walk([&](Operation *op) {
    if (op == model || isa<llm::SequenceDependenceOpInterface,
                           llm::ParamRefOp, pipe::StageOp, pipe::YieldOp,
                           func::ReturnOp>(op))
      return WalkResult::advance();
    op->emitOpError() << "has no known dependence on the token axis, so the "
                         "sequence cannot be cut into chunks through it "
                         "(expected token-local, causal-prefix or "
                         "sum-reduction ops)";
    return WalkResult::interrupt();
  });
  return failure(walk.wasInterrupted());
}

/// Reads `{"samples": [{"length": s, "end": e, "seconds": t}, ...]}`.
static FailureOr<std::vector<schedule::ProfileSample>>
readProfile(StringRef path, Location loc) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return emitError(loc) << "cannot read profile '" << path
                          << "': " << buffer.getError().message();
  llvm::Expected<json::Value> parsed = json::parse((*buffer)->getBuffer());
  if (!parsed)
    return emitError(loc) << "profile '" << path << "' is not valid JSON: "
                          << llvm::toString(parsed.takeError());
  const json::Object *root = parsed->getAsObject();
  const json::Array *samples = root ? root->getArray("samples") : nullptr;
  if (!samples)
    return emitError(loc) << "profile '" << path
                          << "' needs a top-level \"samples\" array";
  std::vector<schedule::ProfileSample> result;
  for (auto [i, v] : llvm::enumerate(*samples)) {
    const json::Object *o = v.getAsObject();
    std::optional<double> length = o ? o->getNumber("length") : std::nullopt;
    std::optional<double> end = o ? o->getNumber("end") : std::nullopt;
    std::optional<double> seconds = o ? o->getNumber("seconds") : std::nullopt;
    if (!length || !end || !seconds)
      return emitError(loc) << "profile '" << path << "' sample " << i
                            << " needs numbers \"length\", \"end\" and "
                               "\"seconds\"";
    result.push_back({*length, *end, *seconds});
  }
  return result;
}

namespace {
struct SplitSequencePass
    : public seq1f1b::impl::SplitSequenceBase<SplitSequencePass> {
  using SplitSequenceBase::SplitSequenceBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<func::FuncOp> model = findModelFunction(module);
    if (failed(model) || failed(checkSequenceDependence(*model)))
      return signalPassFailure();
    int64_t seqLen = getModelShape(*model).seqLen;
    Location loc = model->getLoc();
    if (chunks < 1 || chunks > seqLen) {
      emitError(loc) << "chunks=" << chunks.getValue()
                     << " must be in [1, sequence length " << seqLen << "]";
      return signalPassFailure();
    }
    if (align < 1 || chunks * align > seqLen) {
      emitError(loc) << "align=" << align.getValue() << " must be >= 1 and "
                     << "leave every one of the " << chunks.getValue()
                     << " chunks at least one aligned block of the "
                     << seqLen << " tokens";
      return signalPassFailure();
    }

    std::optional<pipe::ChunkPolicy> kind = pipe::symbolizeChunkPolicy(policy);
    if (!kind) {
      emitError(loc) << "policy='" << policy
                     << "' is not one of even, flops, profile";
      return signalPassFailure();
    }
    schedule::RangeCost cost;
    if (*kind == pipe::ChunkPolicy::even) {
      cost = [](double begin, double end) { return end - begin; };
    } else if (*kind == pipe::ChunkPolicy::flops) {
      // Walk, not modelOps: the model may already be cut into pipe.stage ops.
      OpList ops;
      model->walk([&](llm::CostOpInterface op) { ops.push_back(op); });
      cost = trainingFlopsCost(ops, seqLen);
    } else {
      if (profile.empty()) {
        emitError(loc) << "policy=profile needs profile=FILE";
        return signalPassFailure();
      }
      FailureOr<std::vector<schedule::ProfileSample>> samples =
          readProfile(profile, loc);
      if (failed(samples))
        return signalPassFailure();
      schedule::Result<schedule::ChunkCostFit> fit =
          schedule::fitChunkCost(*samples);
      if (!fit) {
        emitError(loc) << "profile '" << profile << "': " << fit.error;
        return signalPassFailure();
      }
      schedule::ChunkCostFit f = *fit;
      // A chunk's time grows with its tokens and with the prefix it
      // attends to; a fit that says otherwise balances on noise.
      if (f.a < 0 || f.b < 0) {
        emitError(loc) << "profile '" << profile << "': the fitted time "
                       << f.a << " * (s*e - s^2/2) + " << f.b << " * s + "
                       << f.c
                       << " falls with the chunk's length or position: its "
                          "samples are too noisy or too alike to balance "
                          "on (measure more steps, or longer sequences)";
        return signalPassFailure();
      }
      cost = [f](double begin, double end) { return f.rangeCost(begin, end); };
    }
    schedule::Result<std::vector<int>> lengths =
        schedule::balanceChunks(seqLen, chunks, cost, align);
    if (!lengths) {
      emitError(loc) << lengths.error;
      return signalPassFailure();
    }
    SmallVector<int64_t> bounds = {0};
    for (int len : *lengths)
      bounds.push_back(bounds.back() + len);

    for (auto old : llvm::make_early_inc_range(module.getOps<pipe::ChunkPlanOp>()))
      old.erase();
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    builder.create<pipe::ChunkPlanOp>(loc, bounds, *kind);
  }
};
} // namespace
