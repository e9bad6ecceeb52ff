// octo/context.hpp — the services a handler needs, given once when the executor is built.
//
// A small type-keyed registry, the counterpart of the original OctopusContext: the embedding
// service provides its clients (a deployer, a secrets store, ...) and handlers look them up by
// type.
//
//   octo::Context ctx;
//   ctx.provide(std::make_shared<Deployer>(...));
//   ... in a handler: ctx.get<Deployer>().rollout(task.payload);
//
// Thread safety: provide() before the executor starts; get() from any thread afterwards.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <unordered_map>

namespace octo {

class Context {
 public:
  // Registers (or replaces) the service of type T.
  template <class T>
  Context& provide(std::shared_ptr<T> service) {
    services_[std::type_index(typeid(T))] = std::move(service);
    return *this;
  }

  // The service of type T; throws std::logic_error naming the type when none was provided.
  template <class T>
  T& get() const {
    auto it = services_.find(std::type_index(typeid(T)));
    if (it == services_.end()) {
      throw std::logic_error(std::string("octo::Context: no service of type ") + typeid(T).name() +
                             " was provided");
    }
    return *static_cast<T*>(it->second.get());
  }

  template <class T>
  bool has() const noexcept {
    return services_.count(std::type_index(typeid(T))) != 0;
  }

 private:
  std::unordered_map<std::type_index, std::shared_ptr<void>> services_;
};

}  // namespace octo
