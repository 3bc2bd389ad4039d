//===- Partition.cpp - Stage partition and sequence chunk split -----------===//

#include "seq1f1b/Schedule/Partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace seq1f1b::schedule {

Result<StagePartition> partitionStages(const std::vector<double> &costs,
                                       int stages) {
  const int n = static_cast<int>(costs.size());
  if (stages < 1)
    return Error{"number of stages must be >= 1, got " +
                 std::to_string(stages)};
  if (stages > n)
    return Error{"cannot split " + std::to_string(n) + " segments into " +
                 std::to_string(stages) + " non-empty stages"};
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(costs[i]) || costs[i] < 0)
      return Error{"segment " + std::to_string(i) +
                   " has a negative or non-finite cost"};

  std::vector<double> prefix(n + 1, 0);
  for (int i = 0; i < n; ++i)
    prefix[i + 1] = prefix[i] + costs[i];
  const double inf = std::numeric_limits<double>::infinity();
  // best[k][i]: smallest max-group cost of the first i segments in k groups;
  // cut[k][i]: where the last of those groups starts.
  std::vector<std::vector<double>> best(stages + 1,
                                        std::vector<double>(n + 1, inf));
  std::vector<std::vector<int>> cut(stages + 1, std::vector<int>(n + 1, 0));
  best[0][0] = 0;
  for (int k = 1; k <= stages; ++k)
    for (int i = k; i <= n; ++i)
      for (int j = k - 1; j < i; ++j) {
        double v = std::max(best[k - 1][j], prefix[i] - prefix[j]);
        if (v < best[k][i]) {
          best[k][i] = v;
          cut[k][i] = j;
        }
      }

  StagePartition result;
  result.maxCost = best[stages][n];
  result.boundaries.assign(stages + 1, 0);
  result.boundaries[stages] = n;
  for (int k = stages, i = n; k > 0; --k)
    i = result.boundaries[k - 1] = cut[k][i];
  return result;
}

std::vector<std::pair<int, int>>
groupLayers(const std::vector<int> &bounds,
            const std::vector<LayerOpRole> &roles, int attentionsBefore,
            bool firstStage, bool lastStage) {
  // The last stage's head starts after the piece with its last add.
  size_t headPiece = bounds.size();
  if (lastStage) {
    headPiece = 0;
    for (size_t i = 0; i + 1 < bounds.size(); ++i)
      for (int k = bounds[i]; k < bounds[i + 1]; ++k)
        if (roles[k] == LayerOpRole::Add)
          headPiece = i + 1;
  }
  std::vector<std::pair<int, int>> layers;
  int attentions = attentionsBefore, lastLayer = -1; // up to the piece's end
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    const int first = bounds[i], last = bounds[i + 1];
    for (int k = first; k < last; ++k)
      attentions += roles[k] == LayerOpRole::Attention;
    const bool embedding = firstStage && i == 0;
    if (embedding || i >= headPiece || attentions == 0)
      continue;
    const int layer = attentions - 1;
    if (layer == lastLayer && layers.back().second == first)
      layers.back().second = last;
    else
      layers.push_back({first, last});
    lastLayer = layer;
  }
  return layers;
}

namespace {

Status checkChunkArgs(int length, int chunks, int align) {
  if (chunks < 1)
    return Error{"number of chunks must be >= 1, got " +
                 std::to_string(chunks)};
  if (align < 1)
    return Error{"chunk alignment must be >= 1, got " + std::to_string(align)};
  if (chunks > length)
    return Error{"cannot split " + std::to_string(length) + " tokens into " +
                 std::to_string(chunks) + " chunks"};
  if (static_cast<long>(chunks) * align > length)
    return Error{"cannot split " + std::to_string(length) + " tokens into " +
                 std::to_string(chunks) + " chunks aligned to " +
                 std::to_string(align)};
  return {};
}

/// Chunk lengths from real-valued chunk ends (ends[N-1] == length), each end
/// rounded to a multiple of `align` and kept at least `align` apart.
std::vector<int> roundToLengths(const std::vector<double> &ends, int length,
                                int align) {
  const int n = static_cast<int>(ends.size());
  std::vector<int> lengths;
  long prev = 0;
  for (int k = 0; k + 1 < n; ++k) {
    long end = std::lround(ends[k] / align) * align;
    end = std::max(end, prev + align);
    end = std::min(end, static_cast<long>(length) - (n - 1 - k) * align);
    lengths.push_back(static_cast<int>(end - prev));
    prev = end;
  }
  lengths.push_back(static_cast<int>(length - prev));
  return lengths;
}

/// Start b in [0, end] with cost(b, end) == target (cost falls as b grows).
double solveStart(const RangeCost &cost, double end, double target) {
  if (cost(0, end) <= target)
    return 0;
  double lo = 0, hi = end;
  for (int it = 0; it < 100; ++it) {
    double mid = (lo + hi) / 2;
    (cost(mid, end) > target ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

} // namespace

Result<std::vector<int>> balanceChunks(int length, int chunks,
                                       const RangeCost &cost, int align) {
  if (Status s = checkChunkArgs(length, chunks, align); !s)
    return Error{s.error};
  if (!cost)
    return Error{"no chunk cost function"};
  const double total = cost(0, length);
  if (!std::isfinite(total) || total < 0)
    return Error{"chunk cost of the whole sequence is negative or not finite"};

  // Chunk ends for a common chunk cost `target`; `first` is what is left for
  // chunk 0. A larger target leaves less, so bisect until `first` == target.
  std::vector<double> ends(chunks);
  auto layOut = [&](double target) {
    double end = length;
    for (int k = chunks - 1; k > 0; --k) {
      ends[k] = end;
      end = solveStart(cost, end, target);
    }
    ends[0] = end;
    return cost(0, end);
  };
  double lo = 0, hi = total;
  for (int it = 0; it < 200 && hi - lo > 1e-12 * total; ++it) {
    double mid = (lo + hi) / 2;
    (layOut(mid) > mid ? lo : hi) = mid;
  }
  layOut(hi);
  return roundToLengths(ends, length, align);
}

double paperChunkFlops(const TransformerShape &m, double begin, double end) {
  const double s = end - begin, e = end;
  const double h = m.heads, d = m.headDim, hidden = m.hidden, ffn = m.ffn;
  const double perLayer = h * (4 * d + 3) * (s * e - s * s / 2) +
                          8 * hidden * (h * d) * s + 4 * hidden * ffn * s;
  return m.layers * perLayer;
}

Result<std::vector<int>> paperChunkSplit(int length, int chunks,
                                         const TransformerShape &m,
                                         int align) {
  if (Status s = checkChunkArgs(length, chunks, align); !s)
    return Error{s.error};
  if (m.hidden < 1 || m.heads < 1 || m.headDim < 1 || m.ffn < 0 ||
      m.layers < 1)
    return Error{"transformer shape needs hidden, heads, headDim, layers >= 1 "
                 "and ffn >= 0"};
  // Per layer, tokens [b, e) cost A*(e^2 - b^2)/2 + B*(e - b).
  const double a = static_cast<double>(m.heads) * (4.0 * m.headDim + 3);
  const double b = 8.0 * m.hidden * m.heads * m.headDim + 4.0 * m.hidden * m.ffn;
  auto prefixCost = [&](double e) { return a * e * e / 2 + b * e; };
  const double target = prefixCost(length) / chunks;

  std::vector<double> ends(chunks);
  double end = length;
  for (int k = chunks - 1; k >= 0; --k) {
    ends[k] = end;
    // Solve a/2 x^2 + b x = prefixCost(end) - target for the chunk start x.
    double rhs = std::max(prefixCost(end) - target, 0.0);
    end = (-b + std::sqrt(b * b + 2 * a * rhs)) / a;
  }
  return roundToLengths(ends, length, align);
}

Result<ChunkCostFit> fitChunkCost(const std::vector<ProfileSample> &samples) {
  const size_t n = samples.size();
  if (n < 3)
    return Error{"need at least 3 profile samples to fit a, b, c, got " +
                 std::to_string(n)};
  for (size_t i = 0; i < n; ++i) {
    const ProfileSample &p = samples[i];
    if (!std::isfinite(p.seconds) || p.seconds < 0)
      return Error{"profile sample " + std::to_string(i) +
                   " has a negative or non-finite time"};
    if (!std::isfinite(p.length) || !std::isfinite(p.end) || p.length <= 0 ||
        p.end < p.length)
      return Error{"profile sample " + std::to_string(i) +
                   " needs 0 < length <= end"};
  }

  // Least squares by modified Gram-Schmidt (QR) on the three feature columns;
  // columns are scaled first because s*e dwarfs s and 1.
  std::vector<std::vector<double>> q(3, std::vector<double>(n));
  for (size_t i = 0; i < n; ++i) {
    const double s = samples[i].length, e = samples[i].end;
    q[0][i] = s * e - s * s / 2;
    q[1][i] = s;
    q[2][i] = 1;
  }
  double scale[3], r[3][3] = {};
  auto dot = [&](const std::vector<double> &x, const std::vector<double> &y) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i)
      sum += x[i] * y[i];
    return sum;
  };
  for (int j = 0; j < 3; ++j) {
    scale[j] = 0;
    for (double v : q[j])
      scale[j] = std::max(scale[j], std::fabs(v));
    for (double &v : q[j])
      v /= scale[j];
    const double norm = std::sqrt(dot(q[j], q[j]));
    for (int i = 0; i < j; ++i) {
      r[i][j] = dot(q[i], q[j]);
      for (size_t k = 0; k < n; ++k)
        q[j][k] -= r[i][j] * q[i][k];
    }
    r[j][j] = std::sqrt(dot(q[j], q[j]));
    if (r[j][j] <= 1e-9 * norm)
      return Error{"profile samples do not determine the chunk cost model "
                   "(singular system): vary both chunk length and position"};
    for (double &v : q[j])
      v /= r[j][j];
  }
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i)
    y[i] = samples[i].seconds;
  double x[3];
  for (int j = 2; j >= 0; --j) {
    x[j] = dot(q[j], y);
    for (int k = j + 1; k < 3; ++k)
      x[j] -= r[j][k] * x[k];
    x[j] /= r[j][j];
  }
  return ChunkCostFit{x[0] / scale[0], x[1] / scale[1], x[2] / scale[2]};
}

} // namespace seq1f1b::schedule
