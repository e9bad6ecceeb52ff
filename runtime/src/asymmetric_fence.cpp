#include "detail/asymmetric_fence.hpp"

#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

namespace octo::detail {

namespace {

bool membarrier_ready() noexcept {
  // Registration once per process; the query says whether the kernel has the command.
  static const bool ready = [] {
    const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ready;
}

// Without membarrier: changing a touched page's protection shoots down its TLB entry on every CPU
// that runs a thread of this process, and the interrupt is a full barrier there.
void mprotect_fence() noexcept {
  static std::mutex mu;
  static void* page = [] {
    void* p = ::mmap(nullptr, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)),
                     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (page == nullptr) return;
  const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::lock_guard lock(mu);
  ::mprotect(page, size, PROT_READ | PROT_WRITE);
  *static_cast<volatile char*>(page) = 1;  // the page must be mapped in the TLBs to be shot down
  ::mprotect(page, size, PROT_READ);
}

}  // namespace

void heavy_fence() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (membarrier_ready() && ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
    return;
  mprotect_fence();
}

}  // namespace octo::detail
