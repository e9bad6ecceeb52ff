// The Prometheus ecosystem's real servers for tests (Debian packages prometheus and
// prometheus-alertmanager), each on a free 127.0.0.1 port in a temp dir (service_process.hpp).
#pragma once

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "service_process.hpp"

namespace octo_test {

inline constexpr const char* kAlertmanager = "prometheus-alertmanager";
inline constexpr const char* kPrometheus = "prometheus";
inline constexpr const char* kPromtool = "promtool";

// An Alertmanager that routes everything to a receiver that sends nothing; on `port`, or a
// free one.
inline std::unique_ptr<ServiceProcess> start_alertmanager(int port = 0) {
  return std::make_unique<ServiceProcess>(
      "alertmanager",
      [](const std::string& dir, int p) {
        return std::vector<std::string>{kAlertmanager,
                                        "--config.file=" + dir + "/alertmanager.yml",
                                        "--storage.path=" + dir + "/data",
                                        "--web.listen-address=127.0.0.1:" + std::to_string(p),
                                        "--cluster.listen-address=",
                                        "--log.level=warn"};
      },
      std::vector<std::pair<std::string, std::string>>{
          {"alertmanager.yml", "route:\n  receiver: none\nreceivers:\n  - name: none\n"}},
      "/-/ready", port);
}

// Alertmanager's active alerts named HaloWeakPoint.
inline nlohmann::json active_halo_alerts(const ServiceProcess& am) {
  auto r = am.client().Get("/api/v2/alerts?active=true&filter=alertname%3D%22HaloWeakPoint%22");
  if (!r || r->status != 200) return nlohmann::json::array();
  return nlohmann::json::parse(r->body);
}

// A Prometheus scraping `target` ("127.0.0.1:PORT") every second.
inline std::unique_ptr<ServiceProcess> start_prometheus(const std::string& target) {
  const std::string config =
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      "scrape_configs:\n  - job_name: octohalo\n    static_configs:\n      - targets: ['" +
      target + "']\n";
  return std::make_unique<ServiceProcess>(
      "prometheus",
      [](const std::string& dir, int p) {
        return std::vector<std::string>{kPrometheus, "--config.file=" + dir + "/prometheus.yml",
                                        "--storage.tsdb.path=" + dir + "/data",
                                        "--web.listen-address=127.0.0.1:" + std::to_string(p),
                                        "--log.level=warn"};
      },
      std::vector<std::pair<std::string, std::string>>{{"prometheus.yml", config}}, "/-/ready");
}

// The result vector of an instant query (empty on any failure).
inline nlohmann::json query(const ServiceProcess& prometheus, const std::string& promql) {
  auto r = prometheus.client().Get("/api/v1/query", httplib::Params{{"query", promql}},
                                   httplib::Headers{});
  if (!r || r->status != 200) return nlohmann::json::array();
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return nlohmann::json::array();
  return j["data"]["result"];
}

// `promtool check metrics` on an exposition: its exit status and what it printed.
struct PromtoolResult {
  int status = -1;
  std::string output;
};
inline PromtoolResult promtool_check(const std::string& exposition,
                                     const std::string& scratch_file) {
  {
    std::FILE* f = std::fopen(scratch_file.c_str(), "w");
    if (f == nullptr) return {};
    std::fwrite(exposition.data(), 1, exposition.size(), f);
    std::fclose(f);
  }
  PromtoolResult r;
  std::FILE* p = ::popen(("promtool check metrics < " + scratch_file + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) r.output += buf;
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::remove(scratch_file.c_str());
  return r;
}

}  // namespace octo_test
