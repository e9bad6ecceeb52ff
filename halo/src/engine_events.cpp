// Events to subscribers: queued by the rails (under their locks, so only a push here) and
// delivered on the engine's event thread.
#include <exception>

#include "detail/engine_internals.hpp"
#include "halo/engine.hpp"
#include "octo/detail/thread_name.hpp"

namespace halo {

using octo::detail::LockGuard;
using octo::detail::UniqueLock;

void Engine::emit(Event event) {
  {
    LockGuard lock(events_->mu);
    if (events_->subscribers.empty() || events_->stopping) return;
    if (events_->queue.size() >= kEventQueue) {
      ++events_->dropped;
      return;
    }
    events_->queue.push_back(std::move(event));
  }
  events_->cv.notify_one();
}

void Engine::emit(std::vector<Event>& batch) {
  if (batch.empty()) return;
  {
    LockGuard lock(events_->mu);
    if (events_->subscribers.empty() || events_->stopping) return;
    for (Event& e : batch) {
      if (events_->queue.size() >= kEventQueue) {
        events_->dropped += batch.size() - static_cast<std::size_t>(&e - batch.data());
        break;
      }
      events_->queue.push_back(std::move(e));
    }
  }
  batch.clear();
  events_->cv.notify_one();
}

bool Engine::events_wanted() const noexcept {
  return events_->active.load(std::memory_order_relaxed);
}

std::uint64_t Engine::subscribe(EventHandler handler) {
  if (!handler) throw std::invalid_argument("halo::Engine::subscribe: empty handler");
  LockGuard lock(events_->mu);
  const std::uint64_t id = events_->next_id++;
  events_->subscribers.emplace_back(id, std::make_shared<const EventHandler>(std::move(handler)));
  events_->active.store(true, std::memory_order_relaxed);
  if (!events_->started && !events_->stopping) {
    events_->started = true;
    events_->thread = std::thread([e = events_.get()] {
      octo::detail::name_this_thread("halo-events");
      e->deliver_loop();
    });
  }
  return id;
}

bool Engine::unsubscribe(std::uint64_t subscription_id) {
  LockGuard lock(events_->mu);
  const bool removed = std::erase_if(events_->subscribers, [&](const auto& s) {
                         return s.first == subscription_id;
                       }) != 0;
  events_->active.store(!events_->subscribers.empty(), std::memory_order_relaxed);
  return removed;
}

void Engine::Events::deliver_loop() {
  UniqueLock lock(mu);
  for (;;) {
    while (!stopping && queue.empty()) cv.wait(lock.native());
    if (queue.empty()) return;  // stopping, and everything queued was delivered
    Event e = std::move(queue.front());
    queue.pop_front();
    const auto targets = subscribers;
    lock.unlock();
    for (const auto& [id, handler] : targets) {
      try {
        (*handler)(e);
      } catch (...) {
        // Counted before the next subscriber hears the event.
        LockGuard count(mu);
        ++failed;
      }
    }
    lock.lock();
    ++delivered;
  }
}

void Engine::Events::stop() {
  {
    LockGuard lock(mu);
    stopping = true;
  }
  cv.notify_all();
  if (thread.joinable()) thread.join();
}

}  // namespace halo
