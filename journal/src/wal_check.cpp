#include "detail/wal_check.hpp"

#include <array>
#include <fstream>
#include <vector>

namespace octo::detail {

namespace {

std::uint32_t be32(const unsigned char* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// SQLite's WAL checksum over `n` bytes (a multiple of 8), continuing from (s1, s2); `big` when
// the log's magic says the words are big-endian.
void checksum(const unsigned char* p, std::size_t n, bool big, std::uint32_t& s1,
              std::uint32_t& s2) noexcept {
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint32_t x0, x1;
    if (big) {
      x0 = be32(p + i);
      x1 = be32(p + i + 4);
    } else {
      x0 = std::uint32_t{p[i]} | (std::uint32_t{p[i + 1]} << 8) | (std::uint32_t{p[i + 2]} << 16) |
           (std::uint32_t{p[i + 3]} << 24);
      x1 = std::uint32_t{p[i + 4]} | (std::uint32_t{p[i + 5]} << 8) |
           (std::uint32_t{p[i + 6]} << 16) | (std::uint32_t{p[i + 7]} << 24);
    }
    s1 += x0 + s2;
    s2 += x1 + s1;
  }
}

}  // namespace

WalCheck check_wal(const std::string& wal_path) {
  WalCheck out;
  std::ifstream in(wal_path, std::ios::binary);
  if (!in) return out;  // no log: nothing to replay
  std::array<unsigned char, 32> header{};
  if (!in.read(reinterpret_cast<char*>(header.data()), header.size())) return out;
  const std::uint32_t magic = be32(header.data());
  if (magic != 0x377f0682 && magic != 0x377f0683) {
    out.problem = "the write-ahead log has no valid header; SQLite ignores it whole";
    return out;
  }
  const bool big = (magic & 1) != 0;
  const std::uint32_t page = be32(header.data() + 8);
  if (page < 512 || page > 65536 || (page & (page - 1)) != 0) {
    out.problem = "the write-ahead log's page size " + std::to_string(page) + " is not valid";
    return out;
  }
  const std::uint32_t salt1 = be32(header.data() + 16), salt2 = be32(header.data() + 20);
  std::uint32_t s1 = 0, s2 = 0;
  checksum(header.data(), 24, big, s1, s2);
  if (s1 != be32(header.data() + 24) || s2 != be32(header.data() + 28)) {
    out.problem = "the write-ahead log's header checksum does not match; SQLite ignores it whole";
    return out;
  }
  std::vector<unsigned char> frame(24 + page);
  std::uint64_t index = 0, last_commit = 0;
  bool replaying = true;
  while (
      in.read(reinterpret_cast<char*>(frame.data()), static_cast<std::streamsize>(frame.size()))) {
    ++index;
    const bool ours = be32(frame.data() + 8) == salt1 && be32(frame.data() + 12) == salt2;
    if (replaying) {
      std::uint32_t c1 = s1, c2 = s2;
      checksum(frame.data(), 8, big, c1, c2);
      checksum(frame.data() + 24, page, big, c1, c2);
      if (ours && c1 == be32(frame.data() + 16) && c2 == be32(frame.data() + 20)) {
        s1 = c1;
        s2 = c2;
        if (be32(frame.data() + 4) != 0) last_commit = index;  // a commit frame
        continue;
      }
      replaying = false;
      out.replayable_frames = last_commit;
      // A frame of this generation that fails its checksum is damage: it, and the frames of its
      // transaction before it, are lost. A frame of another generation is where the log ends.
      out.lost_frames = ours ? index - last_commit : 0;
      continue;
    }
    if (ours) ++out.lost_frames;
  }
  if (replaying) {
    out.replayable_frames = last_commit;
    // Frames after the last commit of an intact log are a transaction that never committed.
    return out;
  }
  if (out.lost_frames != 0) {
    out.problem = "the write-ahead log is damaged after frame " + std::to_string(last_commit) +
                  ": " + std::to_string(out.lost_frames) +
                  " later frames of it cannot be replayed, so commits they held (accepted tasks, "
                  "completions) are lost";
  }
  return out;
}

}  // namespace octo::detail
