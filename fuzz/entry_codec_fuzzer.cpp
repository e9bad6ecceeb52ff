// The Redis stream entry decoder over arbitrary fields: it refuses with a reason or returns a
// task whose every value is in range, and a decoded task encodes back to the same task.
#include <cstdlib>

#include "detail/entry_codec.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parts = octohalo_fuzz::split_nul(data, size);
  const std::string_view id = parts.front();
  const std::span<const std::string_view> fields(parts.data() + 1, parts.size() - 1);
  const auto decoded = octo::detail::decode_task(fields, id);
  if (!decoded.task) {
    if (decoded.error.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  const octo::Task& t = *decoded.task;
  if (static_cast<unsigned>(t.priority) >= octo::kPriorityCount) std::abort();
  const auto encoded = octo::detail::encode_task(t);
  std::vector<std::string_view> again(encoded.begin(), encoded.end());
  const auto round = octo::detail::decode_task(again, id);
  if (!round.task || round.task->type != t.type || round.task->payload != t.payload ||
      round.task->priority != t.priority || round.task->max_attempts != t.max_attempts ||
      round.task->target_agents != t.target_agents || round.task->key != t.key ||
      round.task->created != t.created || round.task->deadline != t.deadline ||
      round.task->run_at != t.run_at || round.task->unique.empty() != t.unique.empty())
    std::abort();
  if (!t.unique.empty()) {
    // A decoded claim is one any executor accepts: a key and a positive TTL.
    if (t.unique->key.empty() || t.unique->ttl.count() <= 0) std::abort();
    if (round.task->unique->key != t.unique->key || round.task->unique->ttl != t.unique->ttl ||
        round.task->unique->scope != t.unique->scope)
      std::abort();
  }
  return 0;
}
