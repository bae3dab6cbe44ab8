#pragma once
/// \file
/// `result<T>`: a value or a `std::error_code`, used at every API edge where the
/// environment can make an operation fail (sockets, files, processes).

#include <system_error>
#include <boost/outcome/std_result.hpp>

namespace graceful {

/// A T or a std::error_code. `value()` throws std::system_error when it holds an error.
template <class T>
using result = boost::outcome_v2::std_result<T>;

/// Success for result<void>.
inline auto ok() { return boost::outcome_v2::success(); }

} // namespace graceful
