#include "report.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>

#include <fmt/format.h>

#include <graceful/core/duration.hpp>

extern char** environ;

namespace graceful::bench {

namespace {

using std::chrono::duration;
using std::chrono::nanoseconds;

double seconds_of(nanoseconds d) { return duration<double>(d).count(); }
double ms(std::uint64_t us) { return double(us) / 1000.0; }

/// The longest stretch with no successful response, from the 1 ms bitmap, from the first
/// success to the end of the load (connection warm-up before the first response is not an
/// outage; a server that never comes back is); the whole run when nothing succeeded.
struct gap {
  double length_ms = 0;
  double from_s = 0;
};
gap longest_gap(const run_stats& s, nanoseconds load_end) {
  const auto end_ms = static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::milliseconds>(load_end).count());
  const std::size_t bits = s.success_ms.size() * 64;
  auto hit = [&](std::size_t i) { return (s.success_ms[i / 64] >> (i % 64)) & 1u; };
  std::size_t first = 0, last = std::min(end_ms, bits);
  while (first < last && !hit(first)) ++first;
  if (first == last) return {double(last), 0.0};
  const std::size_t limit = last;
  gap best;
  std::size_t run_start = 0, run = 0;
  for (std::size_t i = first; i < limit; ++i) {
    if (hit(i)) {
      run = 0;
      continue;
    }
    if (run == 0) run_start = i;
    ++run;
    if (double(run) > best.length_ms) {
      best.length_ms = double(run);
      best.from_s = double(run_start) / 1000.0;
    }
  }
  return best;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += c;
    }
  }
  return out + "\"";
}

template <class H> std::string json_latency(const H& h) {
  return fmt::format(R"({{"count": {}, "p50": {:.3f}, "p90": {:.3f}, "p99": {:.3f}, "p99_9": {:.3f}, "max": {:.3f}, "mean": {:.3f}}})",
                     h.count(), ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
                     ms(h.quantile(0.999)), ms(h.max()), h.mean() / 1000.0);
}

std::string json_failures(const outcome_counts& c) {
  std::uint64_t total = 0;
  for (std::size_t i = 1; i < outcome_count; ++i) total += c[i];
  std::string out = fmt::format(R"({{"total": {})", total);
  for (std::size_t i = 1; i < outcome_count; ++i)
    out += fmt::format(R"(, "{}": {})", outcome_key(static_cast<outcome>(i)), c[i]);
  return out + "}";
}

std::uint64_t sum(const outcome_counts& c) {
  std::uint64_t t = 0;
  for (auto v : c) t += v;
  return t;
}

std::size_t timeline_seconds(const report_input& in) {
  // An interrupted run (SIGINT) ends before -d: no empty seconds after it.
  const auto n = static_cast<std::size_t>(std::ceil(std::min(seconds_of(in.o.duration), seconds_of(in.run.load_end))));
  return std::min(std::max<std::size_t>(n, 1), in.run.stats.seconds.size());
}

std::string mode_text(const bench_options& o) {
  std::string loop = o.rate    ? fmt::format("open loop at {:g} req/s", *o.rate)
                     : o.think ? fmt::format("closed loop, think {}", format_duration(*o.think))
                               : "closed loop";
  if (o.h2) return fmt::format("{}, HTTP/2 (h2c), {} stream{} per connection", loop, o.streams, o.streams == 1 ? "" : "s");
  return fmt::format("{}, {}{}", loop, o.close ? "new connection per request" : "keep-alive",
                     o.strict && !o.close ? " (strict: idle connections reused unchecked)" : "");
}

std::string json_reconnects(const connection_counts& c) {
  std::string out = fmt::format(R"({{"total": {})", c.reconnects_total());
  for (std::size_t i = 0; i < reconnect_cause_count; ++i)
    out += fmt::format(R"(, "{}": {})", reconnect_key(static_cast<reconnect_cause>(i)), c.reconnects[i]);
  return out + "}";
}

std::string json_connections(const connection_counts& c) {
  return fmt::format(R"({{"opened": {}, "reconnects": {}, "retried_streams": {}}})", c.opened, json_reconnects(c),
                     c.retried_streams);
}

} // namespace

std::uint64_t total_requests(const run_stats& s) { return sum(s.counts); }
std::uint64_t total_failures(const run_stats& s) { return sum(s.counts) - s.counts[0]; }

std::string human_report(const report_input& in) {
  const auto& s = in.run.stats;
  const auto requests = total_requests(s);
  const auto failures = total_failures(s);
  const double elapsed = seconds_of(in.run.load_end);
  std::string out;
  out += fmt::format("graceful-bench {}\n  {} connections, {} threads, {}, {}\n", in.o.url,
                     in.o.connections, in.run.threads, format_duration(in.o.duration), mode_text(in.o));
  if (in.action) {
    const auto& a = *in.action;
    out += fmt::format("  action at {}: {}\n", format_duration(a.at), a.command);
    if (!a.error.empty()) out += fmt::format("    {}\n", a.error);
    else
      out += fmt::format("    started {:.3f} s, ended {}, exit {}\n", a.started ? seconds_of(*a.started) : 0.0,
                         a.ended ? fmt::format("{:.3f} s", seconds_of(*a.ended)) : "-",
                         a.exit_code ? std::to_string(*a.exit_code) : "-");
  }
  out += fmt::format("\n  {:<24}{:>12}   {:.1f} req/s over {:.3f} s\n", "requests", requests,
                     elapsed > 0 ? double(requests) / elapsed : 0.0, elapsed);
  out += fmt::format("  {:<24}{:>12}\n", "ok", s.counts[0]);
  out += fmt::format("  {:<24}{:>12}\n", "failures", failures);
  for (std::size_t i = 1; i < outcome_count; ++i) {
    out += fmt::format("    {:<22}{:>12}", outcome_label(static_cast<outcome>(i)), s.counts[i]);
    if (static_cast<outcome>(i) == outcome::http_error && s.counts[i] > 0) {
      std::string codes;
      for (std::size_t c = 400; c < s.by_status.size(); ++c)
        if (s.by_status[c]) codes += fmt::format("{}{}: {}", codes.empty() ? "" : ", ", c, s.by_status[c]);
      out += "   (" + codes + ")";
    }
    out += "\n";
  }
  out += fmt::format("\n  {:<24}{:>12}\n", "connections opened", s.connections.opened);
  out += fmt::format("  {:<24}{:>12}   (a new connection replacing one; not failures)\n", "reconnects",
                     s.connections.reconnects_total());
  for (std::size_t i = 0; i < reconnect_cause_count; ++i)
    out += fmt::format("    {:<22}{:>12}\n", reconnect_label(static_cast<reconnect_cause>(i)), s.connections.reconnects[i]);
  if (in.o.h2)
    out += fmt::format("  {:<24}{:>12}   (not processed by the server, sent again; not failures)\n",
                       "streams retried", s.connections.retried_streams);
  auto lat_row = [&](std::string_view name, const auto& h) {
    return fmt::format("  {:<16}{:>10.3f}{:>10.3f}{:>10.3f}{:>10.3f}{:>10.3f}{:>10}\n", name, ms(h.quantile(0.5)),
                       ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max()), h.count());
  };
  out += fmt::format("\n  {:<16}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "latency (ms)", "p50", "p90", "p99",
                     "p99.9", "max", "responses");
  out += lat_row("overall", s.latency);
  if (in.action) {
    out += lat_row("around action", s.window_latency);
    out += fmt::format("  requests sent within 0.5 s of the action: {}, failed: {}\n", sum(s.window_counts),
                       sum(s.window_counts) - s.window_counts[0]);
  }
  const gap g = longest_gap(s, in.run.load_end);
  out += fmt::format("  longest time without a successful response: {:.0f} ms (from {:.3f} s)\n", g.length_ms,
                     g.from_s);

  out += fmt::format("\n  timeline (requests by the second they were sent)\n  {:>6}{:>10}{:>10}{:>9}{:>10}{:>10}{:>10}{:>11}{:>11}\n",
                     "second", "requests", "ok", "failed", "p50 ms", "p99 ms", "max ms", "new conns", "reconnects");
  for (std::size_t i = 0; i < timeline_seconds(in); ++i) {
    const auto& sec = s.seconds[i];
    const auto n = sum(sec.counts);
    out += fmt::format("  {:>6}{:>10}{:>10}{:>9}{:>10.3f}{:>10.3f}{:>10.3f}{:>11}{:>11}\n", i, n, sec.counts[0],
                       n - sec.counts[0], ms(sec.latency.quantile(0.5)), ms(sec.latency.quantile(0.99)),
                       ms(sec.latency.max()), sec.connections.opened, sec.connections.reconnects_total());
  }
  out += failures == 0 ? "\n  result: no request failed\n" : fmt::format("\n  result: {} of {} requests failed\n", failures, requests);
  return out;
}

std::string json_report(const report_input& in) {
  const auto& s = in.run.stats;
  const auto requests = total_requests(s);
  const double elapsed = seconds_of(in.run.load_end);
  const auto wall_start = std::chrono::system_clock::now() -
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(clock::now() - in.run.start);
  std::string out = "{\n";
  out += R"(  "tool": "graceful-bench",)" "\n";
  // Schema 2 = schema 1 plus options.think_s/strict, "connections" and the timeline's
  // connections_opened/reconnects; every schema 1 field is kept. The failure classes count what a
  // careful pooled client loses (--strict: the naive count schema 1 reported).
  out += R"(  "schema": 2,)" "\n";
  out += fmt::format("  \"url\": {},\n", json_string(in.o.url));
  out += fmt::format(
      "  \"options\": {{\"connections\": {}, \"threads\": {}, \"duration_s\": {:.3f}, \"rate\": {}, "
      "\"keep_alive\": {}, \"method\": {}, \"body_size\": {}, \"timeout_s\": {:.3f}, \"fail_pause_s\": {:.3f}, "
      "\"think_s\": {}, \"strict\": {}}},\n",
      in.o.connections, in.run.threads, seconds_of(in.o.duration), in.o.rate ? fmt::format("{:g}", *in.o.rate) : "null",
      in.o.close ? "false" : "true", json_string(in.o.method), in.o.body_size, seconds_of(in.o.timeout),
      seconds_of(in.o.fail_pause), in.o.think ? fmt::format("{:.3f}", seconds_of(*in.o.think)) : "null",
      in.o.strict ? "true" : "false");
  out += fmt::format("  \"start_unix_s\": {:.3f},\n",
                     duration<double>(wall_start.time_since_epoch()).count());
  out += fmt::format("  \"elapsed_s\": {:.3f},\n", elapsed);
  out += fmt::format("  \"requests\": {},\n", requests);
  out += fmt::format("  \"rps\": {:.1f},\n", elapsed > 0 ? double(requests) / elapsed : 0.0);
  out += fmt::format("  \"ok\": {},\n", s.counts[0]);
  out += fmt::format("  \"failures\": {},\n", json_failures(s.counts));
  out += fmt::format("  \"connections\": {},\n", json_connections(s.connections));
  std::string codes;
  for (std::size_t c = 0; c < s.by_status.size(); ++c)
    if (s.by_status[c]) codes += fmt::format("{}\"{}\": {}", codes.empty() ? "" : ", ", c, s.by_status[c]);
  out += fmt::format("  \"status_codes\": {{{}}},\n", codes);
  out += fmt::format("  \"latency_ms\": {},\n", json_latency(s.latency));
  const gap g = longest_gap(s, in.run.load_end);
  out += fmt::format("  \"longest_without_success_ms\": {:.0f},\n", g.length_ms);
  out += fmt::format("  \"longest_without_success_from_s\": {:.3f},\n", g.from_s);
  if (in.action) {
    const auto& a = *in.action;
    const double at = seconds_of(a.at);
    out += fmt::format(
        "  \"action\": {{\"command\": {}, \"at_s\": {:.3f}, \"started_s\": {}, \"ended_s\": {}, \"exit_code\": {}, "
        "\"error\": {},\n    \"window\": {{\"from_s\": {:.3f}, \"to_s\": {:.3f}, \"requests\": {}, \"ok\": {}, "
        "\"failures\": {}, \"latency_ms\": {}}}}},\n",
        json_string(a.command), at, a.started ? fmt::format("{:.3f}", seconds_of(*a.started)) : "null",
        a.ended ? fmt::format("{:.3f}", seconds_of(*a.ended)) : "null",
        a.exit_code ? std::to_string(*a.exit_code) : "null", a.error.empty() ? "null" : json_string(a.error),
        at - 0.5, at + 0.5, sum(s.window_counts), s.window_counts[0], json_failures(s.window_counts),
        json_latency(s.window_latency));
  } else {
    out += "  \"action\": null,\n";
  }
  out += "  \"timeline\": [";
  for (std::size_t i = 0; i < timeline_seconds(in); ++i) {
    const auto& sec = s.seconds[i];
    const auto n = sum(sec.counts);
    out += fmt::format(
        "{}\n    {{\"second\": {}, \"requests\": {}, \"ok\": {}, \"failures\": {}, \"p50_ms\": {:.3f}, "
        "\"p99_ms\": {:.3f}, \"max_ms\": {:.3f}, \"connections_opened\": {}, \"reconnects\": {}}}",
        i ? "," : "", i, n, sec.counts[0], json_failures(sec.counts), ms(sec.latency.quantile(0.5)),
        ms(sec.latency.quantile(0.99)), ms(sec.latency.max()), sec.connections.opened,
        json_reconnects(sec.connections));
  }
  out += "\n  ]\n}\n";
  return out;
}

std::string write_plot(const report_input& in, const std::string& png) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/graceful-bench-plot-XXXXXX";
  if (!mkdtemp(tmpl)) return std::string("mkdtemp: ") + std::strerror(errno);
  const fs::path dir = tmpl;
  const auto& s = in.run.stats;
  const double dur = std::min(seconds_of(in.o.duration), seconds_of(in.run.load_end));
  {
    std::ofstream slots(dir / "slots.dat");
    const auto n = std::min<std::size_t>(s.slots.size(), static_cast<std::size_t>(std::ceil(dur * 10)));
    for (std::size_t i = 0; i < n; ++i)
      slots << fmt::format("{:.2f} {} {} {:.3f}\n", double(i) / 10 + 0.05, s.slots[i].ok * 10,
                           s.slots[i].failed, ms(s.slots[i].max_us));
    std::ofstream secs(dir / "seconds.dat");
    const auto n_secs = timeline_seconds(in);
    // `steps` draws each value up to the next point: repeat the last one at the end.
    for (std::size_t i = 0; i <= n_secs; ++i) {
      const auto& h = s.seconds[std::min(i, n_secs - 1)].latency;
      secs << fmt::format("{} {:.3f} {:.3f}\n", i, ms(h.quantile(0.5)), ms(h.quantile(0.99)));
    }
  }
  const auto failures = total_failures(s);
  std::uint32_t max_failed = 1;
  for (const auto& sl : s.slots) max_failed = std::max(max_failed, sl.failed);
  std::string marks;
  if (in.action && in.action->started) {
    const double a0 = seconds_of(*in.action->started);
    const double a1 = in.action->ended ? seconds_of(*in.action->ended) : dur;
    marks = fmt::format(
        "set object 1 rect from {0:.3f}, graph 0 to {1:.3f}, graph 1 fc rgb '#ffe0b0' fs solid 0.6 noborder behind\n"
        "set arrow 1 from {0:.3f}, graph 0 to {0:.3f}, graph 1 nohead lc rgb '#d06000' lw 2 front\n"
        "set label 1 'action' at {0:.3f}, graph 0.95 offset 0.5,0 tc rgb '#d06000' front\n",
        a0, std::max(a1, a0 + 0.01));
  }
  std::string title = in.o.url + "  " + mode_text(in.o) + fmt::format(", {} connections", in.o.connections) +
                      fmt::format(" - {} of {} requests failed", failures, total_requests(s));
  for (auto& c : title)
    if (c == '\'' || c == '"' || c == '\\') c = '_';
  std::string script = fmt::format(
      "set terminal pngcairo size 1100,750 font 'sans,10'\n"
      "set output '{}'\n"
      "set multiplot layout 2,1 title '{}'\n"
      "set xrange [0:{:.3f}]\nset grid\nset key top left\nset lmargin 10\nset rmargin 10\n{}"
      "set ylabel 'latency (ms)'\nset logscale y\n"
      "plot '{}/slots.dat' using 1:($4>0?$4:1/0) with points pt 7 ps 0.5 lc rgb '#999999' title 'max per 100 ms', "
      "'{}/seconds.dat' using 1:($2>0?$2:1/0) with steps lw 2 title 'p50 per s', "
      "'' using 1:($3>0?$3:1/0) with steps lw 2 title 'p99 per s'\n"
      "unset logscale y\nset xlabel 'seconds since start'\nset ylabel 'requests'\n"
      "plot '{}/slots.dat' using 1:2 with lines lc rgb '#2060c0' title 'ok (req/s, per 100 ms)', "
      "'' using 1:3 with impulses lw 3 lc rgb '#d00000' axes x1y2 title 'failed per 100 ms'\n"
      "unset multiplot\n",
      png, title, dur, marks, dir.string(), dir.string(), dir.string());
  // The failure axis on the right so that a handful of failures is visible next to 20k req/s.
  script.insert(script.find("unset logscale y\n") + 17, fmt::format("set y2label 'failed'\nset y2tics\nset ytics nomirror\nset yrange [0:*]\nset y2range [0:{}]\n", max_failed + max_failed / 10 + 1));
  { std::ofstream(dir / "plot.gp") << script; }
  const std::string script_path = (dir / "plot.gp").string();
  const char* argv[] = {"gnuplot", script_path.c_str(), nullptr};
  pid_t pid = -1;
  std::string err;
  if (int rc = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, const_cast<char**>(argv), environ); rc != 0) {
    err = std::string("cannot run gnuplot: ") + std::strerror(rc);
  } else {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) err = "gnuplot failed (script kept in " + dir.string() + ")";
  }
  if (err.empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return err;
}

} // namespace graceful::bench
