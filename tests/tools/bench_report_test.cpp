// bench-report on a small Google Benchmark JSON file: tables with the figures, plots written.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

TEST(BenchReport, TablesAndPlotsFromBenchmarkJson) {
  const auto dir = fs::temp_directory_path() / ("bench-report-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // Repetitions: the medians are the figures to report, not the single repetitions.
  std::ofstream(dir / "bench_halo.json") << R"({"benchmarks": [
    {"name": "BM_HaloCycle_Full/subjects:1000/threads:1/real_time_median",
     "run_name": "BM_HaloCycle_Full/subjects:1000/threads:1/real_time", "run_type": "aggregate",
     "aggregate_name": "median", "real_time": 0.5, "cpu_time": 0.5, "time_unit": "ms"},
    {"name": "BM_HaloCycle_Full/subjects:1000/threads:1/real_time",
     "run_name": "BM_HaloCycle_Full/subjects:1000/threads:1/real_time", "run_type": "iteration",
     "real_time": 9.0, "cpu_time": 9.0, "time_unit": "ms"},
    {"name": "BM_HaloCycle_Full/subjects:100000/threads:1/real_time_median",
     "run_name": "BM_HaloCycle_Full/subjects:100000/threads:1/real_time",
     "run_type": "aggregate", "aggregate_name": "median", "real_time": 42.0, "cpu_time": 42.0,
     "time_unit": "ms"}]})";
  std::ofstream(dir / "bench_executor.json") << R"({"benchmarks": [
    {"name": "BM_Octopus_Submit_Noop", "run_type": "iteration", "real_time": 1, "cpu_time": 1,
     "time_unit": "ms", "items_per_second": 8000000},
    {"name": "BM_Octopus_Submit_1us", "run_type": "iteration", "real_time": 1, "cpu_time": 1,
     "time_unit": "ms", "items_per_second": 1500000}]})";
  std::ofstream(dir / "bench_journal.json") << R"({"benchmarks": [
    {"name": "BM_Journal_Enqueue/mode:2/producers:8/tasks:20000/real_time", "run_type": "iteration",
     "real_time": 900, "cpu_time": 1, "time_unit": "ms", "items_per_second": 22236,
     "mean_batch": 13.3}]})";
  const std::string cmd = std::string(BENCH_REPORT_PATH) + " " + dir.string() + " " +
                          (dir / "bench_halo.json").string() + " " +
                          (dir / "bench_executor.json").string() + " " +
                          (dir / "bench_journal.json").string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  std::string out;
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int st = ::pclose(p);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << out;

  std::ifstream in(dir / "latest.md");
  std::stringstream md;
  md << in.rdbuf();
  const std::string text = md.str();
  EXPECT_NE(text.find("| full | 1000 | 1 | 0.5 |"), std::string::npos) << text;
  EXPECT_NE(text.find("| full | 100000 | 1 | 42 |"), std::string::npos) << text;
  EXPECT_EQ(text.find("| 9 |"), std::string::npos) << "a single repetition leaked in\n" << text;
  EXPECT_NE(text.find("| Octopus_Submit | 8 M/s | 1.5 M/s |"), std::string::npos) << text;
  // A suite without a section of its own still gets a table.
  EXPECT_NE(text.find("## bench_journal"), std::string::npos) << text;
  EXPECT_NE(text.find("| BM_Journal_Enqueue/mode:2/producers:8/tasks:20000/real_time | 900 ms | "
                      "2.22e+04 | mean_batch=13.3 |"),
            std::string::npos)
      << text;
  EXPECT_GT(fs::file_size(dir / "halo.png"), 1000u);
  EXPECT_GT(fs::file_size(dir / "executor.png"), 1000u);

  // A missing input is an error naming it, exit 2.
  p = ::popen(
      (std::string(BENCH_REPORT_PATH) + " " + dir.string() + " /nonexistent.json 2>&1").c_str(),
      "r");
  out.clear();
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int st2 = ::pclose(p);
  EXPECT_EQ(WEXITSTATUS(st2), 2);
  EXPECT_NE(out.find("/nonexistent.json"), std::string::npos) << out;
  fs::remove_all(dir);
}

}  // namespace
