// Kills a process running the executor in kSync mode with SIGKILL at a random moment, 30 times
// over one journal, then lets a last run drain it. Every id whose enqueue returned success must
// have completed; nothing may complete that was never enqueued. A quarter of the tasks are
// delayed: those recovered with their due time must complete too, none before it.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kKills = 30;

std::set<std::string> read_ids(const fs::path& p, std::size_t* lines = nullptr) {
  std::set<std::string> ids;
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    ids.insert(line);
    ++n;
  }
  if (lines) *lines = n;
  return ids;
}

// Starts the child with its stdout on a pipe and returns once it has printed its first line
// (after recovery, before it produces), so every kill lands while it works, however slow its
// start (ThreadSanitizer makes it several times slower).
pid_t spawn_ready(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  for (char c = 0; c != '\n';) {
    if (::read(fds[0], &c, 1) != 1) {
      ADD_FAILURE() << "child exited before it was ready";
      break;
    }
  }
  ::close(fds[0]);  // the child prints nothing more
  return pid;
}

TEST(JournalCrash, SigkillThirtyTimesLosesNoAcceptedTask) {
  const fs::path dir = fs::temp_directory_path() / ("octo-crash-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string journal = (dir / "tasks.db").string();
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(5, 150);

  for (int run = 0; run < kKills; ++run) {
    const pid_t pid =
        spawn_ready({OCTO_CRASH_CHILD, journal, dir.string(), std::to_string(run), "produce"});
    // The random moment, counted from the end of recovery: a kill in the middle of the load.
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    // Killed, not exited: an early exit (bad journal, failed enqueue) would hide a bug.
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "run " << run << " ended on its own with status " << status;
  }
  const pid_t pid = spawn_ready({OCTO_CRASH_CHILD, journal, dir.string(), "0", "drain"});
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "drain status " << status;

  std::size_t completions = 0;
  const auto attempted = read_ids(dir / "attempted");
  const auto accepted = read_ids(dir / "accepted");
  const auto completed = read_ids(dir / "completed", &completions);
  ASSERT_GT(accepted.size(), 0u);
  std::size_t lost = 0;
  for (const auto& id : accepted) lost += completed.count(id) == 0;
  EXPECT_EQ(lost, 0u) << "accepted tasks that never completed";
  std::size_t invented = 0;
  for (const auto& id : completed) invented += attempted.count(id) == 0;
  EXPECT_EQ(invented, 0u);
  std::size_t delayed = 0;
  for (const auto& id : accepted) delayed += id.find('@') != std::string::npos;
  EXPECT_GT(delayed, 0u);
  const auto early = read_ids(dir / "early");
  EXPECT_TRUE(early.empty()) << early.size() << " delayed tasks ran before their time, e.g. "
                             << *early.begin();
  // A kill between an enqueue's return and its "accepted" line leaves a task that completes but
  // was never recorded as accepted: at most one per producer (8) per kill.
  EXPECT_LE(completed.size() - accepted.size(), std::size_t{8} * kKills);
  RecordProperty("accepted", static_cast<int>(accepted.size()));
  RecordProperty("completed_distinct", static_cast<int>(completed.size()));
  RecordProperty("duplicate_runs", static_cast<int>(completions - completed.size()));
  std::printf("accepted %zu, completed %zu distinct (%zu runs, %zu re-runs after kills)\n",
              accepted.size(), completed.size(), completions, completions - completed.size());
  fs::remove_all(dir);
}

}  // namespace
