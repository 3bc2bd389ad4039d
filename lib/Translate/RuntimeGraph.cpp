//===- RuntimeGraph.cpp - the model graph in the runtime's JSON form ------===//
//
// The runtime interprets the model as an ordered op list over activation
// ids; this writes that list from the llm dialect, one entry per llm op, so
// the runtime and the compiler always run the same graph.
//
//===----------------------------------------------------------------------===//
#include "seq1f1b/Translate/RuntimeGraph.h"

#include "seq1f1b/Analysis/ModelCost.h"
#include "seq1f1b/Dialect/LLM/IR/LLMOps.h"
#include "seq1f1b/Dialect/Pipe/IR/PipeOps.h"

#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace seq1f1b;
namespace json = llvm::json;

namespace {
class GraphWriter {
public:
  LogicalResult write(ModuleOp module, llvm::raw_ostream &os) {
    FailureOr<func::FuncOp> model = findModelFunction(module);
    if (failed(model))
      return failure();
    for (auto param : module.getOps<llm::ParamOp>()) {
      auto type = cast<RankedTensorType>(param.getParamType());
      json::Object p{{"name", param.getSymName()},
                     {"shape", json::Array(type.getShape())},
                     {"init", llm::stringifyParamInit(param.getInit())}};
      if (param.getStdAttr())
        p["std"] = param.getStdAttr().getValueAsDouble();
      params.push_back(std::move(p));
    }
    tokens = model->getArgument(0);
    targets = model->getNumArguments() > 1 ? model->getArgument(1) : Value();
    json::Array stageStarts;
    for (Operation &op : model->getBody().front().without_terminator()) {
      auto stage = dyn_cast<pipe::StageOp>(op);
      if (!stage) {
        if (failed(emit(&op)))
          return failure();
        continue;
      }
      // A stage's block arguments are its operands, its results what it
      // yields: the runtime sees one flat op list plus where stages start.
      stageStarts.push_back(static_cast<int64_t>(ops.size()));
      Block &body = stage.getBody().front();
      for (auto [arg, input] : llvm::zip(body.getArguments(), stage.getInputs()))
        aliases[arg] = input;
      for (Operation &inner : body.without_terminator())
        if (failed(emit(&inner)))
          return failure();
      for (auto [result, yielded] :
           llvm::zip(stage.getResults(), body.getTerminator()->getOperands()))
        aliases[result] = yielded;
    }
    json::Object root{{"format", "seq1f1b-graph"},
                      {"version", 1},
                      {"params", std::move(params)},
                      {"values", std::move(values)}};
    if (!stageStarts.empty()) {
      stageStarts.push_back(static_cast<int64_t>(ops.size()));
      root["stages"] = std::move(stageStarts);
    }
    // The config's family, for the names its checkpoints use.
    if (auto config = module->getAttrOfType<DictionaryAttr>("llm.config")) {
      if (auto type = config.getAs<StringAttr>("model_type"))
        root["model_type"] = type.getValue();
      if (auto length = config.getAs<IntegerAttr>("resolved_for_seq_len"))
        root["resolved_for_seq_len"] = length.getInt();
    }
    root["ops"] = std::move(ops);
    os << llvm::formatv("{0:2}", json::Value(std::move(root))) << "\n";
    return success();
  }

private:
  LogicalResult emit(Operation *op) {
    if (isa<llm::ParamRefOp>(op))
      return success();
    std::optional<json::Object> entry = convert(op);
    if (!entry)
      return failure();
    ops.push_back(std::move(*entry));
    return success();
  }

  /// The value a stage argument or result stands for.
  Value resolve(Value v) {
    for (auto it = aliases.find(v); it != aliases.end(); it = aliases.find(v))
      v = it->second;
    return v;
  }

  /// Id of an activation, or an error when it is not one.
  std::optional<int64_t> valueId(Operation *user, Value v) {
    auto it = ids.find(resolve(v));
    if (it != ids.end())
      return it->second;
    user->emitOpError() << "reads a value the runtime graph cannot name "
                           "(only earlier llm results are activations)";
    return std::nullopt;
  }

  std::optional<StringRef> paramName(Operation *user, Value v) {
    if (auto ref = v.getDefiningOp<llm::ParamRefOp>())
      return ref.getParam();
    user->emitOpError() << "expects its weights to come from llm.param_ref";
    return std::nullopt;
  }

  int64_t define(Value v) {
    int64_t id = values.size();
    values.push_back(cast<RankedTensorType>(v.getType()).getDimSize(2));
    ids[v] = id;
    return id;
  }

  std::optional<json::Object> convert(Operation *op) {
    json::Object entry{{"op", op->getName().stripDialect()}};
    json::Array in, weights;
    bool ok = true;
    auto input = [&](Value v) {
      if (std::optional<int64_t> id = valueId(op, v))
        in.push_back(*id);
      else
        ok = false;
    };
    auto weight = [&](Value v) {
      if (std::optional<StringRef> name = paramName(op, v))
        weights.push_back(*name);
      else
        ok = false;
    };
    llvm::TypeSwitch<Operation *>(op)
        .Case([&](llm::EmbeddingOp e) {
          if (resolve(e.getIds()) != tokens) {
            e.emitOpError() << "must read the model's token ids";
            ok = false;
          }
          if (std::optional<APFloat> scale = e.getScale())
            entry["scale"] = scale->convertToDouble();
          weight(e.getTable());
        })
        .Case([&](llm::PositionEmbeddingOp e) { weight(e.getTable()); })
        .Case([&](llm::LayerNormOp e) {
          input(e.getInput());
          weight(e.getWeight());
          weight(e.getBias());
          entry["eps"] = e.getEps().convertToDouble();
        })
        .Case([&](llm::RMSNormOp e) {
          input(e.getInput());
          weight(e.getWeight());
          entry["eps"] = e.getEps().convertToDouble();
          if (std::optional<uint64_t> heads = e.getNumHeads())
            entry["heads"] = int64_t(*heads);
        })
        .Case([&](llm::LinearOp e) {
          input(e.getInput());
          weight(e.getWeight());
          if (e.getBias())
            weight(e.getBias());
        })
        .Case([&](llm::RopeOp e) {
          input(e.getInput());
          entry["heads"] = e.getNumHeadsAttr().getInt();
          entry["theta"] = e.getTheta().convertToDouble();
          if (std::optional<uint64_t> rotary = e.getRotaryDim())
            entry["rotary_dim"] = int64_t(*rotary);
          if (e.getInterleaved())
            entry["interleaved"] = true;
          FloatAttr factor = e.getScalingFactorAttr();
          FloatAttr attention = e.getAttentionFactorAttr();
          std::optional<ArrayRef<double>> factors = e.getFrequencyFactors();
          if (factor || attention || factors) {
            json::Object scaling{
                {"factor", factor ? factor.getValueAsDouble() : 1.0}};
            auto number = [&](StringRef key, FloatAttr a) {
              if (a)
                scaling[key] = a.getValueAsDouble();
            };
            number("low_freq_factor", e.getLowFreqFactorAttr());
            number("high_freq_factor", e.getHighFreqFactorAttr());
            number("beta_fast", e.getBetaFastAttr());
            number("beta_slow", e.getBetaSlowAttr());
            number("attention_factor", attention);
            if (IntegerAttr context = e.getOriginalContextAttr())
              scaling["original_context"] = context.getInt();
            if (factors)
              scaling["frequency_factors"] =
                  json::Array(std::vector<json::Value>(factors->begin(),
                                                       factors->end()));
            entry["rope_scaling"] = std::move(scaling);
          }
        })
        .Case([&](llm::AttentionOp e) {
          input(e.getQuery());
          input(e.getKey());
          input(e.getValue());
          entry["heads"] = e.getNumHeadsAttr().getInt();
          entry["kv_heads"] = e.getNumKvHeadsAttr().getInt();
          if (std::optional<uint64_t> window = e.getWindow())
            entry["window"] = int64_t(*window);
          if (std::optional<APFloat> scale = e.getScale())
            entry["score_scale"] = scale->convertToDouble();
          if (std::optional<APFloat> cap = e.getSoftcap())
            entry["softcap"] = cap->convertToDouble();
        })
        .Case([&](llm::GeluOp e) {
          input(e.getInput());
          if (e.getExact())
            entry["exact"] = true;
        })
        .Case([&](llm::SiluOp e) { input(e.getInput()); })
        .Case([&](llm::SoftcapOp e) {
          input(e.getInput());
          entry["softcap"] = e.getCap().convertToDouble();
        })
        .Case([&](llm::ScaleOp e) {
          input(e.getInput());
          entry["scale"] = e.getFactor().convertToDouble();
        })
        .Case<llm::SwigluOp, llm::GegluOp, llm::AddOp>([&](Operation *b) {
          input(b->getOperand(0));
          input(b->getOperand(1));
        })
        .Case([&](llm::SigmoidGateOp e) {
          input(e.getValue());
          input(e.getGate());
          weight(e.getWeight());
        })
        .Case([&](llm::MoeOp e) {
          input(e.getInput());
          for (Value w : {e.getRouter(), e.getGate(), e.getUp(), e.getDown()})
            weight(w);
          entry["top_k"] = int64_t(e.getTopK());
          if (e.getNormalized())
            entry["normalized"] = true;
        })
        .Case([&](llm::CrossEntropyOp e) {
          input(e.getLogits());
          if (resolve(e.getTargets()) != targets) {
            e.emitOpError() << "must read the model's targets";
            ok = false;
          }
        })
        .Default([&](Operation *other) {
          other->emitOpError() << "has no runtime kernel";
          ok = false;
        });
    if (!ok)
      return std::nullopt;
    if (!in.empty())
      entry["in"] = std::move(in);
    if (!weights.empty())
      entry["params"] = std::move(weights);
    if (!isa<llm::CrossEntropyOp>(op))
      entry["out"] = define(op->getResult(0));
    return entry;
  }

  json::Array params, values, ops;
  llvm::DenseMap<Value, int64_t> ids;
  llvm::DenseMap<Value, Value> aliases;
  Value tokens, targets;
};
} // namespace

LogicalResult seq1f1b::writeRuntimeGraph(ModuleOp module,
                                         llvm::raw_ostream &os) {
  return GraphWriter().write(module, os);
}

void seq1f1b::registerRuntimeGraphExport() {
  static TranslateFromMLIRRegistration registration(
      "export-runtime-graph", "llm model graph to the runtime's graph JSON",
      [](Operation *op, llvm::raw_ostream &os) -> LogicalResult {
        auto module = dyn_cast<ModuleOp>(op);
        if (!module)
          return op->emitError() << "expects a module";
        return writeRuntimeGraph(module, os);
      },
      [](DialectRegistry &registry) {
        registry.insert<llm::LLMDialect, pipe::PipeDialect, func::FuncDialect>();
      });
}
