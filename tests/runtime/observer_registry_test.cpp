#include "detail/observer_registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <thread>
#include <vector>

#include "counting_observer.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using octo::detail::ObserverRegistry;

constexpr auto kGenerous = 30s;  // an upper bound for a failing test, never a synchronisation

using Counting = octo_test::CountingObserver;

void emit(const ObserverRegistry& r, int slot) {
  const octo::TaskEvent e{octo::TaskEventKind::kSucceeded, 0, nullptr, 1, 1, {}};
  r.for_each([slot] { return slot; }, [&](octo::Observer& o) { o.on_event(e); });
}

// The observers a reader would call now, in order.
std::vector<octo::Observer*> registered(const ObserverRegistry& r) {
  std::vector<octo::Observer*> out;
  r.for_each([] { return 0; }, [&](octo::Observer& o) { out.push_back(&o); });
  return out;
}

TEST(ObserverRegistry, EveryObserverOnceInOrderAndAddIsIdempotent) {
  ObserverRegistry r(2);
  bool slot_asked = false;
  r.for_each(
      [&] {
        slot_asked = true;
        return 0;
      },
      [](octo::Observer&) { ADD_FAILURE() << "no observer is registered"; });
  EXPECT_FALSE(slot_asked);  // with none, the slot is not even looked up

  Counting a, b;
  r.add(a);
  r.add(b);
  r.add(a);
  EXPECT_EQ(registered(r), (std::vector<octo::Observer*>{&a, &b}));
  emit(r, -1);  // a thread outside the arena
  emit(r, 7);   // a slot out of range is treated as outside too
  EXPECT_EQ(a.calls.load(), 2);
  EXPECT_TRUE(r.remove(a));
  EXPECT_FALSE(r.remove(a));
  emit(r, 0);
  EXPECT_EQ(a.calls.load(), 2);
  EXPECT_EQ(b.calls.load(), 3);
  EXPECT_EQ(r.take_all(), (std::vector<octo::Observer*>{&b}));
  EXPECT_TRUE(registered(r).empty());
}

// remove() must not return while a reader is inside the removed observer, on a pinned slot and
// on the shared-lock path alike.
TEST(ObserverRegistry, RemoveWaitsForACallInProgress) {
  for (const int slot : {0, -1}) {
    SCOPED_TRACE(slot);
    ObserverRegistry r(1);
    struct Blocking : octo::Observer {
      std::latch entered{1};
      std::latch release{1};
      void on_event(const octo::TaskEvent&) noexcept override {
        entered.count_down();
        release.wait();
      }
    } blocking;
    r.add(blocking);
    std::thread reader([&] { emit(r, slot); });
    blocking.entered.wait();
    auto removed = std::async(std::launch::async, [&] { return r.remove(blocking); });
    // Not a synchronisation: remove() returning while the call is held would be the bug.
    EXPECT_EQ(removed.wait_for(50ms), std::future_status::timeout);
    blocking.release.count_down();
    ASSERT_EQ(removed.wait_for(kGenerous), std::future_status::ready);
    EXPECT_TRUE(removed.get());
    reader.join();
  }
}

// Readers on pinned slots and outside the arena emit without pause while observers are added
// and removed; none is ever called once its remove() has returned.
TEST(ObserverRegistry, RemovedObserverIsNeverCalledAgainUnderChurn) {
  constexpr int kSlots = 2;
  ObserverRegistry r(kSlots);
  Counting steady;
  r.add(steady);
  std::atomic<bool> stop{false};
  std::latch started(kSlots + 2);
  std::vector<std::thread> readers;
  for (int slot = -1; slot < kSlots; ++slot) {
    readers.emplace_back([&, slot] {
      started.count_down();
      while (!stop.load(std::memory_order_relaxed)) emit(r, slot);
    });
  }
  started.arrive_and_wait();
  int churned = 0;
  for (int round = 0; round < 300; ++round) {
    auto o = std::make_unique<Counting>();
    r.add(*o);
    const int before = steady.calls.load();
    while (o->calls.load() == 0 && steady.calls.load() - before < 1'000'000) {
      std::this_thread::yield();  // until a reader has used the new set
    }
    ASSERT_TRUE(r.remove(*o));
    o->gone.store(true);
    const int seen_after = o->after_gone.load();
    ASSERT_EQ(seen_after, 0) << "round " << round;
    churned += o->calls.load() > 0;
    o.reset();  // freed: a late call would be a use after free (ASan)
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(churned, 0);
  EXPECT_GT(steady.calls.load(), 0);
}

}  // namespace
