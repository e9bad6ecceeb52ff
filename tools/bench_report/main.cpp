// bench-report: turns Google Benchmark JSON (from `tools/dev bench`) into markdown tables and
// gnuplot PNG plots: executor throughput against its peers, counter cost against threads, HALO
// cycle time against state size.
//
//   bench-report OUT_DIR bench_executor.json bench_counters.json bench_halo.json [other.json...]
//
// Other suites get a plain table each (time, items/s, counters).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Row {
  std::string name;  // without the aggregate suffix
  double real_ns = 0, cpu_ns = 0, items_per_second = 0;
  std::map<std::string, double> counters;
};

double to_ns(double v, const std::string& unit) {
  if (unit == "us") return v * 1e3;
  if (unit == "ms") return v * 1e6;
  if (unit == "s") return v * 1e9;
  return v;
}

// Iterations, or the medians when the file holds repetitions.
std::vector<Row> load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  const auto j = nlohmann::json::parse(in);
  bool has_median = false;
  for (const auto& b : j.at("benchmarks"))
    has_median = has_median || b.value("aggregate_name", "") == "median";
  std::vector<Row> rows;
  for (const auto& b : j.at("benchmarks")) {
    const bool median = b.value("aggregate_name", "") == "median";
    if (has_median ? !median : b.value("run_type", "iteration") != "iteration") continue;
    Row r;
    r.name = b.value("run_name", b.value("name", ""));
    const std::string unit = b.value("time_unit", "ns");
    r.real_ns = to_ns(b.value("real_time", 0.0), unit);
    r.cpu_ns = to_ns(b.value("cpu_time", 0.0), unit);
    r.items_per_second = b.value("items_per_second", 0.0);
    for (const auto& [k, v] : b.items())
      if (v.is_number() && k != "real_time" && k != "cpu_time" && k != "iterations")
        r.counters[k] = v.get<double>();
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string num(double v, const char* f = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void plot(const std::string& out_dir, const std::string& name, const std::string& script) {
  const std::string gp = out_dir + "/" + name + ".gp";
  std::ofstream(gp) << "set terminal pngcairo size 900,500 noenhanced\nset output '" << out_dir
                    << "/" << name << ".png'\n"
                    << script;
  if (std::system(("gnuplot '" + gp + "'").c_str()) != 0)
    std::cerr << "bench-report: gnuplot failed on " << gp << "\n";
}

void executor(const std::vector<Row>& rows, const std::string& out, std::ostream& md) {
  md << "## Executor throughput (items/s, 1,000,000 tasks, one producer)\n\n"
     << "| benchmark | no-op | ~1 µs |\n| --- | ---: | ---: |\n";
  std::map<std::string, std::pair<double, double>> by_peer;
  for (const auto& r : rows) {
    const auto noop = r.name.find("_Noop");
    const auto us = r.name.find("_1us");
    if (noop != std::string::npos) by_peer[r.name.substr(3, noop - 3)].first = r.items_per_second;
    if (us != std::string::npos) by_peer[r.name.substr(3, us - 3)].second = r.items_per_second;
  }
  std::ofstream dat(out + "/executor.dat");
  for (const auto& [peer, v] : by_peer) {
    md << "| " << peer << " | " << num(v.first / 1e6) << " M/s | " << num(v.second / 1e6)
       << " M/s |\n";
    dat << '"' << peer << "\" " << v.first / 1e6 << ' ' << v.second / 1e6 << '\n';
  }
  dat.close();  // gnuplot reads it next
  md << "\n![executor throughput](executor.png)\n\n";
  plot(out, "executor",
       "set style data histograms\nset style histogram clustered gap 1\nset style fill solid\n"
       "set ylabel 'M tasks/s'\nset xtics rotate by -30\nset grid y\nset logscale y\n"
       "plot '" +
           out + "/executor.dat' using 2:xtic(1) title 'no-op', '' using 3 title '~1 us'\n");
}

void counters(const std::vector<Row>& rows, const std::string& out, std::ostream& md) {
  md << "## Counter cost (CPU ns per operation per thread)\n\n"
     << "| benchmark | 1 thread | 2 threads |\n| --- | ---: | ---: |\n";
  std::map<std::string, std::pair<double, double>> by;
  for (const auto& r : rows) {
    const auto t = r.name.find("/threads:");
    if (t == std::string::npos) continue;
    const std::string base = r.name.substr(0, t);
    const int threads = std::atoi(r.name.c_str() + t + 9);
    (threads == 1 ? by[base].first : by[base].second) = r.cpu_ns;
  }
  std::ofstream dat(out + "/counters.dat");
  for (const auto& [name, v] : by) {
    md << "| " << name << " | " << num(v.first) << " | " << num(v.second) << " |\n";
    dat << '"' << name.substr(3) << "\" " << v.first << ' ' << v.second << '\n';
  }
  dat.close();
  md << "\n![counter cost](counters.png)\n\n";
  plot(out, "counters",
       "set style data histograms\nset style histogram clustered gap 1\nset style fill solid\n"
       "set ylabel 'ns per op per thread'\nset logscale y\nset xtics rotate by -30\nset grid y\n"
       "plot '" +
           out +
           "/counters.dat' using 2:xtic(1) title '1 thread', '' using 3 title "
           "'2 threads'\n");
}

void halo(const std::vector<Row>& rows, const std::string& out, std::ostream& md) {
  md << "## HALO cycle time (ms per cycle)\n\n"
     << "| benchmark | subjects | threads | ms |\n| --- | ---: | ---: | ---: |\n";
  std::map<std::string, std::ofstream> series;
  for (const auto& r : rows) {
    const auto s = r.name.find("/subjects:");
    const auto t = r.name.find("/threads:");
    if (s == std::string::npos || t == std::string::npos) continue;
    const std::string mode = r.name.find("Full") != std::string::npos ? "full" : "light";
    const long subjects = std::atol(r.name.c_str() + s + 10);
    const int threads = std::atoi(r.name.c_str() + t + 9);
    md << "| " << mode << " | " << subjects << " | " << threads << " | " << num(r.real_ns / 1e6)
       << " |\n";
    const std::string key = mode + "-" + std::to_string(threads);
    auto [it, fresh] = series.try_emplace(key);
    if (fresh) it->second.open(out + "/halo-" + key + ".dat");
    it->second << subjects << ' ' << r.real_ns / 1e6 << '\n';
  }
  for (auto& [k, f] : series) f.close();
  md << "\n![HALO cycle time](halo.png)\n\n";
  std::string p =
      "set logscale xy\nset xlabel 'subjects'\nset ylabel 'ms per cycle'\nset grid\n"
      "set key left top\nplot ";
  bool first = true;
  for (const auto& [k, f] : series) {
    p += (first ? "" : ", ") + std::string("'") + out + "/halo-" + k +
         ".dat' using 1:2 with linespoints lw 2 title '" + k + " thread(s)'";
    first = false;
  }
  if (!series.empty()) plot(out, "halo", p + "\n");
}

// Any other suite (bench_journal, bench_redis, ...): one row per benchmark with its time, rate
// and counters, so that a new suite shows up in the report without code of its own here.
void generic(const std::string& suite, const std::vector<Row>& rows, std::ostream& md) {
  md << "## " << suite
     << "\n\n| benchmark | time | items/s | counters |\n| --- | ---: | ---: | --- |\n";
  for (const auto& r : rows) {
    std::string counters;
    for (const auto& [k, v] : r.counters) {
      if (k == "items_per_second" || k == "repetitions" || k == "repetition_index" ||
          k == "threads" || k == "family_index" || k == "per_family_instance_index")
        continue;
      counters += (counters.empty() ? "" : ", ") + k + "=" + num(v);
    }
    md << "| " << r.name << " | " << num(r.real_ns / 1e6) << " ms | "
       << (r.items_per_second > 0 ? num(r.items_per_second) : std::string("")) << " | " << counters
       << " |\n";
  }
  md << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench-report OUT_DIR RESULT.json...\n";
    return 2;
  }
  const std::string out = argv[1];
  std::ostringstream md;
  md << "# Latest benchmark run\n\nGenerated by `tools/dev bench` (bench-report) from Google "
        "Benchmark JSON; see benchmarks.md for the setup, peers and targets.\n\n";
  try {
    for (int i = 2; i < argc; ++i) {
      const std::string path = argv[i];
      const auto rows = load(path);
      const std::string suite = std::filesystem::path(path).stem().string();
      if (suite == "bench_executor") {
        executor(rows, out, md);
      } else if (suite == "bench_counters") {
        counters(rows, out, md);
      } else if (suite == "bench_halo") {
        halo(rows, out, md);
      } else {
        generic(suite, rows, md);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench-report: " << e.what() << "\n";
    return 2;
  }
  std::ofstream(out + "/latest.md") << md.str();
  std::cout << "bench-report: wrote " << out << "/latest.md\n";
  return 0;
}
