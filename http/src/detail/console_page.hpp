// The operator console (GET / and /ui): http/console/console.html, compiled into the library by
// CMake (console_page.cpp is generated from console_page.cpp.in), so the page needs no network
// and no npm at build or run time.
#pragma once

#include <string_view>

namespace halo::detail {

std::string_view console_page() noexcept;

}  // namespace halo::detail
