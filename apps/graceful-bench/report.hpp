#pragma once
/// \file
/// Turning a run into what users read: the human table, the --json document, the --plot PNG.

#include <optional>
#include <string>

#include "action.hpp"
#include "load.hpp"
#include "options.hpp"

namespace graceful::bench {

/// Everything the outputs show, computed once from a run.
struct report_input {
  const bench_options& o;
  const run_result& run;
  const std::optional<action_record>& action;
};

/// Total number of requests and of failed ones (everything but ok).
std::uint64_t total_requests(const run_stats& s);
std::uint64_t total_failures(const run_stats& s);

/// The human table and timeline.
std::string human_report(const report_input& in);
/// The --json document (schema described in README.md, section graceful-bench).
std::string json_report(const report_input& in);
/// Draws latency and failures over time with gnuplot into `png`. Returns an error text, or
/// an empty string on success.
std::string write_plot(const report_input& in, const std::string& png);

} // namespace graceful::bench
