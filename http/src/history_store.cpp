#include "halo/http/history_store.hpp"

#include <cerrno>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "halo/http/json.hpp"

namespace halo {

namespace fs = std::filesystem;

namespace detail {

std::deque<nlohmann::json> read_json_lines(std::string_view text, std::size_t keep,
                                           std::uint64_t& corrupt) {
  std::deque<nlohmann::json> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      ++corrupt;
      continue;
    }
    out.push_back(std::move(j));
    if (out.size() > keep) out.pop_front();
  }
  return out;
}

}  // namespace detail

namespace {

// The log's files, oldest first: base.(max-1) ... base.1, base.
std::vector<fs::path> log_files(const fs::path& base, std::size_t max_files) {
  std::vector<fs::path> out;
  for (std::size_t i = max_files - 1; i >= 1; --i)
    out.push_back(base.string() + "." + std::to_string(i));
  out.push_back(base);
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::deque<nlohmann::json> read_log(const fs::path& base, std::size_t max_files, std::size_t keep,
                                    std::uint64_t& corrupt) {
  std::deque<nlohmann::json> out;
  for (const auto& f : log_files(base, max_files)) {
    auto part = detail::read_json_lines(read_file(f), keep, corrupt);
    for (auto& j : part) {
      out.push_back(std::move(j));
      if (out.size() > keep) out.pop_front();
    }
  }
  return out;
}

// Appends `lines` to the log, rotating first when the live file would pass max_bytes.
void append_lines(const fs::path& base, const std::string& lines, const HistoryStoreConfig& c) {
  if (lines.empty()) return;
  std::error_code ec;
  const auto size = fs::exists(base, ec) ? fs::file_size(base, ec) : 0;
  if (!ec && size > 0 && size + lines.size() > c.max_file_bytes) {
    const auto files = log_files(base, c.max_files);  // oldest first
    fs::remove(files.front(), ec);
    for (std::size_t i = 1; i < files.size(); ++i) fs::rename(files[i], files[i - 1], ec);
  }
  std::ofstream out(base, std::ios::binary | std::ios::app);
  out << lines;
  out.flush();
  if (!out)
    throw std::runtime_error("cannot append to " + base.string() + ": " +
                             std::generic_category().message(errno));
}

std::chrono::system_clock::time_point wall_of(std::chrono::nanoseconds state_time,
                                              std::chrono::nanoseconds state_now) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(state_time - state_now);
}

}  // namespace

struct HistoryStore::Gate {
  std::mutex mu;
  HistoryStore* store = nullptr;  // null once the store is going
};

HistoryStore::HistoryStore(Engine& engine, HistoryStoreConfig config)
    : engine_(engine), config_(std::move(config)), gate_(std::make_shared<Gate>()) {
  if (config_.dir.empty()) throw std::invalid_argument("halo::HistoryStoreConfig: dir is empty");
  if (config_.max_files < 1 || config_.max_files > 100)
    throw std::invalid_argument("halo::HistoryStoreConfig: max_files " +
                                std::to_string(config_.max_files) + " is not in 1..100");
  if (config_.max_file_bytes < 4096)
    throw std::invalid_argument("halo::HistoryStoreConfig: max_file_bytes must be >= 4096");
  std::error_code ec;
  fs::create_directories(config_.dir, ec);
  if (ec || !fs::is_directory(config_.dir))
    throw std::runtime_error("halo::HistoryStore: cannot use " + config_.dir.string() +
                             " as a directory: " + (ec ? ec.message() : "not a directory"));

  cycles_ = read_log(config_.dir / "cycles.jsonl", config_.max_files, config_.keep_cycles,
                     status_.corrupt_lines);
  audit_ = read_log(config_.dir / "audit.jsonl", config_.max_files, config_.keep_audit,
                    status_.corrupt_lines);
  for (auto& a : audit_) a["restored"] = true;
  status_.restored_cycles = cycles_.size();
  status_.restored_audit = audit_.size();

  // state.json: silences (wall-clock times) and escalations. A damaged file counts as one
  // corrupt line; what parses is used.
  const std::string state_text = read_file(config_.dir / "state.json");
  if (!state_text.empty()) {
    const auto st = nlohmann::json::parse(state_text, nullptr, false);
    if (st.is_discarded() || !st.is_object()) {
      ++status_.corrupt_lines;
    } else {
      const auto state_now = engine_.state().now();
      const auto wall_now = std::chrono::system_clock::now();
      auto to_state = [&](std::int64_t wall_ms) {
        return state_now + std::chrono::milliseconds(wall_ms) -
               std::chrono::duration_cast<std::chrono::nanoseconds>(wall_now.time_since_epoch());
      };
      for (const auto& s : st.value("silences", nlohmann::json::array())) {
        try {
          Silence sil;
          sil.match.subject_type = s.value("subject_type", "");
          sil.match.subject_id = s.value("subject_id", "");
          sil.match.task_type = s.value("task_type", "");
          sil.reason = s.value("reason", "");
          sil.author = s.value("author", "");
          sil.from = to_state(s.at("from_ms").get<std::int64_t>());
          sil.until = to_state(s.at("until_ms").get<std::int64_t>());
          if (sil.until <= state_now) continue;  // ended while the service was down
          engine_.silence(std::move(sil));
          ++status_.restored_silences;
        } catch (const std::exception&) {
          ++status_.corrupt_lines;
        }
      }
      for (const auto& e : st.value("escalated", nlohmann::json::array())) {
        if (!e.is_object() || !e.value("weak_point", nlohmann::json()).is_string()) {
          ++status_.corrupt_lines;
          continue;
        }
        if (engine_.restore_escalation(e.value("weak_point", ""), e.value("subject_type", ""),
                                       e.value("subject_id", ""), e.value("reason", "")))
          ++status_.restored_escalations;
      }
    }
  }
  // This run's audit numbering starts after what the engine holds now (the restorations above).
  last_audit_seq_ = 0;
  gate_->store = this;
  subscription_ = engine_.subscribe([gate = gate_](const Event& e) {
    if (e.kind != EventKind::kCycleCompleted) return;
    std::lock_guard lock(gate->mu);
    if (gate->store != nullptr) gate->store->write_new();
  });
}

HistoryStore::~HistoryStore() {
  engine_.unsubscribe(subscription_);
  std::lock_guard lock(gate_->mu);
  gate_->store = nullptr;
  write_new();
}

void HistoryStore::flush() {
  std::lock_guard lock(gate_->mu);
  write_new();
}

void HistoryStore::write_new() {
  // Cycles newer than the last one written (history is newest first).
  std::string cycle_lines;
  std::uint64_t cycles = 0;
  const auto history = engine_.history(std::numeric_limits<std::size_t>::max());
  std::size_t fresh = 0;
  while (fresh < history.size() && history[fresh]->id != last_cycle_id_) ++fresh;
  for (std::size_t i = fresh; i-- > 0;) {
    cycle_lines +=
        to_json(*history[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    cycle_lines += '\n';
    ++cycles;
  }
  std::string audit_lines;
  std::uint64_t audits = 0;
  const std::uint64_t appended = engine_.audit().appended();
  std::uint64_t newest = last_audit_seq_;
  if (appended > last_audit_seq_) {
    for (const auto& e : engine_.audit().entries(appended - last_audit_seq_)) {
      if (e.seq <= last_audit_seq_) continue;
      audit_lines += to_json_line(e);
      audit_lines += '\n';
      newest = std::max(newest, e.seq);
      ++audits;
    }
  }
  std::string state;
  {
    nlohmann::json st = {{"silences", nlohmann::json::array()},
                         {"escalated", nlohmann::json::array()}};
    const auto now = engine_.state().now();
    auto ms = [](std::chrono::system_clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    };
    for (const auto& s : engine_.silences()) {
      if (s.fleet) continue;  // the fleet keeps its own: restored as local ones, none would end
      st["silences"].push_back({{"subject_type", s.match.subject_type},
                                {"subject_id", s.match.subject_id},
                                {"task_type", s.match.task_type},
                                {"reason", s.reason},
                                {"author", s.author},
                                {"from_ms", ms(wall_of(s.from, now))},
                                {"until_ms", ms(wall_of(s.until, now))}});
    }
    for (const auto& l : engine_.status().lifecycle)
      if (l.state == WeakPointState::kEscalated)
        st["escalated"].push_back({{"weak_point", l.weak_point},
                                   {"subject_type", l.subject_type},
                                   {"subject_id", l.subject_id},
                                   {"reason", l.reason}});
    state = st.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  try {
    append_lines(config_.dir / "cycles.jsonl", cycle_lines, config_);
    if (!history.empty()) last_cycle_id_ = history.front()->id;
    append_lines(config_.dir / "audit.jsonl", audit_lines, config_);
    last_audit_seq_ = newest;
    const auto tmp = config_.dir / "state.json.tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << state << '\n';
      out.flush();
      if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, config_.dir / "state.json");
    std::lock_guard lock(mu_);
    status_.cycles_written += cycles;
    status_.audit_written += audits;
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    ++status_.write_errors;
    status_.last_error = e.what();
  }
}

std::vector<nlohmann::json> HistoryStore::restored_cycles(std::size_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<nlohmann::json> out;
  for (auto it = cycles_.rbegin(); it != cycles_.rend() && out.size() < limit; ++it)
    out.push_back(*it);
  return out;
}

std::vector<nlohmann::json> HistoryStore::restored_audit(std::size_t limit) const {
  std::lock_guard lock(mu_);
  const std::size_t n = std::min(limit, audit_.size());
  return {audit_.end() - static_cast<std::ptrdiff_t>(n), audit_.end()};
}

HistoryStoreStatus HistoryStore::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

}  // namespace halo
