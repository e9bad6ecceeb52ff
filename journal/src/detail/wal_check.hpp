// Reads a SQLite write-ahead log the way SQLite's recovery does (file format: sqlite.org/
// fileformat2.html, "The Write-Ahead Log") to tell what recovery will leave out. SQLite replays
// frames while their salts match the header and their cumulative checksums hold, up to the last
// commit frame, and silently drops the rest: after a torn or damaged write, committed
// transactions after the damage are gone without a word. Frames of this log's generation (its
// salts) after the replayable prefix are that loss; frames with other salts are leftovers of an
// earlier generation (SQLite reuses the file from the start) and are not.
#pragma once

#include <cstdint>
#include <string>

namespace octo::detail {

struct WalCheck {
  std::uint64_t replayable_frames = 0;  // up to and including the last valid commit frame
  std::uint64_t lost_frames = 0;        // of this generation, after those: SQLite drops them
  std::string problem;                  // what was found, empty when nothing is lost
};

// `wal_path` is the journal's "-wal" file; a missing or empty one is fine (nothing to replay).
WalCheck check_wal(const std::string& wal_path);

}  // namespace octo::detail
