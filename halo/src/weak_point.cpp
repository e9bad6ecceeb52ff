#include "halo/weak_point.hpp"

#include "detail/field_count.hpp"
#include "detail/grouping.hpp"
#include "detail/parallel.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace halo {

bool WeakPoint::has_rule(std::string_view rule) const noexcept {
  for (const Issue& i : issues)
    if (i.rule == rule) return true;
  return false;
}

std::uint64_t fingerprint(std::string_view subject_type, std::string_view subject_id) noexcept {
  const XXH64_hash_t seed = XXH3_64bits(subject_type.data(), subject_type.size());
  return XXH3_64bits_withSeed(subject_id.data(), subject_id.size(), seed);
}

namespace {

// "wp-" and the fingerprint as 16 lower-case hex digits, without snprintf (one per weak point),
// written over `id` so that a reused string keeps its buffer.
void write_weak_point_id(std::string& id, std::uint64_t fp) {
  constexpr char kHex[] = "0123456789abcdef";
  id.resize(19);
  id[0] = 'w';
  id[1] = 'p';
  id[2] = '-';
  for (std::size_t i = 18; i >= 3; --i, fp >>= 4) id[i] = kHex[fp & 0xf];
}

}  // namespace

std::string weak_point_id(std::uint64_t fingerprint) {
  std::string id;
  write_weak_point_id(id, fingerprint);
  return id;
}

std::vector<WeakPoint> group_weak_points(const std::vector<AnalyzerResult>& results) {
  return detail::group_weak_points(results, true);
}

static_assert(detail::field_count<WeakPoint>() == 13,
              "WeakPoint gained a field: set it in group_weak_points below, which writes weak "
              "points over recycled ones");

std::vector<WeakPoint> detail::group_weak_points(const std::vector<AnalyzerResult>& results,
                                                 bool sorted, std::vector<WeakPoint> storage) {
  struct Ref {
    std::uint64_t fp;
    const Issue* issue;
  };
  std::vector<Ref> refs;
  for (const auto& r : results)
    for (const Issue& i : r.issues)
      if (i.severity >= Level::kMedium) refs.push_back({0, &i});
  detail::parallel_ranges(refs.size(), 1024, [&](std::size_t b, std::size_t e) {
    for (std::size_t k = b; k != e; ++k)
      refs[k].fp = fingerprint(refs[k].issue->subject_type, refs[k].issue->subject_id);
  });
  // Equal fingerprints of different subjects (a 64-bit collision) still form separate groups.
  auto less = [](const Ref& a, const Ref& b) {
    if (a.fp != b.fp) return a.fp < b.fp;
    if (a.issue->subject_type != b.issue->subject_type)
      return a.issue->subject_type < b.issue->subject_type;
    if (a.issue->subject_id != b.issue->subject_id)
      return a.issue->subject_id < b.issue->subject_id;
    return a.issue->id < b.issue->id;
  };
  detail::parallel_sort(refs.begin(), refs.end(), less);

  std::vector<std::pair<std::size_t, std::size_t>> groups;  // [begin, end) into refs
  for (std::size_t k = 0; k < refs.size();) {
    std::size_t e = k + 1;
    while (e < refs.size() && refs[e].fp == refs[k].fp &&
           refs[e].issue->subject_type == refs[k].issue->subject_type &&
           refs[e].issue->subject_id == refs[k].issue->subject_id)
      ++e;
    groups.emplace_back(k, e);
    k = e;
  }

  // Every field is assigned over what `storage` held: a string or vector assigned over keeps its
  // buffer, so a steady-state cycle allocates (and frees) little here.
  std::vector<WeakPoint> out = std::move(storage);
  out.resize(groups.size());
  detail::parallel_ranges(groups.size(), 256, [&](std::size_t gb, std::size_t ge) {
    for (std::size_t g = gb; g != ge; ++g) {
      WeakPoint& wp = out[g];
      const auto [b, e] = groups[g];
      const Issue& first = *refs[b].issue;
      wp.fingerprint = refs[b].fp;
      write_weak_point_id(wp.id, wp.fingerprint);
      wp.subject_type = first.subject_type;
      wp.subject_id = first.subject_id;
      wp.base_severity = Level::kMedium;
      wp.issues.resize(e - b);
      for (std::size_t k = b; k < e; ++k) {
        wp.issues[k - b] = *refs[k].issue;
        wp.base_severity = std::max(wp.base_severity, refs[k].issue->severity);
      }
      wp.severity = wp.base_severity;
      wp.summary = first.description;
      if (e - b > 1) wp.summary.append(" (+").append(std::to_string(e - b - 1)).append(" more)");
      wp.cycles_seen = 1;
      wp.escalation = 0;
      wp.state = WeakPointState::kOpen;
      wp.flags = 0;
      wp.step = 0;
    }
  });
  if (!sorted) return out;
  detail::parallel_sort(out.begin(), out.end(), detail::worse_first);
  return out;
}

}  // namespace halo
