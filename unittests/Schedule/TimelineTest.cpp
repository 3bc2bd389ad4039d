//===- TimelineTest.cpp - Chrome trace and SVG writers --------------------===//

#include "seq1f1b/Schedule/Timeline.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

using namespace seq1f1b::schedule;

namespace {

size_t count(const std::string &text, const std::string &needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

SimulationResult simulated(ScheduleKind kind, int p, int m, int n) {
  Result<Schedule> s = generateSchedule({p, 1, m, n, kind});
  EXPECT_TRUE(s.ok()) << s.error;
  SimulationModel model;
  model.cost = [](int, int chunk) {
    UnitCost u;
    u.forward = 1e-3 * (1 + 0.3 * chunk);
    u.backward = 2 * u.forward;
    u.backwardInput = u.forward;
    u.backwardWeight = u.forward;
    return u;
  };
  return *simulateSchedule(*s, model);
}

/// Set S1F_TIMELINE_DIR to keep the pictures for a look.
void keep(const std::string &name, const std::string &text) {
  if (const char *dir = std::getenv("S1F_TIMELINE_DIR"))
    std::ofstream(std::string(dir) + "/" + name) << text;
}

} // namespace

TEST(TimelineTest, ChromeTraceHasOneEventPerAction) {
  SimulationResult r = simulated(ScheduleKind::Seq1F1B, 2, 2, 2);
  std::string json = chromeTraceJson(r);
  keep("seq1f1b.json", json);
  EXPECT_EQ(count(json, "\"ph\":\"X\""), r.events.size());
  EXPECT_EQ(count(json, "\"name\":\"thread_name\""), 2u);
  // rank 0's first F0.0 runs [0, 1 ms).
  EXPECT_NE(json.find("{\"name\":\"F0.0\",\"cat\":\"F\",\"ph\":\"X\",\"pid\":0,"
                      "\"tid\":0,\"ts\":0.000,\"dur\":1000.000,\"args\":"
                      "{\"stage\":0,\"microbatch\":0,\"chunk\":0}}"),
            std::string::npos)
      << json.substr(0, 600);
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.substr(json.size() - 3), "]}\n");
}

TEST(TimelineTest, SvgDrawsEveryAction) {
  SimulationResult r = simulated(ScheduleKind::Seq1F1B, 4, 2, 4);
  std::string svg = timelineSvg(r);
  keep("seq1f1b.svg", svg);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(svg, "<title>rank "), r.events.size());
  EXPECT_NE(svg.find("seq1f1b   P=4 V=1 M=2 N=4   bubble"), std::string::npos);
  EXPECT_NE(svg.find("time (ms)"), std::string::npos);
  EXPECT_NE(svg.find(">F1.3</text>"), std::string::npos);

  SimulationResult zb = simulated(ScheduleKind::Seq1F1BZB, 4, 3, 2);
  std::string zbSvg = timelineSvg(zb, {"zero bubble <test>", 900});
  keep("seq1f1b-zb.svg", zbSvg);
  EXPECT_NE(zbSvg.find("zero bubble &lt;test&gt;"), std::string::npos);
  EXPECT_NE(zbSvg.find("url(#hatch)"), std::string::npos);
  EXPECT_NE(zbSvg.find("stroke-dasharray"), std::string::npos);
  // No memory model, no memory strips.
  EXPECT_EQ(svg.find("live memory"), std::string::npos);
}

TEST(TimelineTest, SvgDrawsLiveMemoryPerRank) {
  Result<Schedule> s = generateSchedule({4, 1, 3, 2, ScheduleKind::Seq1F1B});
  ASSERT_TRUE(s.ok()) << s.error;
  SimulationModel model;
  model.cost = [](int, int) {
    UnitCost u;
    u.forward = 1e-3, u.backward = 2e-3;
    return u;
  };
  model.staticMemory = [](int) { return StaticMemory{1 << 30, 0, 0}; };
  model.chunkMemory = [](int, int) {
    ChunkMemory c;
    c.activations = 1 << 29;
    return c;
  };
  SimulationResult r = *simulateSchedule(*s, model);
  SvgOptions options;
  options.memoryLimit = 2.0 * (1 << 30);
  options.timeSpan = 2 * r.makespan; // another plan's, twice as long
  std::string svg = timelineSvg(r, options);
  keep("seq1f1b-memory.svg", svg);
  EXPECT_NE(svg.find("live memory per rank (GiB"), std::string::npos);
  EXPECT_NE(svg.find("red: 2 GiB per GPU"), std::string::npos);
  EXPECT_EQ(count(svg, "<polygon "), 4u); // one curve per rank
  // Rank 0 holds P + N - 1 = 5 chunks at its peak: 1 + 5/2 GiB.
  EXPECT_NE(svg.find("peak 3.5 GiB"), std::string::npos);
  // The curve ends, everything freed, on the static bytes at the makespan,
  // which is half way along the shared time axis (x from 70 to 1176).
  EXPECT_NE(svg.find(" 623.00,"), std::string::npos);
}

TEST(LayoutChart, TheFrontierTradesMemoryForSpeed) {
  const double GiB = double(1ull << 30);
  // C and F are beaten by B (less or as much memory, faster), G ties A, E
  // does not fit in 80 GiB.
  std::vector<LayoutPoint> points = {
      {"A", "1f1b N=1", 100, 10 * GiB, "1f1b"},
      {"B", "seq1f1b N=2", 150, 20 * GiB, "seq1f1b"},
      {"C", "seq1f1b N=4", 140, 30 * GiB, "seq1f1b"},
      {"D", "seq1f1b N=8", 200, 40 * GiB, "seq1f1b"},
      {"E", "1f1b N=1", 300, 90 * GiB, "1f1b"},
      {"F", "seq1f1b N=2", 120, 20 * GiB, "seq1f1b"},
      {"G", "1f1b <x>", 100, 10 * GiB, "1f1b"}};
  EXPECT_EQ(layoutFrontier(points, 80 * GiB), (std::vector<size_t>{0, 1, 3}));
  EXPECT_TRUE(layoutFrontier(points, 5 * GiB).empty());

  std::string svg = layoutChartSvg(points, 80 * GiB, "layouts of 8 GPUs");
  // Every point, the fastest ringed, and a legend entry per schedule.
  EXPECT_EQ(count(svg, "<circle "), 10u);
  EXPECT_EQ(count(svg, "fill=\"none\" stroke=\"rgb(150,150,160)\""), 1u); // E
  // A color per schedule, 1f1b first: A and G; B, C, D and F.
  EXPECT_EQ(count(svg, "fill=\"rgb(78,121,167)\" fill-opacity"), 2u);
  EXPECT_EQ(count(svg, "fill=\"rgb(242,142,43)\" fill-opacity"), 4u);
  EXPECT_NE(svg.find("r=\"4\" fill=\"rgb(78,121,167)\"/>\n<text x=\"92.0\" "
                     "y=\"54\" font-size=\"12\" fill=\"rgb(60,60,70)\">1f1b"),
            std::string::npos);
  EXPECT_EQ(count(svg, ">seq1f1b</text>"), 1u);
  EXPECT_EQ(count(svg, "<polyline "), 1u);
  EXPECT_NE(svg.find("<tspan font-weight=\"bold\">1</tspan>  A, 1f1b N=1: 100 "
                     "tokens/s per GPU, 10.00 GiB</text>"),
            std::string::npos);
  EXPECT_NE(svg.find("<tspan font-weight=\"bold\">3</tspan>  D, seq1f1b N=8: "
                     "200 tokens/s per GPU, 40.00 GiB (fastest)</text>"),
            std::string::npos);
  EXPECT_EQ(svg.find("<tspan font-weight=\"bold\">4</tspan>"),
            std::string::npos);
  EXPECT_NE(svg.find("<title>G: 1f1b &lt;x&gt;</title>"), std::string::npos);
  EXPECT_NE(svg.find(">GPU memory</text>"), std::string::npos);
  EXPECT_NE(svg.find("peak memory per GPU (GiB)"), std::string::npos);

  std::string none = layoutChartSvg(points, 5 * GiB, "too small");
  EXPECT_NE(none.find(">no layout fits</text>"), std::string::npos);
  EXPECT_EQ(count(none, "<polyline "), 0u);
}
