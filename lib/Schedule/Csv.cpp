//===- Csv.cpp - PyTorch-compatible schedule text format ------------------===//

#include "seq1f1b/Schedule/Csv.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace seq1f1b::schedule {

namespace {

constexpr ActionKind kAllKinds[] = {
    ActionKind::SendF,   ActionKind::RecvF,         ActionKind::SendB,
    ActionKind::RecvB,   ActionKind::Forward,       ActionKind::Backward,
    ActionKind::BackwardInput, ActionKind::BackwardWeight};

/// Reads a non-negative decimal at `pos`; nullopt if absent or too large.
std::optional<int> readInt(std::string_view s, size_t &pos) {
  size_t start = pos;
  long value = 0;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
    value = value * 10 + (s[pos] - '0');
    if (value > std::numeric_limits<int>::max())
      return std::nullopt;
    ++pos;
  }
  if (pos == start)
    return std::nullopt;
  return static_cast<int>(value);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

/// The rank on the other side of a comm action, from the stage placement.
int peerOf(const Action &a, const ScheduleConfig &c) {
  switch (a.kind) {
  case ActionKind::SendF:
  case ActionKind::RecvB:
    return c.rankOfStage(a.stage + 1);
  case ActionKind::RecvF:
  case ActionKind::SendB:
    return c.rankOfStage(a.stage - 1);
  default:
    return -1;
  }
}

} // namespace

std::string formatAction(const Action &a, bool chunked) {
  std::string text = std::to_string(a.stage);
  text += actionKindName(a.kind);
  text += std::to_string(a.microbatch);
  if (chunked)
    text += "." + std::to_string(a.chunk);
  return text;
}

Result<Action> parseAction(std::string_view token) {
  auto bad = [&](const std::string &why) {
    return Error{"bad action '" + std::string(token) + "': " + why +
                 " (expected <stage><F|B|I|W|SEND_F|RECV_F|SEND_B|RECV_B>"
                 "<microbatch>[.<chunk>], e.g. 0F1 or 2B0.3)"};
  };
  size_t pos = 0;
  std::optional<int> stage = readInt(token, pos);
  if (!stage)
    return bad("missing stage number");
  std::string_view rest = token.substr(pos);
  std::optional<ActionKind> kind;
  for (ActionKind k : kAllKinds) {
    std::string_view name = actionKindName(k);
    if (rest.substr(0, name.size()) == name) {
      kind = k;
      pos += name.size();
      break;
    }
  }
  if (!kind)
    return bad("unknown action type");
  std::optional<int> mb = readInt(token, pos);
  if (!mb)
    return bad("missing micro-batch number");
  int chunk = 0;
  if (pos < token.size() && token[pos] == '.') {
    ++pos;
    std::optional<int> c = readInt(token, pos);
    if (!c)
      return bad("missing chunk number after '.'");
    chunk = *c;
  }
  if (pos != token.size())
    return bad("unexpected trailing text");
  return Action{*kind, *stage, *mb, chunk};
}

std::string exportCsv(const Schedule &schedule) {
  const bool chunked = schedule.config.chunks > 1;
  std::string out;
  for (const std::vector<Action> &program : schedule.ranks) {
    for (size_t i = 0; i < program.size(); ++i) {
      if (i)
        out += ',';
      out += formatAction(program[i], chunked);
    }
    out += '\n';
  }
  return out;
}

Result<Schedule> importCsv(std::string_view text,
                           std::optional<ScheduleKind> kind) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos)
      end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  while (!lines.empty() && trim(lines.back()).empty())
    lines.pop_back();
  if (lines.empty())
    return Error{"schedule CSV has no rows"};

  Schedule schedule;
  int maxStage = 0, maxMb = 0, maxChunk = 0;
  for (size_t row = 0; row < lines.size(); ++row) {
    std::vector<Action> &program = schedule.ranks.emplace_back();
    std::string_view line = lines[row];
    for (size_t start = 0, col = 1; start <= line.size(); ++col) {
      size_t end = std::min(line.find(',', start), line.size());
      std::string_view cell = trim(line.substr(start, end - start));
      start = end + 1;
      if (cell.empty())
        continue;
      Result<Action> action = parseAction(cell);
      if (!action)
        return Error{"row " + std::to_string(row + 1) + ", column " +
                     std::to_string(col) + ": " + action.error};
      maxStage = std::max(maxStage, action->stage);
      maxMb = std::max(maxMb, action->microbatch);
      maxChunk = std::max(maxChunk, action->chunk);
      program.push_back(*action);
    }
  }

  ScheduleConfig &c = schedule.config;
  c.ranks = static_cast<int>(schedule.ranks.size());
  c.virtualStages = std::max(1, (maxStage + c.ranks) / c.ranks);
  c.microbatches = maxMb + 1;
  c.chunks = maxChunk + 1;
  c.kind = kind.value_or(ScheduleKind::Custom);
  if (Status s = validateConfig(c); !s)
    return Error{"imported schedule does not fit '" +
                 std::string(scheduleKindName(c.kind)) + "': " + s.error};
  for (std::vector<Action> &program : schedule.ranks)
    for (Action &a : program)
      a.peer = peerOf(a, c);
  return schedule;
}

} // namespace seq1f1b::schedule
