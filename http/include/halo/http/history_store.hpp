// halo/http/history_store.hpp — HALO's cycle history and audit log on disk, so that /cycles and
// /audit (and the engine's silences and escalations) survive a restart of the service.
//
// In `dir`: cycles.jsonl and audit.jsonl (one JSON object per line: the /cycles and /audit forms),
// each rotated past max_file_bytes to .1 ... .max_files-1 (the oldest dropped), and state.json
// (active and scheduled silences, escalated weak points), replaced atomically. Written from the
// engine's event thread after each cycle (and at destruction): a cycle never waits for the
// disk. At construction the files are read back: the newest `keep_cycles` cycles and
// `keep_audit` audit entries are kept to be served after this run's own, silences are re-added
// (times kept in wall-clock terms) and escalations restored (Engine::restore_escalation). A line
// that is not a JSON object (a torn write, a disk error) is skipped and counted, never fatal.
// A write that fails is counted and retried with the next cycle. Thread-safe.
//
//   halo::HistoryStore store(engine, {.dir = "/var/lib/shop/halo"});
//   halo::HttpServer http({.token = t, .history = &store}, engine, &executor, &*loop);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "halo/engine.hpp"

namespace halo {

struct HistoryStoreConfig {
  std::filesystem::path dir{};  // created when missing; throws std::invalid_argument when empty
  std::size_t max_file_bytes = std::size_t{16} * 1024 * 1024;
  std::size_t max_files = 4;      // the live file and three rotated ones, per log
  std::size_t keep_cycles = 100;  // read back at start (at most)
  std::size_t keep_audit = 10'000;
};

struct HistoryStoreStatus {
  std::size_t restored_cycles = 0;
  std::size_t restored_audit = 0;
  std::size_t restored_silences = 0;
  std::size_t restored_escalations = 0;
  std::uint64_t corrupt_lines = 0;  // skipped at start
  std::uint64_t cycles_written = 0;
  std::uint64_t audit_written = 0;
  std::uint64_t write_errors = 0;
  std::string last_error{};
};

class HistoryStore {
 public:
  // Reads back what `config.dir` holds into `engine` (see the file comment), then subscribes.
  // Throws std::invalid_argument for a bad config, std::runtime_error naming the path when the
  // directory cannot be created or read. The engine must outlive the store.
  HistoryStore(Engine& engine, HistoryStoreConfig config);
  ~HistoryStore();
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  // What earlier runs left: cycles newest first, audit entries oldest first (the JSON forms).
  std::vector<nlohmann::json> restored_cycles(std::size_t limit) const;
  std::vector<nlohmann::json> restored_audit(std::size_t limit) const;
  HistoryStoreStatus status() const;
  // Writes what is new now (what the store does after each cycle).
  void flush();

 private:
  void write_new();

  Engine& engine_;
  const HistoryStoreConfig config_;
  mutable std::mutex mu_;
  std::deque<nlohmann::json> cycles_;  // restored, oldest first
  std::deque<nlohmann::json> audit_;
  HistoryStoreStatus status_;
  std::string last_cycle_id_;         // the newest cycle written
  std::uint64_t last_audit_seq_ = 0;  // the newest audit entry written (this run's numbering)
  std::uint64_t subscription_ = 0;
  struct Gate;
  std::shared_ptr<Gate> gate_;
};

namespace detail {
// The JSON objects among `text`'s lines (the newest `keep`, oldest first); `corrupt` counts the
// lines that are not (empty lines are not counted). What the store reads back; fuzzed.
std::deque<nlohmann::json> read_json_lines(std::string_view text, std::size_t keep,
                                           std::uint64_t& corrupt);
}  // namespace detail

}  // namespace halo
