//===- PrintCost.cpp - report parameters and FLOPs of a model -------------===//
#include "seq1f1b/Analysis/ModelCost.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace seq1f1b {
#define GEN_PASS_DEF_PRINTCOST
#include "seq1f1b/Dialect/Pipe/Transforms/Passes.h.inc"
} // namespace seq1f1b

using namespace mlir;
using namespace seq1f1b;

/// 124439808 -> "124,439,808": parameter counts are read by people.
static std::string withThousands(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

static constexpr llm::CostCategory kCategories[] = {
    llm::CostCategory::Attention, llm::CostCategory::Projection,
    llm::CostCategory::MLP, llm::CostCategory::EmbeddingHead,
    llm::CostCategory::Other};

namespace {
struct PrintCostPass : public seq1f1b::impl::PrintCostBase<PrintCostPass> {
  using PrintCostBase::PrintCostBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<func::FuncOp> model = findModelFunction(module);
    if (failed(model))
      return signalPassFailure();
    ModelShape shape = getModelShape(*model);
    if (chunks < 0 || chunks > shape.seqLen) {
      model->emitError() << "chunks=" << chunks.getValue()
                         << " must be in [0, sequence length " << shape.seqLen
                         << "]";
      return signalPassFailure();
    }
    int64_t layers = 0;
    if (auto config = module->getAttrOfType<DictionaryAttr>("llm.config"))
      if (auto attr = config.getAs<IntegerAttr>("layers"))
        layers = attr.getInt();

    llvm::raw_ostream &os = llvm::outs();
    os << "model @" << model->getSymName() << ": micro-batch " << shape.batch
       << ", sequence " << shape.seqLen << " tokens";
    if (layers)
      os << ", " << layers << " layers";
    os << "\n";
    os << "parameters: " << withThousands(countParameters(module));
    // A mixture of experts uses top_k of its E experts per token.
    int64_t idle = 0;
    model->walk([&](llm::MoeOp moe) {
      const int64_t d = cast<RankedTensorType>(moe.getInput().getType())
                            .getDimSize(2);
      idle += (moe.getNumExperts() - int64_t(moe.getTopK())) * 3 * d *
              moe.getExpertWidth();
    });
    if (idle)
      os << " (" << withThousands(countParameters(module) - idle)
         << " active per token)";
    os << "\n";

    CategoryCosts full = chunkCost(model->getBody(), shape.seqLen, shape.seqLen);
    double tokens = static_cast<double>(shape.batch) * shape.seqLen;
    llm::OpCost total = full.total();
    os << llvm::format("forward FLOPs per token: %.4e\n",
                       total.forwardFlops / tokens);
    os << llvm::format("training FLOPs per token (forward + backward): %.4e\n",
                       (total.forwardFlops + total.backwardFlops()) / tokens);
    os << "category          forward FLOPs      per layer    bytes moved"
          "   share\n";
    for (llm::CostCategory c : kCategories) {
      const llm::OpCost &cost = full[c];
      double perLayer = layers ? cost.forwardFlops / layers : 0.0;
      os << llvm::format("%-16s %14.4e %14.4e %14.4e %6.2f%%\n",
                         llm::stringifyCostCategory(c).str().c_str(),
                         cost.forwardFlops, perLayer, cost.forwardBytes,
                         100.0 * cost.forwardFlops / total.forwardFlops);
    }
    if (chunks > 0) {
      SmallVector<int64_t> bounds;
      for (int64_t i = 0; i <= chunks; ++i)
        bounds.push_back(shape.seqLen * i / chunks);
      printChunks(*model, bounds, "even chunks (" + std::to_string(chunks) + ")");
    }
    for (auto plan : module.getOps<pipe::ChunkPlanOp>())
      printChunks(*model, plan.getBounds(),
                  "chunk plan (" + pipe::stringifyChunkPolicy(plan.getPolicy()).str() +
                      ")");
  }

  /// The cost of each chunk: later chunks attend to longer prefixes, so equal
  /// lengths do not mean equal cost.
  void printChunks(func::FuncOp model, ArrayRef<int64_t> bounds,
                   const std::string &title) {
    llvm::raw_ostream &os = llvm::outs();
    os << title << ":\n";
    os << "chunk  tokens                 attention    projections"
          "            mlp      total fwd   training\n";
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      int64_t begin = bounds[i], end = bounds[i + 1];
      CategoryCosts c = chunkCost(model.getBody(), end - begin, end);
      std::string range =
          "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
      llm::OpCost total = c.total();
      os << llvm::format("%-6lld %-17s %14.6e %14.6e %14.6e %14.6e %10.4e\n",
                         static_cast<long long>(i), range.c_str(),
                         c[llm::CostCategory::Attention].forwardFlops,
                         c[llm::CostCategory::Projection].forwardFlops,
                         c[llm::CostCategory::MLP].forwardFlops,
                         total.forwardFlops,
                         total.forwardFlops + total.backwardFlops());
    }
  }
};
} // namespace
