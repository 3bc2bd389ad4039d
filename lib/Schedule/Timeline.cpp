//===- Timeline.cpp - Pictures of a simulated schedule --------------------===//

#include "seq1f1b/Schedule/Timeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace seq1f1b::schedule {

namespace {

std::string fmt(const char *format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

/// "F1" or "F1.2": the action without its stage.
std::string eventName(const TimelineEvent &e, bool chunked) {
  std::string name(actionKindName(e.kind));
  name += std::to_string(e.microbatch);
  if (chunked)
    name += "." + std::to_string(e.chunk);
  return name;
}

struct Rgb {
  int r, g, b;
};

// Tableau 10: distinct hues that stay readable when darkened or tinted.
constexpr Rgb kPalette[] = {{78, 121, 167},  {242, 142, 43}, {225, 87, 89},
                            {118, 183, 178}, {89, 161, 79},  {237, 201, 72},
                            {176, 122, 161}, {255, 157, 167}, {156, 117, 95},
                            {186, 176, 172}};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

/// Blends `c` toward `target` by `t` in [0, 1].
std::string mix(Rgb c, Rgb target, double t) {
  auto ch = [&](int a, int b) {
    return std::to_string(static_cast<int>(std::lround(a + (b - a) * t)));
  };
  return "rgb(" + ch(c.r, target.r) + "," + ch(c.g, target.g) + "," +
         ch(c.b, target.b) + ")";
}

constexpr Rgb kBlack{20, 20, 30}, kWhite{255, 255, 255};

struct BoxStyle {
  std::string fill, stroke, dash, text;
  bool hatched = false;
};

BoxStyle styleOf(ActionKind kind, Rgb base) {
  switch (kind) {
  case ActionKind::Forward:
    return {mix(base, kWhite, 0), "none", "", "white"};
  case ActionKind::Backward:
    return {mix(base, kBlack, 0.42), "none", "", "white"};
  case ActionKind::BackwardInput:
    return {mix(base, kBlack, 0.42), "none", "", "white", true};
  default: // W
    return {mix(base, kWhite, 0.6), mix(base, kBlack, 0.45), "3,2",
            "rgb(40,40,50)"};
  }
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) for about `n` ticks.
double tickStep(double span, int n) {
  double raw = span / n;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw)
      return m * mag;
  return 10 * mag;
}

/// Picks s, ms or us so that axis labels stay short.
void timeUnit(double makespan, double &scale, std::string &unit) {
  if (makespan >= 1) {
    scale = 1, unit = "s";
  } else if (makespan >= 1e-3) {
    scale = 1e3, unit = "ms";
  } else {
    scale = 1e6, unit = "us";
  }
}

std::string escape(const std::string &s) {
  std::string out;
  for (char ch : s) {
    if (ch == '&')
      out += "&amp;";
    else if (ch == '<')
      out += "&lt;";
    else if (ch == '>')
      out += "&gt;";
    else
      out += ch;
  }
  return out;
}

/// Bytes in the largest binary unit that keeps them >= 1.
void byteUnit(double maxBytes, double &scale, std::string &unit) {
  const char *names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  scale = 1;
  while (i < 4 && maxBytes * scale >= 1024)
    scale /= 1024, ++i;
  unit = names[i];
}

/// The rank's live bytes as a step curve under its actions' time axis:
/// weights, gradients and optimizer state (constant) light, what the
/// schedule keeps (activations, KV caches) dark, all ranks on one scale.
template <typename X>
std::string memoryStrips(const SimulationResult &result,
                         const SvgOptions &options, double left, double plotW,
                         double top, double stripH, double gap, X x) {
  const ScheduleConfig &c = result.config;
  double maxBytes = std::max(1.0, options.memoryScale);
  for (const RankStats &r : result.ranks)
    maxBytes = std::max(maxBytes, double(r.peakMemory.total()));
  const bool limit = options.memoryLimit > 0 && options.memoryLimit < maxBytes;
  double scale;
  std::string unit;
  byteUnit(maxBytes, scale, unit);
  std::string s =
      "<text x=\"" + fmt("%.0f", left) + "\" y=\"" + fmt("%.1f", top - 10) +
      "\" font-size=\"13\" font-weight=\"bold\" "
      "fill=\"rgb(30,30,40)\">live memory per rank (" +
      unit +
      "; light: weights, gradients, optimizer state; dark: "
      "activations and KV caches" +
      (limit ? "; red: " + fmt("%.3g", options.memoryLimit * scale) + " " +
                   unit + " per GPU"
             : std::string()) +
      ")</text>\n";
  for (int r = 0; r < c.ranks; ++r) {
    const double y0 = top + r * (stripH + gap), base = y0 + stripH;
    auto y = [&](double bytes) { return base - bytes / maxBytes * stripH; };
    const RankStats &st = result.ranks[size_t(r)];
    s += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", y0) +
         "\" width=\"" + fmt("%.1f", plotW) + "\" height=\"" +
         fmt("%.0f", stripH) + "\" fill=\"rgb(244,245,247)\"/>\n";
    s += "<text x=\"" + fmt("%.0f", left - 10) + "\" y=\"" +
         fmt("%.1f", y0 + stripH / 2 + 4) +
         "\" font-size=\"13\" text-anchor=\"end\" fill=\"rgb(60,60,70)\">"
         "rank " +
         std::to_string(r) + "</text>\n";
    // The step curve: each action holds liveDuring while it runs and leaves
    // liveAfter behind.
    std::string pts = fmt("%.2f", x(0)) + "," + fmt("%.2f", base);
    double level = double(st.staticBytes);
    auto point = [&](double t, double bytes) {
      pts += " " + fmt("%.2f", x(t)) + "," + fmt("%.2f", y(bytes));
    };
    point(0, level);
    for (const TimelineEvent &e : result.events) {
      if (e.rank != r)
        continue;
      point(e.start, level);
      point(e.start, double(e.liveDuring));
      point(e.end, double(e.liveDuring));
      level = double(e.liveAfter);
      point(e.end, level);
    }
    point(result.makespan, level);
    pts += " " + fmt("%.2f", x(result.makespan)) + "," + fmt("%.2f", base);
    s += "<polygon points=\"" + pts + "\" fill=\"rgb(92,104,128)\"/>\n";
    s += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" +
         fmt("%.2f", y(double(st.staticBytes))) + "\" width=\"" +
         fmt("%.1f", plotW) + "\" height=\"" +
         fmt("%.2f", base - y(double(st.staticBytes))) +
         "\" fill=\"rgb(190,198,214)\"/>\n";
    if (limit)
      s += "<line x1=\"" + fmt("%.1f", left) + "\" x2=\"" +
           fmt("%.1f", left + plotW) + "\" y1=\"" +
           fmt("%.2f", y(options.memoryLimit)) + "\" y2=\"" +
           fmt("%.2f", y(options.memoryLimit)) +
           "\" stroke=\"rgb(200,40,40)\" stroke-dasharray=\"5,3\"/>\n";
    s += "<rect x=\"" + fmt("%.1f", left + plotW - 90) + "\" y=\"" +
         fmt("%.1f", y0 + 1) +
         "\" width=\"88\" height=\"15\" rx=\"2\" fill=\"white\" "
         "fill-opacity=\"0.85\"/>\n";
    s += "<text x=\"" + fmt("%.1f", left + plotW - 4) + "\" y=\"" +
         fmt("%.1f", y0 + 12) +
         "\" font-size=\"11\" text-anchor=\"end\" fill=\"rgb(30,30,40)\">"
         "peak " +
         fmt("%.3g", double(st.peakMemory.total()) * scale) + " " + unit +
         "</text>\n";
  }
  return s;
}

} // namespace

std::string chromeTraceJson(const SimulationResult &result) {
  const bool chunked = result.config.chunks > 1;
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  out += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":"
         "{\"name\":\"" +
         std::string(scheduleKindName(result.config.kind)) + " schedule\"}}";
  for (int r = 0; r < result.config.ranks; ++r)
    out += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":" +
           std::to_string(r) + ",\"args\":{\"name\":\"rank " +
           std::to_string(r) + "\"}}";
  for (const TimelineEvent &e : result.events) {
    out += ",\n{\"name\":\"" + eventName(e, chunked) + "\",\"cat\":\"" +
           std::string(actionKindName(e.kind)) +
           "\",\"ph\":\"X\",\"pid\":0,\"tid\":" + std::to_string(e.rank) +
           ",\"ts\":" + fmt("%.3f", e.start * 1e6) +
           ",\"dur\":" + fmt("%.3f", (e.end - e.start) * 1e6) +
           ",\"args\":{\"stage\":" + std::to_string(e.stage) +
           ",\"microbatch\":" + std::to_string(e.microbatch) +
           ",\"chunk\":" + std::to_string(e.chunk) + "}}";
  }
  out += "\n]}\n";
  return out;
}

std::string timelineSvg(const SimulationResult &result,
                        const SvgOptions &options) {
  const ScheduleConfig &c = result.config;
  const bool chunked = c.chunks > 1;
  const double left = 70, right = 24, top = 56, rowH = 30, rowGap = 8;
  const double width = std::max(options.width, 300);
  const double plotW = width - left - right;
  const double plotH = c.ranks * (rowH + rowGap) - rowGap;
  const double axisY = top + plotH + 8;
  // With a memory model, a strip per rank of its live bytes over time.
  const bool memory = result.hasMemory && !result.ranks.empty();
  const double stripH = 34, memTop = axisY + 66;
  const double legendY =
      memory ? memTop + c.ranks * (stripH + rowGap) + 8 : axisY + 42;
  const double height = legendY + 56;
  const double makespan =
      std::max(result.makespan > 0 ? result.makespan : 1, options.timeSpan);
  auto x = [&](double t) { return left + t / makespan * plotW; };
  auto rowY = [&](int rank) { return top + rank * (rowH + rowGap); };

  std::string title = options.title;
  if (title.empty())
    title = std::string(scheduleKindName(c.kind)) +
            "   P=" + std::to_string(c.ranks) +
            " V=" + std::to_string(c.virtualStages) +
            " M=" + std::to_string(c.microbatches) +
            " N=" + std::to_string(c.chunks) + "   bubble " +
            fmt("%.1f", 100 * result.bubbleFraction) + "%";

  std::string s;
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", width) +
       "\" height=\"" + fmt("%.0f", height) + "\" viewBox=\"0 0 " +
       fmt("%.0f", width) + " " + fmt("%.0f", height) +
       "\" font-family=\"Helvetica, Arial, sans-serif\">\n";
  s += "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
       "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
       "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"white\" "
       "stroke-width=\"2\" stroke-opacity=\"0.45\"/></pattern></defs>\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + fmt("%.0f", left) + "\" y=\"30\" font-size=\"17\" "
       "font-weight=\"bold\" fill=\"rgb(30,30,40)\">" + escape(title) +
       "</text>\n";

  // Rows with rank labels.
  for (int r = 0; r < c.ranks; ++r) {
    s += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", rowY(r)) +
         "\" width=\"" + fmt("%.1f", plotW) + "\" height=\"" +
         fmt("%.0f", rowH) + "\" fill=\"rgb(244,245,247)\"/>\n";
    s += "<text x=\"" + fmt("%.0f", left - 10) + "\" y=\"" +
         fmt("%.1f", rowY(r) + rowH / 2 + 4) +
         "\" font-size=\"13\" text-anchor=\"end\" fill=\"rgb(60,60,70)\">"
         "rank " + std::to_string(r) + "</text>\n";
  }

  // Action boxes; labels shrink to what fits (about 6.5 px per glyph).
  for (const TimelineEvent &e : result.events) {
    const Rgb base = kPalette[e.microbatch % kPaletteSize];
    const BoxStyle st = styleOf(e.kind, base);
    const double x0 = x(e.start), w = std::max(x(e.end) - x0, 0.5);
    const double y0 = rowY(e.rank) + 1, h = rowH - 2;
    std::string rect = "x=\"" + fmt("%.2f", x0 + 0.5) + "\" y=\"" +
                       fmt("%.1f", y0) + "\" width=\"" +
                       fmt("%.2f", std::max(w - 1, 0.5)) + "\" height=\"" +
                       fmt("%.0f", h) + "\" rx=\"2\"";
    s += "<rect " + rect + " fill=\"" + st.fill + "\"";
    if (st.stroke != "none")
      s += " stroke=\"" + st.stroke + "\" stroke-width=\"1.2\"" +
           (st.dash.empty() ? "" : " stroke-dasharray=\"" + st.dash + "\"");
    s += "><title>rank " + std::to_string(e.rank) + " stage " +
         std::to_string(e.stage) + " " + eventName(e, chunked) + " [" +
         fmt("%.6g", e.start) + ", " + fmt("%.6g", e.end) + "]</title></rect>\n";
    if (st.hatched)
      s += "<rect " + rect + " fill=\"url(#hatch)\"/>\n";
    std::string label = eventName(e, chunked);
    if (label.size() * 6.5 + 4 > w)
      label = chunked ? std::to_string(e.chunk) : std::to_string(e.microbatch);
    if (label.size() * 6.5 + 3 <= w)
      s += "<text x=\"" + fmt("%.2f", x0 + w / 2) + "\" y=\"" +
           fmt("%.1f", y0 + h / 2 + 4) +
           "\" font-size=\"11\" text-anchor=\"middle\" fill=\"" + st.text +
           "\">" + label + "</text>\n";
  }

  // Time axis.
  double scale;
  std::string unit;
  timeUnit(makespan, scale, unit);
  const double step = tickStep(makespan * scale, 10) / scale;
  s += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + fmt("%.1f", axisY) +
       "\" x2=\"" + fmt("%.1f", left + plotW) + "\" y2=\"" +
       fmt("%.1f", axisY) + "\" stroke=\"rgb(90,90,100)\"/>\n";
  for (int i = 0; i * step <= makespan * (1 + 1e-9); ++i) {
    const double t = i * step, tx = x(t);
    s += "<line x1=\"" + fmt("%.1f", tx) + "\" y1=\"" + fmt("%.1f", axisY) +
         "\" x2=\"" + fmt("%.1f", tx) + "\" y2=\"" + fmt("%.1f", axisY + 5) +
         "\" stroke=\"rgb(90,90,100)\"/>\n";
    s += "<text x=\"" + fmt("%.1f", tx) + "\" y=\"" + fmt("%.1f", axisY + 18) +
         "\" font-size=\"11\" text-anchor=\"middle\" fill=\"rgb(60,60,70)\">" +
         fmt("%g", t * scale) + "</text>\n";
  }
  s += "<text x=\"" + fmt("%.1f", left + plotW) + "\" y=\"" +
       fmt("%.1f", axisY + 32) +
       "\" font-size=\"11\" text-anchor=\"end\" fill=\"rgb(60,60,70)\">time (" +
       unit + ")</text>\n";

  if (memory)
    s += memoryStrips(result, options, left, plotW, memTop, stripH, rowGap, x);

  // Legend: pass kinds on a neutral color, then micro-batch colors.
  const Rgb neutral{120, 125, 135};
  double lx = left;
  auto swatch = [&](const BoxStyle &st, const std::string &text) {
    s += "<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", legendY) +
         "\" width=\"22\" height=\"14\" rx=\"2\" fill=\"" + st.fill + "\"" +
         (st.stroke != "none" ? " stroke=\"" + st.stroke +
                                    "\" stroke-dasharray=\"" + st.dash + "\""
                              : "") +
         "/>\n";
    if (st.hatched)
      s += "<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", legendY) +
           "\" width=\"22\" height=\"14\" rx=\"2\" fill=\"url(#hatch)\"/>\n";
    s += "<text x=\"" + fmt("%.1f", lx + 28) + "\" y=\"" +
         fmt("%.1f", legendY + 11) + "\" font-size=\"12\" "
         "fill=\"rgb(60,60,70)\">" + text + "</text>\n";
    lx += 44 + text.size() * 7;
  };
  swatch(styleOf(ActionKind::Forward, neutral), "F forward");
  swatch(styleOf(ActionKind::Backward, neutral), "B backward");
  swatch(styleOf(ActionKind::BackwardInput, neutral), "I input grad");
  swatch(styleOf(ActionKind::BackwardWeight, neutral), "W weight grad");
  lx = left;
  const double mbY = legendY + 24;
  s += "<text x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", mbY + 11) +
       "\" font-size=\"12\" fill=\"rgb(60,60,70)\">micro-batch:</text>\n";
  lx += 86;
  const int shown = std::min(c.microbatches, kPaletteSize);
  for (int mb = 0; mb < shown; ++mb) {
    s += "<rect x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", mbY) +
         "\" width=\"14\" height=\"14\" rx=\"2\" fill=\"" +
         mix(kPalette[mb], kWhite, 0) + "\"/>\n";
    s += "<text x=\"" + fmt("%.1f", lx + 18) + "\" y=\"" +
         fmt("%.1f", mbY + 11) + "\" font-size=\"12\" fill=\"rgb(60,60,70)\">" +
         std::to_string(mb) + "</text>\n";
    lx += 40;
  }
  if (c.microbatches > kPaletteSize)
    s += "<text x=\"" + fmt("%.1f", lx) + "\" y=\"" + fmt("%.1f", mbY + 11) +
         "\" font-size=\"12\" fill=\"rgb(60,60,70)\">(colors repeat every " +
         std::to_string(kPaletteSize) + ")</text>\n";
  if (chunked)
    s += "<text x=\"" + fmt("%.1f", left + plotW) + "\" y=\"" +
         fmt("%.1f", mbY + 11) + "\" font-size=\"12\" text-anchor=\"end\" "
         "fill=\"rgb(60,60,70)\">labels: kind, micro-batch.chunk</text>\n";
  s += "</svg>\n";
  return s;
}

std::vector<size_t> layoutFrontier(const std::vector<LayoutPoint> &points,
                                   double memoryLimit) {
  std::vector<size_t> order;
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i].peakBytes <= memoryLimit)
      order.push_back(i);
  // By growing peak, ties fastest first; a layout is on the frontier when it
  // is faster than every layout that needs less memory.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (points[a].peakBytes != points[b].peakBytes)
      return points[a].peakBytes < points[b].peakBytes;
    return points[a].tokensPerSecond > points[b].tokensPerSecond;
  });
  std::vector<size_t> frontier;
  for (size_t i : order)
    if (frontier.empty() ||
        points[i].tokensPerSecond > points[frontier.back()].tokensPerSecond)
      frontier.push_back(i);
  return frontier;
}

std::string layoutChartSvg(const std::vector<LayoutPoint> &points,
                           double memoryLimit, const std::string &title) {
  const std::vector<size_t> frontier = layoutFrontier(points, memoryLimit);
  const double width = 900, left = 80, right = 30, top = 74, plotH = 380;
  const double plotW = width - left - right, axisY = top + plotH;
  const double listY = axisY + 62, lineH = 18;
  const double height =
      listY + std::max<size_t>(frontier.size(), 1) * lineH + 16;
  double maxBytes = memoryLimit, maxTokens = 0;
  for (const LayoutPoint &p : points) {
    maxBytes = std::max(maxBytes, p.peakBytes);
    maxTokens = std::max(maxTokens, p.tokensPerSecond);
  }
  // Far-out layouts would squeeze the ones that fit: past twice the GPU's
  // memory they sit at the right edge.
  const bool clamped = memoryLimit > 0 && maxBytes > 2 * memoryLimit;
  if (clamped)
    maxBytes = 2 * memoryLimit;
  double byteScale;
  std::string byteName;
  byteUnit(maxBytes, byteScale, byteName);
  const double xSpan = maxBytes * byteScale * 1.05;
  const double ySpan = std::max(maxTokens, 1.0) * 1.1;
  auto x = [&](double bytes) {
    return left + std::min(bytes, maxBytes) * byteScale / xSpan * plotW;
  };
  auto y = [&](double tokens) { return axisY - tokens / ySpan * plotH; };
  const std::string text = "fill=\"rgb(60,60,70)\"";
  // A color per schedule, in name order, so that 1f1b comes first.
  std::vector<std::string> schedules;
  for (const LayoutPoint &p : points)
    if (std::find(schedules.begin(), schedules.end(), p.schedule) ==
        schedules.end())
      schedules.push_back(p.schedule);
  std::sort(schedules.begin(), schedules.end());
  auto colorOf = [&](const std::string &schedule) {
    const size_t i = std::find(schedules.begin(), schedules.end(), schedule) -
                     schedules.begin();
    return mix(kPalette[i % kPaletteSize], kWhite, 0);
  };

  std::string s;
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
       fmt("%.0f", width) + "\" height=\"" + fmt("%.0f", height) +
       "\" viewBox=\"0 0 " + fmt("%.0f", width) + " " + fmt("%.0f", height) +
       "\" font-family=\"Helvetica, Arial, sans-serif\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + fmt("%.0f", left) +
       "\" y=\"30\" font-size=\"17\" "
       "font-weight=\"bold\" fill=\"rgb(30,30,40)\">" +
       escape(title) + "</text>\n";
  // The legend, under the title.
  double legendX = left;
  for (const std::string &schedule : schedules) {
    if (schedule.empty())
      continue;
    s += "<circle cx=\"" + fmt("%.1f", legendX + 4) +
         "\" cy=\"50\" r=\"4\" fill=\"" + colorOf(schedule) + "\"/>\n";
    s += "<text x=\"" + fmt("%.1f", legendX + 12) +
         "\" y=\"54\" font-size=\"12\" " + text + ">" + escape(schedule) +
         "</text>\n";
    legendX += 30 + 7.0 * schedule.size();
  }
  // Axes with ticks and grid lines.
  const double xStep = tickStep(xSpan, 8), yStep = tickStep(ySpan, 6);
  for (double v = 0; v <= xSpan + 1e-9; v += xStep) {
    const double px = left + v / xSpan * plotW;
    s += "<line x1=\"" + fmt("%.1f", px) + "\" y1=\"" + fmt("%.0f", top) +
         "\" x2=\"" + fmt("%.1f", px) + "\" y2=\"" + fmt("%.0f", axisY) +
         "\" stroke=\"rgb(232,234,238)\"/>\n";
    s += "<text x=\"" + fmt("%.1f", px) + "\" y=\"" + fmt("%.0f", axisY + 16) +
         "\" font-size=\"11\" text-anchor=\"middle\" " + text + ">" +
         fmt("%g", v) + "</text>\n";
  }
  for (double v = 0; v <= ySpan + 1e-9; v += yStep) {
    const double py = axisY - v / ySpan * plotH;
    s += "<line x1=\"" + fmt("%.0f", left) + "\" y1=\"" + fmt("%.1f", py) +
         "\" x2=\"" + fmt("%.0f", left + plotW) + "\" y2=\"" + fmt("%.1f", py) +
         "\" stroke=\"rgb(232,234,238)\"/>\n";
    s += "<text x=\"" + fmt("%.0f", left - 6) + "\" y=\"" +
         fmt("%.1f", py + 4) + "\" font-size=\"11\" text-anchor=\"end\" " +
         text + ">" + fmt("%g", v) + "</text>\n";
  }
  s += "<text x=\"" + fmt("%.0f", left + plotW / 2) + "\" y=\"" +
       fmt("%.0f", axisY + 36) + "\" font-size=\"12\" text-anchor=\"middle\" " +
       text + ">peak memory per GPU (" + byteName + ")</text>\n";
  s += "<text x=\"18\" y=\"" + fmt("%.0f", top + plotH / 2) +
       "\" font-size=\"12\" text-anchor=\"middle\" " + text +
       " transform=\"rotate(-90 18 " + fmt("%.0f", top + plotH / 2) +
       ")\">tokens/s per GPU</text>\n";
  if (memoryLimit > 0)
    s += "<line x1=\"" + fmt("%.1f", x(memoryLimit)) + "\" y1=\"" +
         fmt("%.0f", top) + "\" x2=\"" + fmt("%.1f", x(memoryLimit)) +
         "\" y2=\"" + fmt("%.0f", axisY) +
         "\" stroke=\"rgb(200,40,40)\" stroke-dasharray=\"5,3\"/>\n"
         "<text x=\"" +
         fmt("%.1f", x(memoryLimit) - 4) + "\" y=\"" + fmt("%.0f", top + 12) +
         "\" font-size=\"11\" text-anchor=\"end\" "
         "fill=\"rgb(200,40,40)\">GPU memory</text>\n";
  if (clamped)
    s += "<text x=\"" + fmt("%.0f", left + plotW) + "\" y=\"" +
         fmt("%.0f", axisY + 36) + "\" font-size=\"11\" text-anchor=\"end\" " +
         text + ">past " + fmt("%g", maxBytes * byteScale) + " " + byteName +
         ": at the edge</text>\n";
  // The frontier, joined, under the points.
  std::string path;
  for (size_t i : frontier)
    path += fmt("%.1f", x(points[i].peakBytes)) + "," +
            fmt("%.1f", y(points[i].tokensPerSecond)) + " ";
  if (frontier.size() > 1)
    s += "<polyline points=\"" + path +
         "\" fill=\"none\" stroke=\"rgb(110,110,120)\" stroke-width=\"1.5\"/>\n";
  for (const LayoutPoint &p : points) {
    const bool fits = p.peakBytes <= memoryLimit;
    s += "<circle cx=\"" + fmt("%.1f", x(p.peakBytes)) + "\" cy=\"" +
         fmt("%.1f", y(p.tokensPerSecond)) + "\" r=\"4\" " +
         (fits ? "fill=\"" + colorOf(p.schedule) + "\" fill-opacity=\"0.7\""
               : std::string("fill=\"none\" stroke=\"rgb(150,150,160)\"")) +
         "><title>" + escape(p.layout + ": " + p.plan) + "</title></circle>\n";
  }
  // The fastest that fits is the frontier's last point.
  if (!frontier.empty()) {
    const LayoutPoint &best = points[frontier.back()];
    s += "<circle cx=\"" + fmt("%.1f", x(best.peakBytes)) + "\" cy=\"" +
         fmt("%.1f", y(best.tokensPerSecond)) +
         "\" r=\"9\" fill=\"none\" stroke=\"rgb(30,30,40)\" "
         "stroke-width=\"2\"/>\n";
  }
  for (size_t k = 0; k < frontier.size(); ++k) {
    const LayoutPoint &p = points[frontier[k]];
    s += "<text x=\"" + fmt("%.1f", x(p.peakBytes) + 7) + "\" y=\"" +
         fmt("%.1f", y(p.tokensPerSecond) - 7) +
         "\" font-size=\"12\" font-weight=\"bold\" fill=\"rgb(30,30,40)\">" +
         std::to_string(k + 1) + "</text>\n";
    s += "<text x=\"" + fmt("%.0f", left) + "\" y=\"" +
         fmt("%.0f", listY + k * lineH) + "\" font-size=\"12\" " + text +
         "><tspan font-weight=\"bold\">" + std::to_string(k + 1) +
         "</tspan>  " + escape(p.layout) + ", " + escape(p.plan) + ": " +
         fmt("%.0f", p.tokensPerSecond) + " tokens/s per GPU, " +
         fmt("%.2f", p.peakBytes * byteScale) + " " + byteName +
         (k + 1 == frontier.size() ? " (fastest)" : "") + "</text>\n";
  }
  if (frontier.empty())
    s += "<text x=\"" + fmt("%.0f", left) + "\" y=\"" + fmt("%.0f", listY) +
         "\" font-size=\"12\" fill=\"rgb(200,40,40)\">no layout fits</text>\n";
  s += "</svg>\n";
  return s;
}

} // namespace seq1f1b::schedule
