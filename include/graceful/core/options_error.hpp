#pragma once
/// \file
/// What a layer's validate(options) found wrong: every layer checks its options struct once,
/// in validate(), and names the field at fault. Constructors that cannot return it
/// (http::server, lifecycle::lifecycle) throw std::invalid_argument with its message: a bad
/// options struct is a programming error there, and a program whose options come from flags
/// or files calls validate() first and reports the message itself (graceful-server does);
/// upgrader::create, a factory, logs it and returns errc invalid_argument.

#include <string>

namespace graceful {

/// The first bad field of an options struct.
struct options_error {
  std::string field;    ///< the member at fault ("shutdown_timeout")
  std::string message;  ///< a sentence naming it ("lifecycle::options::shutdown_timeout must be positive")
};

} // namespace graceful
